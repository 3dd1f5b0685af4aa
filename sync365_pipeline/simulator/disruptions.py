"""Per-tenant disruptions shared by the three services: latency, throttling, 5xx, bad bodies,
and the hostile answers a pipeline holding every customer's keys must survive (redirects to
other origins, resets, trickling bodies, deeply nested JSON, echoed secrets, odd bodies, bad
records, hostile text, huge numbers).

Each service says how it words a 429 and a 5xx (`ServiceErrors`); `serve` applies the tenant's
faults around the handler, sleeping with `asyncio.sleep` so a slow tenant never holds up others.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sync365_pipeline.simulator.scenario import (
    BadRecordFault,
    DeepJsonFault,
    EchoFault,
    Fault,
    HostileTextFault,
    HugeNumbersFault,
    MalformedFault,
    OddBodyFault,
    RedirectFault,
    ResetFault,
    ServerErrorFault,
    Service,
    ThrottleFault,
    TrickleFault,
)
from sync365_pipeline.simulator.state import DISRUPTIONS, SimulatorState
from sync365_pipeline.simulator.wire import (
    JSON_CONTENT_TYPE,
    TENANT_KEY,
    html_error_page,
    json_response,
    truncated,
)

# Keys whose string values are names a person reads (hostile_text) and whose integers are unit
# counts (huge_numbers), in Graph's and Partner Center's payloads.
NAME_KEYS = frozenset(
    {"displayName", "companyName", "productName", "friendlyName", "offerName", "name"}
)
UNIT_KEYS = frozenset(
    {
        "enabled",
        "suspended",
        "warning",
        "lockedOut",
        "consumedUnits",
        "activeUnits",
        "totalUnits",
        "quantity",
        "totalLicenses",
    }
)


@dataclass(frozen=True)
class ServiceErrors:
    service: Service
    throttled: Callable[[web.Request, int], web.Response]
    server_error: Callable[[web.Request, int, int | None], web.Response]


async def serve(
    request: web.Request,
    state: SimulatorState,
    tenant_id: str,
    errors: ServiceErrors,
    produce: Callable[[], Awaitable[web.Response]],
) -> web.StreamResponse:
    """Answer through the tenant's faults: delay, maybe fail, else `produce()`, maybe mangled."""
    request[TENANT_KEY] = tenant_id
    delay = state.tenant_latency_s(tenant_id, errors.service)
    if delay > 0:
        await asyncio.sleep(delay)
    fault = state.take_fault(tenant_id, DISRUPTIONS, errors.service)
    if (instead := await _instead_of_answer(request, errors, fault)) is not None:
        return instead
    response = await produce()
    if isinstance(fault, MalformedFault):
        return truncated(response)
    if isinstance(fault, BadRecordFault | HostileTextFault | HugeNumbersFault):
        return _rewritten(response, fault)
    if isinstance(fault, TrickleFault):
        return await _trickle(request, response, fault)
    return response


async def _instead_of_answer(
    request: web.Request, errors: ServiceErrors, fault: Fault | None
) -> web.StreamResponse | None:
    """The answer a fault gives before (and instead of) the real one, if it does."""
    if isinstance(fault, ThrottleFault):
        return errors.throttled(request, fault.retry_after)
    if isinstance(fault, ServerErrorFault):
        return errors.server_error(request, fault.status, fault.retry_after)
    if isinstance(fault, MalformedFault) and fault.kind == "html":
        return html_error_page(fault.status)
    if isinstance(fault, RedirectFault):
        return web.Response(status=fault.status, headers={"Location": fault.location})
    if isinstance(fault, ResetFault):
        return _reset(request)
    if isinstance(fault, DeepJsonFault):
        nested = "[" * fault.depth + "]" * fault.depth
        return web.Response(body=nested.encode(), headers={"Content-Type": JSON_CONTENT_TYPE})
    if isinstance(fault, OddBodyFault):
        return json_response(fault.body, fault.status)
    if isinstance(fault, EchoFault):
        form = await request.text()
        echoed = f"Bad request: {request.method} {request.path_qs} {dict(request.headers)} {form}"
        return json_response(
            {"error": "invalid_request", "error_description": echoed, "message": echoed},
            fault.status,
        )
    return None


def _reset(request: web.Request) -> web.Response:
    """Abort the connection with a TCP RST (SO_LINGER 0), so the client sees a reset or EOF."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=500)  # never reaches the client: the connection is gone


def _rewritten(
    response: web.Response, fault: BadRecordFault | HostileTextFault | HugeNumbersFault
) -> web.Response:
    """A JSON answer with the fault applied to its body; other answers pass unchanged."""
    if response.status != 200 or not isinstance(response.body, bytes):
        return response
    try:
        body = json.loads(response.body)
    except ValueError:
        return response
    if isinstance(fault, BadRecordFault):
        for key in ("value", "items"):
            if isinstance(body, dict) and isinstance(body.get(key), list):
                body[key].insert(len(body[key]) // 2, fault.record)
    elif isinstance(fault, HostileTextFault):
        body = _replace(body, NAME_KEYS, fault.text)
    else:
        body = _replace(body, UNIT_KEYS, fault.value)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    # ensure_ascii keeps a lone surrogate as a \ud800 escape: valid JSON text, hostile content.
    return web.Response(body=json.dumps(body).encode(), status=200, headers=headers)


def _replace(node: Any, keys: frozenset[str], replacement: str | int) -> Any:
    """`node` with every value of `replacement`'s type under one of `keys` replaced by it."""
    if isinstance(node, dict):
        return {
            key: replacement
            if key in keys and type(value) is type(replacement)
            else _replace(value, keys, replacement)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_replace(item, keys, replacement) for item in node]
    return node


async def _trickle(
    request: web.Request, response: web.Response, fault: TrickleFault
) -> web.StreamResponse:
    """Send the real answer a few bytes at a time; a client without a deadline waits for ever."""
    body = response.body if isinstance(response.body, bytes) else b""
    stream = web.StreamResponse(status=response.status, headers=dict(response.headers))
    stream.content_length = len(body)
    await stream.prepare(request)
    try:
        for start in range(0, len(body), fault.chunk_bytes):
            await stream.write(body[start : start + fault.chunk_bytes])
            await asyncio.sleep(fault.interval_ms / 1000)
        await stream.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client gave up, as it should
    return stream
