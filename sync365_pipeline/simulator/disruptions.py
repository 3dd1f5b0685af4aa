"""Per-tenant disruptions shared by the three services: latency, throttling, 5xx, bad bodies.

Each service says how it words a 429 and a 5xx (`ServiceErrors`); `serve` applies the tenant's
faults around the handler, sleeping with `asyncio.sleep` so a slow tenant never holds up others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from sync365_pipeline.simulator.scenario import (
    MalformedFault,
    ServerErrorFault,
    Service,
    ThrottleFault,
)
from sync365_pipeline.simulator.state import DISRUPTIONS, SimulatorState
from sync365_pipeline.simulator.wire import TENANT_KEY, html_error_page, truncated


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
) -> web.Response:
    """Answer through the tenant's faults: delay, maybe fail, else `produce()`, maybe mangled."""
    request[TENANT_KEY] = tenant_id
    delay = state.tenant_latency_s(tenant_id, errors.service)
    if delay > 0:
        await asyncio.sleep(delay)
    fault = state.take_fault(tenant_id, DISRUPTIONS, errors.service)
    if isinstance(fault, ThrottleFault):
        return errors.throttled(request, fault.retry_after)
    if isinstance(fault, ServerErrorFault):
        return errors.server_error(request, fault.status, fault.retry_after)
    if isinstance(fault, MalformedFault) and fault.kind == "html":
        return html_error_page(fault.status)
    response = await produce()
    if isinstance(fault, MalformedFault):
        return truncated(response)
    return response
