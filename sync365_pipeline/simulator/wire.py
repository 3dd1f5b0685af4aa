"""Microsoft's response shapes: one builder per service for errors, plus the shared JSON response.

The identity platform (ESTS), Partner Center and Graph each have their own error body and headers;
every handler goes through these builders so a shape is written once.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from sync365_pipeline.core.clock import utcnow

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
NO_CACHE_HEADERS = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache", "Expires": "-1"}
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
TENANT_KEY = web.RequestKey("tenant", str)  # the tenant a request was for, for the counters


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode("utf-8"),
        status=status,
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
    )


# --- Identity platform (ESTS) ------------------------------------------------------------------


def identity_error(
    request: web.Request,
    error: str,
    code: int,
    text: str,
    *,
    suberror: str | None = None,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """ESTS's error body: `AADSTSnnnnn: text` plus trace, correlation and timestamp fields.

    The status is 401 for `invalid_client` and 400 otherwise unless given, as ESTS answers.
    """
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    timestamp = utcnow().strftime("%Y-%m-%d %H:%M:%SZ")
    body: dict[str, Any] = {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {text}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    if suberror is not None:
        body["suberror"] = suberror
    if status is None:
        status = 401 if error == "invalid_client" else 400
    return json_response(
        body,
        status,
        {
            **NO_CACHE_HEADERS,
            "x-ms-request-id": trace_id,
            "x-ms-ests-server": "2.1.sync365-simulator",
            **(headers or {}),
        },
    )


# --- Microsoft Graph -------------------------------------------------------------------------


def graph_request_ids(request: web.Request) -> dict[str, str]:
    """Graph's `request-id` and `client-request-id` (equal when the client sent one)."""
    client_request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    return {"request-id": client_request_id, "client-request-id": client_request_id}


def graph_error(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    ids = graph_request_ids(request)
    inner = {"date": utcnow().strftime("%Y-%m-%dT%H:%M:%S"), **ids}
    return json_response(
        {"error": {"code": code, "message": message, "innerError": inner}},
        status,
        {**ids, **(headers or {})},
    )


GRAPH_UNAUTHORIZED_CHALLENGE = {
    "WWW-Authenticate": (
        'Bearer realm="", '
        'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
        f'client_id="{GRAPH_APP_ID}"'
    )
}


# --- Partner Center --------------------------------------------------------------------------


def partner_center_ids(request: web.Request) -> dict[str, str]:
    """Partner Center echoes MS-RequestId and MS-CorrelationId, generating missing ones."""
    return {
        "MS-RequestId": request.headers.get("MS-RequestId") or str(uuid.uuid4()),
        "MS-CorrelationId": request.headers.get("MS-CorrelationId") or str(uuid.uuid4()),
        "MS-CV": request.headers.get("MS-CV") or "sync365sim.0",
        "MS-ServerId": "sync365-simulator",
    }


def partner_center_error(
    request: web.Request,
    status: int,
    code: int | str,
    description: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return json_response(
        {"code": code, "description": description, "data": [], "source": "PartnerFD"},
        status,
        {**partner_center_ids(request), **(headers or {})},
    )


def partner_center_throttled(request: web.Request, retry_after: int) -> web.Response:
    """The API-Management gateway's 429: a different body shape from Partner Center's own errors."""
    return json_response(
        {
            "statusCode": 429,
            "message": f"Rate limit is exceeded. Try again in {retry_after} seconds.",
        },
        429,
        {**partner_center_ids(request), "Retry-After": str(retry_after)},
    )


# --- Bodies a client cannot parse ------------------------------------------------------------


def html_error_page(status: int) -> web.Response:
    """What a gateway or proxy sends instead of JSON."""
    reason = web.Response(status=status).reason
    page = (
        "<!DOCTYPE html>\n<html><head><title>Service unavailable</title></head>"
        f"<body><h1>{status} {reason}</h1><p>The service is temporarily unavailable. "
        "Please try again later.</p></body></html>\n"
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


def truncated(response: web.Response) -> web.Response:
    """The same response with its body cut in half, as when a gateway drops the connection."""
    body = response.body if isinstance(response.body, bytes) else b""
    return web.Response(
        body=body[: max(1, len(body) // 2)],
        status=response.status,
        headers={k: v for k, v in response.headers.items() if k.lower() != "content-length"},
    )
