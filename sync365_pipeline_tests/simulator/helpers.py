"""Small helpers for talking to a running simulator the way the pipeline does (MSAL + requests)."""

from __future__ import annotations

import base64
import json
from typing import Any

import msal
import requests

from sync365_pipeline.simulator import SimulatorServer

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
PARTNER_CENTER_SCOPE = "https://api.partnercenter.microsoft.com/user_impersonation"
PARTNER = "aaaaaaaa-0000-4000-8000-000000000001"
CLIENT_ID = "bbbbbbbb-0000-4000-8000-000000000002"
CLIENT_SECRET = "simulated-client-secret-value"
SEED_REFRESH_TOKEN = "seed-refresh-token-0123456789abcdef"
CUSTOMERS = [f"cccccccc-0000-4000-8000-{n:012d}" for n in range(1, 4)]


def small_scenario(
    *,
    partner: dict[str, Any] | None = None,
    faults: dict[str, list[dict[str, Any]]] | None = None,
    settings: dict[str, Any] | None = None,
    customers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A partner with three healthy GDAP customers (two SKUs each), plus what the test changes."""
    default_customers = [
        {
            "tenant_id": tenant_id,
            "display_name": f"Customer {index}",
            "default_domain": f"customer{index}.onmicrosoft.com",
            "gdap_relationships": [{"status": "active", "ends_in_days": 100}],
            "skus": [
                {"part_number": "SPB", "enabled": 20 + index, "consumed": 10 + index},
                {"sku_id": "f8a1db68-be16-40ed-86d5-cb42ce701560", "enabled": 5, "consumed": 3},
            ],
            "faults": (faults or {}).get(tenant_id, []),
        }
        for index, tenant_id in enumerate(CUSTOMERS, start=1)
    ]
    return {
        "name": "simulator-tests",
        "partner": {
            "tenant_id": PARTNER,
            "domain": "partner.onmicrosoft.com",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "user_upn": "agent@partner.onmicrosoft.com",
            "refresh_token": SEED_REFRESH_TOKEN,
            "faults": (faults or {}).get(PARTNER, []),
            **(partner or {}),
        },
        "settings": settings or {},
        "customers": default_customers + (customers or []),
    }


def https_session(sim: SimulatorServer) -> requests.Session:
    """Trusts the simulator CA; `trust_env=False` as REQUESTS_CA_BUNDLE would override `verify`."""
    session = requests.Session()
    session.verify = str(sim.ca_path)
    session.trust_env = False
    return session


def msal_app(
    sim: SimulatorServer,
    tenant: str,
    session: requests.Session,
    *,
    secret: str | None = None,
    cache: msal.TokenCache | None = None,
) -> msal.ConfidentialClientApplication:
    """A new app per call: each has its own throttle cache, so state changes are seen at once."""
    env = sim.environment()
    return msal.ConfidentialClientApplication(
        env["SYNC365_CLIENT_ID"],
        client_credential=secret or env["SYNC365_CLIENT_SECRET"],
        authority=f"{sim.url}/{tenant}",
        instance_discovery=False,
        http_client=session,
        token_cache=cache,
    )


def redeem(
    sim: SimulatorServer, tenant: str, scope: str, refresh_token: str | None = None
) -> dict[str, Any]:
    """Redeem a refresh token (the seed by default) at `tenant` with real MSAL; its result dict."""
    session = https_session(sim)
    token = refresh_token or sim.environment()["SYNC365_REFRESH_TOKEN"]
    return msal_app(sim, tenant, session).acquire_token_by_refresh_token(token, scopes=[scope])


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
