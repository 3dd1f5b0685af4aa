"""The Microsoft clients end to end against the simulator over HTTPS on 127.0.0.1: MSAL sign-in
with the refresh token, token cache persistence, every fault kind, retries and both paging styles.

Each test starts its own small simulator (`simulator_factory`, about 50 ms) so faults and MSAL's
per-app throttle cache never leak between tests.
"""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.microsoft import (
    AccessRemoved,
    Blocked,
    ConsentRevoked,
    EndpointUnreachable,
    GraphClient,
    InvalidClient,
    MalformedResponse,
    MfaRequired,
    MicrosoftCloud,
    NoRefreshToken,
    PartnerCenterClient,
    PartnerMfaMissing,
    RefreshTokenExpired,
    RefreshTokenRevoked,
    RetrySettings,
    TenantGone,
    Throttled,
    TokenCacheCorrupt,
    TokenCacheFile,
    TokenProvider,
    build_session,
    tenant_outcome,
)
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CLIENT_SECRET,
    UNIFORM_CUSTOMERS,
    UNIFORM_PARTNER,
    UNIFORM_SEED_REFRESH_TOKEN,
    uniform_scenario,
)

FAST_RETRY = RetrySettings(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05)
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def settings_for(sim: Any, tmp_path: Path, **overrides: str) -> AccountSettings:
    env = {**sim.environment(), "SYNC365_TOKEN_CACHE": str(tmp_path / "token_cache.json")}
    return AccountSettings.from_env({**env, **overrides})


def cloud_for(
    settings: AccountSettings, *, page_size: int = 300, sleep: Callable[[float], None] = time.sleep
) -> MicrosoftCloud:
    """Like `MicrosoftCloud.from_settings`, with fast retries and small pages."""
    session = build_session(ca_bundle=settings.ca_bundle, retry=FAST_RETRY, sleep=sleep)
    tokens = TokenProvider(
        settings.credentials, settings.endpoints, session, TokenCacheFile(settings.token_cache_path)
    )
    return MicrosoftCloud(
        session=session,
        tokens=tokens,
        partner_center=PartnerCenterClient(
            session, settings.endpoints.partner_center_url, tokens, page_size=min(page_size, 500)
        ),
        graph=GraphClient(session, settings.endpoints.graph_url, tokens, page_size=page_size),
    )


@pytest.fixture(autouse=True)
def system_ca_bundle_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the CI machine: requests would use the system bundle over `Session.verify`."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_BUNDLE)
    monkeypatch.setenv("CURL_CA_BUNDLE", SYSTEM_BUNDLE)


def test_partner_center_and_customer_graph_tokens(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    with MicrosoftCloud.from_settings(settings_for(sim, tmp_path)) as cloud:
        partner_center = cloud.tokens.partner_center_token().facts
        first = cloud.tokens.graph_token(UNIFORM_CUSTOMERS[0]).facts
        second = cloud.tokens.graph_token(UNIFORM_CUSTOMERS[1]).facts
    assert partner_center.tenant_id == UNIFORM_PARTNER
    assert partner_center.audience == "https://api.partnercenter.microsoft.com"
    assert partner_center.mfa
    assert partner_center.account == "agent@partner.onmicrosoft.com"
    assert (first.tenant_id, second.tenant_id) == (UNIFORM_CUSTOMERS[0], UNIFORM_CUSTOMERS[1])
    assert first.audience == "https://graph.microsoft.com"


def test_rotated_refresh_token_is_saved_0600_and_reused_without_the_seed(
    simulator_factory, tmp_path
):
    sim = simulator_factory(uniform_scenario())
    settings = settings_for(sim, tmp_path)
    with MicrosoftCloud.from_settings(settings) as cloud:
        cloud.tokens.partner_center_token()
    cache_path = settings.token_cache_path
    assert stat.S_IMODE(cache_path.stat().st_mode) == 0o600
    refresh_tokens = [
        rt["secret"] for rt in json.loads(cache_path.read_text())["RefreshToken"].values()
    ]
    assert refresh_tokens
    assert UNIFORM_SEED_REFRESH_TOKEN not in refresh_tokens

    without_seed = settings_for(sim, tmp_path, SYNC365_REFRESH_TOKEN="")
    assert without_seed.credentials.refresh_token is None
    with MicrosoftCloud.from_settings(without_seed) as cloud:
        assert (
            cloud.tokens.graph_token(UNIFORM_CUSTOMERS[2]).facts.tenant_id == UNIFORM_CUSTOMERS[2]
        )


def test_no_cache_and_no_refresh_token(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    settings = settings_for(sim, tmp_path, SYNC365_REFRESH_TOKEN="")
    with MicrosoftCloud.from_settings(settings) as cloud, pytest.raises(NoRefreshToken) as caught:
        cloud.tokens.partner_center_token()
    assert "sync365 consent" in str(caught.value)


def test_corrupt_cache_file_is_named_not_shown_nor_overwritten(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    settings = settings_for(sim, tmp_path)
    settings.token_cache_path.write_text('{"RefreshToken": "half-written secret-ish')
    with (
        MicrosoftCloud.from_settings(settings) as cloud,
        pytest.raises(TokenCacheCorrupt) as caught,
    ):
        cloud.tokens.partner_center_token()
    assert str(settings.token_cache_path) in str(caught.value)
    assert "secret-ish" not in str(caught.value)
    assert settings.token_cache_path.read_text().endswith("secret-ish")


@pytest.mark.parametrize(
    ("fault", "error_type", "status", "code"),
    [
        ("consent_revoked", ConsentRevoked, TenantStatus.CONSENT_REVOKED, "AADSTS65001"),
        ("access_removed", AccessRemoved, TenantStatus.ACCESS_REMOVED, "AADSTS50020"),
        ("mfa_required", MfaRequired, TenantStatus.MFA_REQUIRED, "AADSTS50076"),
        ("blocked", Blocked, TenantStatus.BLOCKED, "AADSTS53003"),
        ("tenant_gone", TenantGone, TenantStatus.TENANT_GONE, "AADSTS90002"),
        (
            "graph_forbidden",
            AccessRemoved,
            TenantStatus.ACCESS_REMOVED,
            "Authorization_RequestDenied",
        ),
    ],
)
def test_customer_faults_become_tenant_statuses(
    simulator_factory, tmp_path, fault, error_type, status, code
):
    broken, healthy = UNIFORM_CUSTOMERS[0], UNIFORM_CUSTOMERS[1]
    sim = simulator_factory(uniform_scenario(faults={broken: [{"type": fault}]}))
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        with pytest.raises(error_type) as caught:
            cloud.graph.subscribed_skus(broken)
        assert len(cloud.graph.subscribed_skus(healthy)) == 3  # the others go on
    assert tenant_outcome(caught.value)[:2] == (status, code)
    assert caught.value.tenant_id == broken


@pytest.mark.parametrize(
    ("partner", "error_type"),
    [
        ({"refresh_token_state": "expired"}, RefreshTokenExpired),
        ({"refresh_token_state": "revoked"}, RefreshTokenRevoked),
        ({"mfa": False}, PartnerMfaMissing),
    ],
)
def test_partner_level_failures_say_what_to_do(simulator_factory, tmp_path, partner, error_type):
    sim = simulator_factory(uniform_scenario(partner=partner))
    with cloud_for(settings_for(sim, tmp_path)) as cloud, pytest.raises(error_type) as caught:
        cloud.partner_center.customers()
    assert "sync365 consent" in caught.value.remedy
    assert caught.value.remedy in str(caught.value)


def test_wrong_client_secret_is_invalid_client(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    settings = settings_for(sim, tmp_path, SYNC365_CLIENT_SECRET="not-the-secret-value")
    with cloud_for(settings) as cloud, pytest.raises(InvalidClient) as caught:
        cloud.tokens.partner_center_token()
    assert caught.value.code == "AADSTS7000215"
    assert "not-the-secret-value" not in str(caught.value)


def test_refresh_token_revoked_mid_run_stops_customer_calls(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        cloud.tokens.partner_center_token()
        sim.control.set_partner_refresh_token_state("revoked")
        with pytest.raises(RefreshTokenRevoked):
            cloud.graph.subscribed_skus(UNIFORM_CUSTOMERS[2])


def test_throttling_is_absorbed_honouring_retry_after(simulator_factory, tmp_path):
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(
        uniform_scenario(faults={tenant: [{"type": "throttle", "times": 1, "retry_after": 1}]})
    )
    waits: list[float] = []  # what the client was told to sleep, recorded instead of slept

    with cloud_for(settings_for(sim, tmp_path), sleep=waits.append) as cloud:
        skus = cloud.graph.subscribed_skus(tenant)
        stats = cloud.session.stats.snapshot()
    assert len(skus) == 3
    assert waits == [1.0]
    assert stats["throttled_responses"] == 1
    assert stats["retries"] == 1


def test_throttling_that_outlasts_the_retries_is_throttled(simulator_factory, tmp_path):
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(
        uniform_scenario(faults={tenant: [{"type": "throttle", "retry_after": 0}]})
    )
    with cloud_for(settings_for(sim, tmp_path)) as cloud, pytest.raises(Throttled) as caught:
        cloud.graph.subscribed_skus(tenant)
    assert tenant_outcome(caught.value)[0] is TenantStatus.THROTTLED
    assert caught.value.http_status == 429


@pytest.mark.parametrize("service", ["graph", "identity", "partner_center"])
def test_server_errors_and_truncated_bodies_are_retried(simulator_factory, tmp_path, service):
    tenant = UNIFORM_PARTNER if service == "partner_center" else UNIFORM_CUSTOMERS[0]
    faults = [
        {"type": "server_error", "times": 1, "status": 503, "service": service},
        {"type": "malformed", "kind": "truncated", "times": 1, "service": service},
    ]
    sim = simulator_factory(
        uniform_scenario(
            faults={tenant: faults},
            partner={"faults": faults} if tenant == UNIFORM_PARTNER else None,
        )
    )
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        if service == "partner_center":
            assert len(cloud.partner_center.customers()) == len(UNIFORM_CUSTOMERS)
        else:
            assert len(cloud.graph.subscribed_skus(tenant)) == 3
        stats = cloud.session.stats.snapshot()
    assert stats["server_errors"] >= 1
    assert stats["malformed_responses"] >= 1


def test_html_instead_of_json_becomes_malformed(simulator_factory, tmp_path):
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(
        uniform_scenario(faults={tenant: [{"type": "malformed", "kind": "html"}]})
    )
    with (
        cloud_for(settings_for(sim, tmp_path)) as cloud,
        pytest.raises(MalformedResponse) as caught,
    ):
        cloud.graph.subscribed_skus(tenant)
    assert tenant_outcome(caught.value)[0] is TenantStatus.ERROR
    assert "<html" not in str(caught.value).lower()


def test_paging_to_the_end_in_both_styles(simulator_factory, tmp_path):
    sim = simulator_factory(
        uniform_scenario(settings={"page_size_customers": 2, "page_size_graph": 2})
    )
    with cloud_for(settings_for(sim, tmp_path), page_size=2) as cloud:
        customers = cloud.partner_center.customers()
        relationships = cloud.graph.delegated_admin_relationships()
        skus = cloud.graph.subscribed_skus(UNIFORM_CUSTOMERS[0])
    assert sorted(c["id"] for c in customers) == sorted(UNIFORM_CUSTOMERS)
    assert sorted(r["customer"]["tenantId"] for r in relationships) == sorted(UNIFORM_CUSTOMERS)
    assert sorted(s["skuId"] for s in skus) == sorted(
        s["skuId"] for s in sim.control.expected_subscribed_skus(UNIFORM_CUSTOMERS[0])
    )
    pages = sim.control.request_counts()["by_route"]  # three of each, in pages of two
    assert pages["partner_center.customers"] == 2
    assert pages["graph.delegatedAdminRelationships"] == 2
    assert pages["graph.subscribedSkus"] == 2


def test_concurrent_customer_tokens_are_tenant_correct(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    with MicrosoftCloud.from_settings(settings_for(sim, tmp_path)) as cloud:
        cloud.tokens.partner_center_token()
        with ThreadPoolExecutor(max_workers=16) as pool:
            tids = list(
                pool.map(
                    lambda t: cloud.tokens.graph_token(t).facts.tenant_id, UNIFORM_CUSTOMERS * 10
                )
            )
    assert tids == UNIFORM_CUSTOMERS * 10


def test_no_token_or_secret_in_logs_or_errors(simulator_factory, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("msal", "urllib3", "requests", "sync365_pipeline"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(
        uniform_scenario(
            faults={
                tenant: [{"type": "consent_revoked", "times": 1}],
                UNIFORM_CUSTOMERS[1]: [
                    {"type": "malformed", "kind": "truncated", "times": 1, "service": "identity"}
                ],
            }
        )
    )
    settings = settings_for(sim, tmp_path)
    messages: list[str] = []
    with MicrosoftCloud.from_settings(settings) as cloud:
        cloud.partner_center.customers()
        cloud.graph.delegated_admin_relationships()
        for customer in UNIFORM_CUSTOMERS:
            try:
                cloud.graph.subscribed_skus(customer)
            except Exception as exc:
                messages.append(str(exc))
                messages.append(repr(exc))
        partner_token = cloud.tokens.partner_center_token()
        messages.append(repr(partner_token))
        # The access tokens the calls above used, from MSAL's in-memory cache (no new requests).
        access_tokens = [partner_token, cloud.tokens.partner_graph_token()]
        access_tokens += [cloud.tokens.graph_token(tenant) for tenant in UNIFORM_CUSTOMERS[1:]]
    cache = json.loads(settings.token_cache_path.read_text())
    secrets = [token.value.reveal() for token in access_tokens]
    secrets += [
        entry["secret"]
        for section in ("AccessToken", "RefreshToken", "IdToken")
        for entry in cache.get(section, {}).values()
    ]
    secrets += [UNIFORM_SEED_REFRESH_TOKEN, UNIFORM_CLIENT_SECRET]
    assert cache["RefreshToken"]
    assert messages  # the consent fault was raised and checked
    loggers = {record.name.split(".")[0] for record in caplog.records}
    assert {"msal", "urllib3", "sync365_pipeline"} <= loggers  # the libraries did log
    logged = caplog.text + "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets:
        assert secret not in logged
        for message in messages:
            assert secret not in message


DEMO_OUTCOMES = {
    "396d17c4-a719-467f-8d39-dc85692e3fe0": TenantStatus.CONSENT_REVOKED,  # Adatum
    "9961c4cc-4731-4eab-af64-96a953a7e159": TenantStatus.ACCESS_REMOVED,  # Litware, GDAP expired
    "c3020ac8-fb98-49e4-948d-659c39829495": TenantStatus.ACCESS_REMOVED,  # Proseware
    "8d869f95-88fc-4943-a9d3-e532965bf6cc": TenantStatus.MFA_REQUIRED,  # Wingtip
    "f756e85d-42c8-45ca-8397-093bc5bf27d8": TenantStatus.TENANT_GONE,  # Alpine Ski House
    "5c1f3a7e-2b84-4d19-9e6a-7f0d2c8b4a31": TenantStatus.CONSENT_REVOKED,  # Lakeshore, no CPV
    "8e2d6b90-4c3a-4f7e-a1d5-3b9c0e7f6a12": TenantStatus.CONSENT_REVOKED,  # Riverbend, no CPV
    "2a7b9c4d-6e1f-4a83-b5c2-9d0e8f7a6b53": TenantStatus.ACCESS_REMOVED,  # Harborview, no Graph
    "d4e8f2a6-9b3c-4e71-8a5d-1c6f0b2e7d94": TenantStatus.ACCESS_REMOVED,  # Oakridge, no role
}


def test_demo_scenario_end_to_end(simulator_factory, tmp_path):
    """The bundled demo as the sync would read it: every tenant either matches the simulator's
    expected SKUs or has the status its fault implies; throttling and 5xx are absorbed."""
    sim = simulator_factory("demo")
    with MicrosoftCloud.from_settings(settings_for(sim, tmp_path)) as cloud:
        partner = cloud.tokens.partner_center_token().facts
        tenant_ids = {c["companyProfile"]["tenantId"] for c in cloud.partner_center.customers()}
        tenant_ids |= {
            r["customer"]["tenantId"] for r in cloud.graph.delegated_admin_relationships()
        }

        def outcome(tenant_id: str) -> tuple[TenantStatus, list[dict[str, Any]] | None]:
            try:
                return TenantStatus.OK, cloud.graph.subscribed_skus(tenant_id)
            except Exception as exc:
                return tenant_outcome(exc)[0], None

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = dict(zip(tenant_ids, pool.map(outcome, tenant_ids), strict=True))
        stats = cloud.session.stats.snapshot()
    assert partner.mfa
    assert len(tenant_ids) == 17
    for tenant_id, (status, skus) in outcomes.items():
        assert status is DEMO_OUTCOMES.get(tenant_id, TenantStatus.OK), tenant_id
        if skus is not None:
            expected = sim.control.expected_subscribed_skus(tenant_id)
            assert sorted(s["skuId"] for s in skus) == sorted(s["skuId"] for s in expected)
    assert stats["throttled_responses"] == 2
    assert stats["server_errors"] == 1


def test_untrusted_simulator_certificate_names_the_ca_setting(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    settings = settings_for(sim, tmp_path, SYNC365_CA_BUNDLE="")
    assert settings.ca_bundle is None
    with cloud_for(settings) as cloud, pytest.raises(EndpointUnreachable) as caught:
        cloud.tokens.partner_center_token()
    assert f"127.0.0.1:{sim.port}" in str(caught.value)
    assert "SYNC365_CA_BUNDLE" in caught.value.remedy
    assert caught.value.code == "CertificateVerifyFailed"
