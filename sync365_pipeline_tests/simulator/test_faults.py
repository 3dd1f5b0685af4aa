"""Every fault kind, seen from MSAL or `requests` as Microsoft presents it: status, body, code."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msal
import pytest
import requests

from sync365_pipeline_tests.scenarios import UNIFORM_CUSTOMERS, UNIFORM_PARTNER, uniform_scenario
from sync365_pipeline_tests.simulator.helpers import (
    GRAPH_SCOPE,
    PARTNER_CENTER_SCOPE,
    bearer,
    https_session,
    msal_app,
    redeem,
)

ESTS_FIELDS = {
    "error",
    "error_description",
    "error_codes",
    "timestamp",
    "trace_id",
    "correlation_id",
}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def assert_ests_error(body: dict[str, Any], error: str, code: int, suberror: str | None = None):
    assert set(body) >= ESTS_FIELDS
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert GUID.match(body["trace_id"])
    assert GUID.match(body["correlation_id"])
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", body["timestamp"])
    assert body.get("suberror") == suberror


def assert_graph_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    assert response.headers["request-id"] == error["innerError"]["request-id"]


def graph_token(sim, tenant: str) -> str:
    return redeem(sim, tenant, GRAPH_SCOPE)["access_token"]


def partner_center_token(sim) -> str:
    return redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)["access_token"]


# --- customer tenants: token endpoint ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "suberror"),
    [
        ("consent_revoked", 65001, "consent_required"),
        ("access_removed", 50020, None),
        ("mfa_required", 50076, "basic_action"),
        ("blocked", 53003, "message_only"),
    ],
)
def test_access_faults_fail_the_customer_token_request(simulator_factory, fault, code, suberror):
    broken, healthy = UNIFORM_CUSTOMERS[0], UNIFORM_CUSTOMERS[1]
    sim = simulator_factory(uniform_scenario(faults={broken: [{"type": fault}]}))
    result = redeem(sim, broken, GRAPH_SCOPE)
    assert_ests_error(result, "invalid_grant", code, suberror)
    assert "access_token" in redeem(sim, healthy, GRAPH_SCOPE)


def test_access_fault_limited_by_times_then_recovers(simulator_factory):
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(
        uniform_scenario(faults={tenant: [{"type": "consent_revoked", "times": 1}]})
    )
    assert redeem(sim, tenant, GRAPH_SCOPE)["error_codes"] == [65001]
    assert "access_token" in redeem(sim, tenant, GRAPH_SCOPE)  # a new app: no MSAL throttle cache


def test_token_error_has_ests_headers_and_http_400(simulator_factory):
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(uniform_scenario(faults={tenant: [{"type": "consent_revoked"}]}))
    response = https_session(sim).post(
        f"{sim.url}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "client_id": sim.environment()["SYNC365_CLIENT_ID"],
            "client_secret": sim.environment()["SYNC365_CLIENT_SECRET"],
            "refresh_token": sim.environment()["SYNC365_REFRESH_TOKEN"],
            "scope": f"{GRAPH_SCOPE} offline_access",
        },
        headers={"client-request-id": "11111111-2222-4333-8444-555555555555"},
    )
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    body = response.json()
    assert body["correlation_id"] == "11111111-2222-4333-8444-555555555555"
    assert response.headers["x-ms-request-id"] == body["trace_id"]
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=65001"


def test_customer_without_any_relationship_is_aadsts50020(simulator_factory):
    stranger = "dddddddd-0000-4000-8000-000000000009"
    sim = simulator_factory(
        uniform_scenario(
            customers=[
                {
                    "tenant_id": stranger,
                    "display_name": "Stranger Ltd",
                    "default_domain": "stranger.onmicrosoft.com",
                    "relationship_to_partner": "none",
                    "in_partner_center": False,
                }
            ]
        )
    )
    assert_ests_error(redeem(sim, stranger, GRAPH_SCOPE), "invalid_grant", 50020)


def test_tenant_gone_at_discovery_token_and_partner_center(simulator_factory):
    gone = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(uniform_scenario(faults={gone: [{"type": "tenant_gone"}]}))
    session = https_session(sim)
    discovery = session.get(f"{sim.url}/{gone}/v2.0/.well-known/openid-configuration")
    assert discovery.status_code == 400
    assert_ests_error(discovery.json(), "invalid_tenant", 90002)
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        msal_app(sim, gone, session)  # MSAL's discovery GET in the constructor
    token = session.post(
        f"{sim.url}/{gone}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": "x", "scope": GRAPH_SCOPE},
    )
    assert token.status_code == 400
    assert_ests_error(token.json(), "invalid_request", 90002)
    skus = session.get(
        f"{sim.url}/v1/customers/{gone}/subscribedskus", headers=bearer(partner_center_token(sim))
    )
    assert skus.status_code == 404
    assert skus.json() == {
        "code": 60003,
        "description": "Tenant not found",
        "data": [],
        "source": "PartnerFD",
    }


def test_unknown_tenant_is_aadsts90002(demo_simulator):
    unknown = "eeeeeeee-0000-4000-8000-000000000000"
    response = https_session(demo_simulator).get(
        f"{demo_simulator.url}/{unknown}/v2.0/.well-known/openid-configuration"
    )
    assert response.status_code == 400
    assert_ests_error(response.json(), "invalid_tenant", 90002)


# --- partner-level failures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "code", "suberror"), [("expired", 700082, "bad_token"), ("revoked", 50173, None)]
)
def test_partner_refresh_token_state(simulator_factory, state, code, suberror):
    sim = simulator_factory(uniform_scenario(partner={"refresh_token_state": state}))
    for tenant in (UNIFORM_PARTNER, UNIFORM_CUSTOMERS[0]):
        result = redeem(sim, tenant, PARTNER_CENTER_SCOPE)
        assert_ests_error(result, "invalid_grant", code, suberror)


def test_wrong_client_secret_is_401_invalid_client(demo_simulator):
    env = demo_simulator.environment()
    session = https_session(demo_simulator)
    app = msal_app(demo_simulator, env["SYNC365_PARTNER_TENANT_ID"], session, secret="wrong-value")
    result = app.acquire_token_by_refresh_token(env["SYNC365_REFRESH_TOKEN"], [GRAPH_SCOPE])
    assert_ests_error(result, "invalid_client", 7000215)
    raw = session.post(
        f"{demo_simulator.url}/{env['SYNC365_PARTNER_TENANT_ID']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": env["SYNC365_CLIENT_ID"],
              "client_secret": "wrong-value", "scope": GRAPH_SCOPE},
    )  # fmt: skip
    assert raw.status_code == 401


def test_partner_without_mfa_is_refused_by_partner_center(simulator_factory):
    sim = simulator_factory(uniform_scenario(partner={"mfa": False}))
    token = redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)
    response = https_session(sim).get(
        f"{sim.url}/v1/customers", headers=bearer(token["access_token"])
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json() == {
        "code": 900421,
        "description": "Authentication failed. MFA required.",
        "data": [],
        "source": "PartnerFD",
    }
    graph = https_session(sim).get(  # Graph does not enforce MFA
        f"{sim.url}/v1.0/subscribedSkus", headers=bearer(graph_token(sim, UNIFORM_CUSTOMERS[0]))
    )
    assert graph.status_code == 200


# --- Graph ---------------------------------------------------------------------------------------


def test_graph_forbidden_fault(simulator_factory):
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(uniform_scenario(faults={tenant: [{"type": "graph_forbidden"}]}))
    response = https_session(sim).get(
        f"{sim.url}/v1.0/subscribedSkus", headers=bearer(graph_token(sim, tenant))
    )
    assert_graph_error(response, 403, "Authorization_RequestDenied")


def test_expired_gdap_without_dap_is_graph_403(simulator_factory):
    expired = "dddddddd-0000-4000-8000-000000000001"
    sim = simulator_factory(
        uniform_scenario(
            customers=[
                {
                    "tenant_id": expired,
                    "display_name": "Lapsed Ltd",
                    "default_domain": "lapsed.onmicrosoft.com",
                    "gdap_relationships": [
                        {"status": "active", "ends_in_days": -3},
                        {"status": "terminated"},
                    ],
                    "skus": [{"part_number": "SPB", "enabled": 1}],
                }
            ]
        )
    )
    token = graph_token(sim, expired)  # the user still exists there: the token is issued
    response = https_session(sim).get(f"{sim.url}/v1.0/subscribedSkus", headers=bearer(token))
    assert_graph_error(response, 403, "Authorization_RequestDenied")


def test_graph_checks_audience_expiry_and_signature(simulator_factory):
    sim = simulator_factory(uniform_scenario(settings={"access_token_lifetime_s": 1}))
    session = https_session(sim)
    url = f"{sim.url}/v1.0/organization"
    wrong_audience = session.get(url, headers=bearer(partner_center_token(sim)))
    assert_graph_error(wrong_audience, 401, "InvalidAuthenticationToken")
    assert "Invalid audience" in wrong_audience.json()["error"]["message"]
    assert (
        'client_id="00000003-0000-0000-c000-000000000000"'
        in wrong_audience.headers["WWW-Authenticate"]
    )
    token = graph_token(sim, UNIFORM_CUSTOMERS[0])
    header, payload, signature = token.split(".")
    tampered = session.get(url, headers=bearer(f"{header}.{payload}x.{signature}"))
    assert_graph_error(tampered, 401, "InvalidAuthenticationToken")
    assert_graph_error(session.get(url), 401, "InvalidAuthenticationToken")
    time.sleep(1.1)
    expired = session.get(url, headers=bearer(token))
    assert_graph_error(expired, 401, "InvalidAuthenticationToken")
    assert "expired" in expired.json()["error"]["message"]


def test_partner_center_rejects_graph_tokens_and_missing_tokens(demo_simulator):
    env = demo_simulator.environment()
    session = https_session(demo_simulator)
    graph = redeem(demo_simulator, env["SYNC365_PARTNER_TENANT_ID"], GRAPH_SCOPE)["access_token"]
    wrong = session.get(f"{demo_simulator.url}/v1/customers", headers=bearer(graph))
    assert wrong.status_code == 401
    assert set(wrong.json()) == {"code", "description", "data", "source"}
    missing = session.get(f"{demo_simulator.url}/v1/customers")
    assert (missing.status_code, missing.json()["code"]) == (401, 800001)


# --- throttling, server errors, malformed bodies, latency ----------------------------------------


def test_graph_throttling_for_the_first_k_requests(simulator_factory):
    tenant = UNIFORM_CUSTOMERS[0]
    fault = {"type": "throttle", "times": 2, "retry_after": 7}
    sim = simulator_factory(uniform_scenario(faults={tenant: [fault]}))
    session, headers = https_session(sim), bearer(graph_token(sim, tenant))
    responses = [session.get(f"{sim.url}/v1.0/subscribedSkus", headers=headers) for _ in range(3)]
    for throttled in responses[:2]:
        assert_graph_error(throttled, 429, "TooManyRequests")
        assert throttled.headers["Retry-After"] == "7"
    assert responses[2].status_code == 200


def test_partner_center_throttling_uses_the_gateway_body(simulator_factory):
    fault = {"type": "throttle", "times": 1, "retry_after": 3, "service": "partner_center"}
    sim = simulator_factory(uniform_scenario(faults={UNIFORM_PARTNER: [fault]}))
    session, headers = https_session(sim), bearer(partner_center_token(sim))
    throttled = session.get(f"{sim.url}/v1/customers", headers=headers)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    assert throttled.json() == {
        "statusCode": 429,
        "message": "Rate limit is exceeded. Try again in 3 seconds.",
    }
    assert session.get(f"{sim.url}/v1/customers", headers=headers).status_code == 200


def test_identity_throttling_reaches_msal_as_a_dict(simulator_factory):
    tenant = UNIFORM_CUSTOMERS[0]
    fault = {"type": "throttle", "times": 1, "retry_after": 1, "service": "identity"}
    sim = simulator_factory(uniform_scenario(faults={tenant: [fault]}))
    result = redeem(sim, tenant, GRAPH_SCOPE)
    assert_ests_error(result, "temporarily_unavailable", 90055)
    assert "access_token" in redeem(sim, tenant, GRAPH_SCOPE)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_graph_server_errors(simulator_factory, status):
    tenant = UNIFORM_CUSTOMERS[0]
    fault = {"type": "server_error", "status": status, "times": 1, "retry_after": 2}
    sim = simulator_factory(uniform_scenario(faults={tenant: [fault]}))
    session, headers = https_session(sim), bearer(graph_token(sim, tenant))
    failed = session.get(f"{sim.url}/v1.0/subscribedSkus", headers=headers)
    assert failed.status_code == status
    assert failed.headers["Retry-After"] == "2"
    assert "error" in failed.json()
    assert session.get(f"{sim.url}/v1.0/subscribedSkus", headers=headers).status_code == 200


def test_partner_center_and_identity_server_errors(simulator_factory):
    faults = [
        {"type": "server_error", "status": 500, "times": 1, "service": "partner_center"},
        {"type": "server_error", "status": 503, "times": 1, "service": "identity"},
    ]
    sim = simulator_factory(uniform_scenario(faults={UNIFORM_PARTNER: faults}))
    with pytest.raises(msal.exceptions.MsalServiceError, match="HTTP Error: 503"):
        redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)
    session, headers = https_session(sim), bearer(partner_center_token(sim))
    failed = session.get(f"{sim.url}/v1/customers", headers=headers)
    assert failed.status_code == 500
    assert failed.json()["code"] == 800003
    assert session.get(f"{sim.url}/v1/customers", headers=headers).status_code == 200


@pytest.mark.parametrize("kind", ["truncated", "html"])
def test_malformed_bodies(simulator_factory, kind):
    tenant = UNIFORM_CUSTOMERS[0]
    fault = {"type": "malformed", "kind": kind, "times": 1}
    sim = simulator_factory(uniform_scenario(faults={tenant: [fault]}))
    session, headers = https_session(sim), bearer(graph_token(sim, tenant))
    broken = session.get(f"{sim.url}/v1.0/subscribedSkus", headers=headers)
    with pytest.raises(requests.JSONDecodeError):
        broken.json()
    if kind == "html":
        assert broken.headers["Content-Type"].startswith("text/html")
        assert "<html>" in broken.text
    assert session.get(f"{sim.url}/v1.0/subscribedSkus", headers=headers).json()["value"]


def test_latency_with_jitter_does_not_block_other_tenants(simulator_factory):
    """The slow tenant's request sleeps on the server while a later one for another tenant is
    answered: the later one finishes first (the latency is far above a request's own cost)."""
    slow, fast = UNIFORM_CUSTOMERS[0], UNIFORM_CUSTOMERS[1]
    fault = {"type": "latency", "ms": 1500, "jitter_ms": 100, "service": "graph"}
    sim = simulator_factory(uniform_scenario(faults={slow: [fault]}))
    slow_token, fast_token = graph_token(sim, slow), graph_token(sim, fast)
    finished: list[str] = []

    def get(tenant: str, token: str) -> int:
        response = https_session(sim).get(f"{sim.url}/v1.0/subscribedSkus", headers=bearer(token))
        finished.append(tenant)
        return response.status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        slow_call = pool.submit(get, slow, slow_token)
        wait_until(lambda: sim.control.request_counts()["in_flight"] == 1)
        assert pool.submit(get, fast, fast_token).result() == 200
        assert slow_call.result() == 200
    assert finished == [fast, slow]


def test_keep_alive_connections_send_without_nagle_delay(demo_simulator):
    """Without TCP_NODELAY each keep-alive answer would wait ~40 ms for a delayed ACK."""
    tenant = "a51c8ac0-98f8-4206-9aaa-ef644b70e6e6"
    session, headers = https_session(demo_simulator), bearer(graph_token(demo_simulator, tenant))
    url = f"{demo_simulator.url}/v1.0/subscribedSkus"
    for _ in range(3):
        assert session.get(url, headers=headers).ok
    sockets = demo_simulator.connection_sockets()
    assert sockets
    for server_end in sockets:
        assert server_end.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def wait_until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    """Poll `condition`; the bound only catches a hang."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)
