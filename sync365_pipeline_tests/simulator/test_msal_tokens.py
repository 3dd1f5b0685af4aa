"""Real MSAL against the simulator: the Secure Application Model flows the pipeline relies on."""

from __future__ import annotations

import time

import msal

from sync365_pipeline_tests.scenarios import UNIFORM_CUSTOMERS, UNIFORM_PARTNER, uniform_scenario
from sync365_pipeline_tests.simulator.helpers import (
    GRAPH_SCOPE,
    PARTNER_CENTER_SCOPE,
    bearer,
    claims,
    https_session,
    msal_app,
    redeem,
)


def test_one_refresh_token_gives_distinct_correct_tokens_for_two_customers(simulator_factory):
    sim = simulator_factory(uniform_scenario())
    session = https_session(sim)
    cache = msal.SerializableTokenCache()
    partner_app = msal_app(sim, UNIFORM_PARTNER, session, cache=cache)
    partner = partner_app.acquire_token_by_refresh_token(
        sim.environment()["SYNC365_REFRESH_TOKEN"], scopes=[PARTNER_CENTER_SCOPE]
    )
    account = partner_app.get_accounts()[0]
    tokens = {}
    for tenant in UNIFORM_CUSTOMERS[:2]:
        app = msal_app(sim, tenant, session, cache=cache)
        result = app.acquire_token_silent_with_error([GRAPH_SCOPE], account=account)
        tokens[tenant] = result["access_token"]

    pc = claims(partner["access_token"])
    assert pc["aud"] == "https://api.partnercenter.microsoft.com"
    assert pc["tid"] == UNIFORM_PARTNER
    assert pc["scp"] == "user_impersonation"
    assert "mfa" in pc["amr"]
    assert tokens[UNIFORM_CUSTOMERS[0]] != tokens[UNIFORM_CUSTOMERS[1]]
    for tenant, token in tokens.items():
        graph = claims(token)
        assert graph["aud"] == "https://graph.microsoft.com"
        assert graph["tid"] == tenant
        assert graph["iss"] == f"https://sts.windows.net/{tenant}/"
        assert graph["idp"] == f"https://sts.windows.net/{UNIFORM_PARTNER}/"
        assert graph["idtyp"] == "user"
        assert graph["upn"] == "agent@partner.onmicrosoft.com"
        assert graph["exp"] > time.time() + 3000
        organization = session.get(f"{sim.url}/v1.0/organization", headers=bearer(token))
        assert organization.json()["value"][0]["id"] == tenant  # Graph serves the token's tenant
    assert account["home_account_id"] == f"{account['local_account_id']}.{UNIFORM_PARTNER}"


def test_token_response_has_msal_fields_and_echoes_scopes(demo_simulator):
    result = redeem(
        demo_simulator, demo_simulator.environment()["SYNC365_PARTNER_TENANT_ID"], GRAPH_SCOPE
    )
    assert result["token_type"] == "Bearer"
    assert result["scope"] == GRAPH_SCOPE
    assert isinstance(result["expires_in"], int)
    assert result["id_token_claims"]["aud"] == demo_simulator.environment()["SYNC365_CLIENT_ID"]
    assert result["refresh_token"] != demo_simulator.environment()["SYNC365_REFRESH_TOKEN"]
    assert {"client_info", "id_token", "ext_expires_in"} <= set(result)


def test_refresh_tokens_rotate_and_older_ones_stay_valid(simulator_factory):
    sim = simulator_factory(uniform_scenario())
    seed = sim.environment()["SYNC365_REFRESH_TOKEN"]
    first = redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE, seed)
    second = redeem(sim, UNIFORM_CUSTOMERS[0], GRAPH_SCOPE, first["refresh_token"])
    third = redeem(
        sim, UNIFORM_CUSTOMERS[1], GRAPH_SCOPE, first["refresh_token"]
    )  # reused: still valid
    again = redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE, seed)
    rotated = {first["refresh_token"], second["refresh_token"], third["refresh_token"]}
    assert len(rotated | {seed, again["refresh_token"]}) == 5
    assert all("access_token" in result for result in (second, third, again))


def test_client_credentials_gives_an_app_only_token(demo_simulator):
    env = demo_simulator.environment()
    app = msal_app(demo_simulator, env["SYNC365_PARTNER_TENANT_ID"], https_session(demo_simulator))
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    token = claims(result["access_token"])
    assert token["idtyp"] == "app"
    assert "scp" not in token
    assert token["roles"]
    assert "refresh_token" not in result
    assert "scope" not in result


def test_authorization_code_flow_with_pkce(simulator_factory):
    sim = simulator_factory(uniform_scenario())
    session = https_session(sim)
    app = msal_app(sim, UNIFORM_PARTNER, session)
    flow = app.initiate_auth_code_flow([PARTNER_CENTER_SCOPE], redirect_uri="http://localhost:8400")
    redirect = session.get(flow["auth_uri"], allow_redirects=False)
    assert redirect.status_code == 302
    query = dict(
        part.split("=", 1) for part in redirect.headers["Location"].split("?", 1)[1].split("&")
    )
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert claims(result["access_token"])["aud"] == "https://api.partnercenter.microsoft.com"
    replay = msal_app(sim, UNIFORM_PARTNER, session).acquire_token_by_auth_code_flow(flow, query)
    assert replay["error_codes"] == [54005]


def test_device_code_flow_is_approved_through_the_control_api(simulator_factory):
    sim = simulator_factory(uniform_scenario(settings={"device_code_interval_s": 0}))
    app = msal.PublicClientApplication(
        sim.environment()["SYNC365_CLIENT_ID"],
        authority=f"{sim.url}/{UNIFORM_PARTNER}",
        instance_discovery=False,
        http_client=https_session(sim),
    )
    flow = app.initiate_device_flow(scopes=[PARTNER_CENTER_SCOPE])
    assert flow["verification_uri"] == "https://microsoft.com/devicelogin"
    sim.control.approve_device_code(flow["user_code"], mfa=False)
    result = app.acquire_token_by_device_flow(flow)
    assert claims(result["access_token"])["amr"] == ["pwd"]  # approved without MFA
    declined = app.initiate_device_flow(scopes=[PARTNER_CENTER_SCOPE])
    sim.control.decline_device_code(declined["user_code"])
    assert app.acquire_token_by_device_flow(declined)["error"] == "authorization_declined"
    expired = app.initiate_device_flow(scopes=[PARTNER_CENTER_SCOPE])
    sim.control.expire_device_code(expired["user_code"])
    outcome = app.acquire_token_by_device_flow(expired)
    assert (outcome["error"], outcome["error_codes"]) == ("expired_token", [70019])


def test_device_code_polls_while_pending(simulator_factory):
    sim = simulator_factory(uniform_scenario(settings={"device_code_interval_s": 0}))
    session = https_session(sim)
    code = session.post(
        f"{sim.url}/{UNIFORM_PARTNER}/oauth2/v2.0/devicecode",
        data={"client_id": sim.environment()["SYNC365_CLIENT_ID"], "scope": PARTNER_CENTER_SCOPE},
    ).json()
    pending = session.post(
        f"{sim.url}/{UNIFORM_PARTNER}/oauth2/v2.0/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": sim.environment()["SYNC365_CLIENT_ID"],
            "device_code": code["device_code"],
        },
    )
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"
    assert pending.json()["error_codes"] == [70016]
