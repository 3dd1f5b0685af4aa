"""OpenID configuration documents derived from the partner authority's own: what MSAL reads, the
tenant substituted, and nothing that points anywhere but the configured authority."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.microsoft import MicrosoftCloud, build_session
from sync365_pipeline.microsoft.errors import OpenIdConfigurationRefused, PartnerAccessError
from sync365_pipeline.microsoft.openid import (
    OpenIdConfigurations,
    OpenIdTemplate,
    openid_store_path,
)
from sync365_pipeline_tests.scenarios import UNIFORM_CUSTOMERS, UNIFORM_PARTNER, uniform_scenario

from .conftest import Scripted

AUTHORITY = "https://login.example.test"
HOME = "aaaaaaaa-0000-4000-8000-000000000001"
CUSTOMER = "cccccccc-0000-4000-8000-000000000001"


def document(**overrides: object) -> dict[str, object]:
    base = f"{AUTHORITY}/{HOME}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "issuer": f"{base}/v2.0",
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "userinfo_endpoint": "https://graph.example.test/oidc/userinfo",
        **overrides,
    }


def test_a_tenant_gets_the_template_with_its_own_id_and_only_what_msal_reads():
    derived = OpenIdTemplate(AUTHORITY, document()).for_tenant(CUSTOMER)
    assert derived == {
        "token_endpoint": f"{AUTHORITY}/{CUSTOMER}/oauth2/v2.0/token",
        "authorization_endpoint": f"{AUTHORITY}/{CUSTOMER}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{AUTHORITY}/{CUSTOMER}/oauth2/v2.0/devicecode",
        "issuer": f"{AUTHORITY}/{CUSTOMER}/v2.0",
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"token_endpoint": f"https://collector.example.test/{HOME}/oauth2/v2.0/token"},
        {"token_endpoint": f"http://login.example.test/{HOME}/oauth2/v2.0/token"},
        {"authorization_endpoint": f"{AUTHORITY}:8443/{HOME}/oauth2/v2.0/authorize"},
        {"device_authorization_endpoint": f"{AUTHORITY}/{CUSTOMER}/oauth2/v2.0/devicecode"},
        {"issuer": "https://issuer.example.test/v2.0"},
        {"authorization_endpoint": None},
        {"token_endpoint": 42},
        {"token_endpoint": f"{AUTHORITY}/"},
    ],
)
def test_a_template_pointing_outside_the_authority_is_refused(overrides):
    with pytest.raises(OpenIdConfigurationRefused) as caught:
        OpenIdTemplate(AUTHORITY, document(**overrides))
    assert isinstance(caught.value, PartnerAccessError), "the whole sync stops"
    assert "SYNC365_AUTHORITY_HOST" in caught.value.remedy


def test_a_document_that_is_not_an_object_is_refused():
    with pytest.raises(OpenIdConfigurationRefused):
        OpenIdTemplate(AUTHORITY, [document()])


def test_a_refused_template_sends_nothing_further(script_server, tmp_path):
    """Against a real socket: the home document points elsewhere, so no customer's document is
    derived from it and nothing else is asked."""
    hostile = document(token_endpoint=f"https://collector.example.test/{HOME}/oauth2/v2.0/token")
    script_server.script = [Scripted(200, hostile)]
    session = build_session(ca_bundle=script_server.ca_path)
    store = tmp_path / "openid.json"
    configurations = OpenIdConfigurations(script_server.url, HOME, session, store=store)
    with pytest.raises(OpenIdConfigurationRefused):
        configurations.answer(configurations.document_url(CUSTOMER))
    assert [seen.path for seen in script_server.seen] == [
        f"/{HOME}/v2.0/.well-known/openid-configuration"
    ]
    assert not store.exists(), "a refused template is not kept"
    session.close()


def test_other_urls_and_tenants_named_by_domain_are_sent(script_server):
    session = build_session(ca_bundle=script_server.ca_path)
    configurations = OpenIdConfigurations(script_server.url, HOME, session, store=None)
    for url in (
        f"{script_server.url}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        f"{script_server.url}/{CUSTOMER}/oauth2/v2.0/token",
        f"https://elsewhere.example.test/{CUSTOMER}/v2.0/.well-known/openid-configuration",
    ):
        assert configurations.answer(url) is None
    assert script_server.seen == []
    session.close()


def test_derived_documents_match_what_the_authority_serves(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    session = build_session(ca_bundle=sim.ca_path)
    configurations = OpenIdConfigurations(sim.url, UNIFORM_PARTNER, session, store=None)
    for tenant in UNIFORM_CUSTOMERS:
        url = configurations.document_url(tenant)
        derived = configurations.answer(url)
        assert derived is not None
        served = session.get(url).json()
        assert derived.json() == {key: served[key] for key in derived.json()}
    by_route = sim.control.request_counts()["by_route"]
    assert by_route["identity.openid_configuration"] == 1 + len(
        UNIFORM_CUSTOMERS
    )  # ours + the check
    session.close()


def test_the_template_is_kept_beside_the_token_cache_0600_and_reused(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    settings = AccountSettings.from_env(
        {**sim.environment(), "SYNC365_TOKEN_CACHE": str(tmp_path / "token_cache.json")}
    )
    with MicrosoftCloud.from_settings(settings) as cloud:
        cloud.tokens.graph_token(UNIFORM_CUSTOMERS[0])
    store = openid_store_path(settings.token_cache_path)
    assert store.stat().st_mode & 0o077 == 0
    assert json.loads(store.read_text())["authority_host"] == sim.url

    Path(settings.token_cache_path).unlink()  # tokens must be asked for; discovery need not
    sim.control.reset_request_counts()
    with MicrosoftCloud.from_settings(settings) as cloud:
        cloud.tokens.graph_token(UNIFORM_CUSTOMERS[1])
    by_route = sim.control.request_counts()["by_route"]
    assert "identity.openid_configuration" not in by_route
    assert by_route["identity.token"] == 2, "the partner's import, then the customer's"
