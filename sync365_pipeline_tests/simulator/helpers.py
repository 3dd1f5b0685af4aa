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
