"""The aiohttp application: all three services and the control API on one origin, plus counters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from sync365_pipeline.simulator.control import ControlApi
from sync365_pipeline.simulator.graph import Graph
from sync365_pipeline.simulator.identity import IdentityPlatform
from sync365_pipeline.simulator.partner_center import PartnerCenter
from sync365_pipeline.simulator.state import SimulatorState
from sync365_pipeline.simulator.users import UsersApi
from sync365_pipeline.simulator.wire import TENANT_KEY

STATE_KEY = web.AppKey("state", SimulatorState)


def build_app(state: SimulatorState) -> web.Application:
    app = web.Application(middlewares=[_counting_middleware(state)])
    app[STATE_KEY] = state
    ControlApi(state).add_routes(app)
    PartnerCenter(state).add_routes(app)
    graph = Graph(state)
    graph.add_routes(app)
    UsersApi(state, graph).add_routes(app)
    IdentityPlatform(state).add_routes(app)  # last: its `/{tenant}/...` patterns are the widest
    return app


def _counting_middleware(
    state: SimulatorState,
) -> Callable[
    [web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
    Awaitable[web.StreamResponse],
]:
    """Count every service request (route, tenant, status, concurrency) and apply global latency.

    The log keeps method, path and status only: never headers, bodies or queries, which can hold
    tokens and secrets.
    """

    @web.middleware
    async def middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        route = request.match_info.route.name or "unmatched"
        if route.startswith("control."):
            return await handler(request)
        stats = state.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        status = 500
        try:
            delay = state.global_latency_s()
            if delay > 0:
                await asyncio.sleep(delay)
            response = await handler(request)
            status = response.status
            if isinstance(response, web.Response) and isinstance(response.body, bytes):
                stats.bytes_by_route[route] += len(response.body)
            return response
        except web.HTTPException as redirect_or_error:
            status = redirect_or_error.status
            raise
        finally:
            stats.in_flight -= 1
            stats.total += 1
            stats.by_route[route] += 1
            stats.by_status[str(status)] += 1
            tenant = request.get(TENANT_KEY)
            if tenant:
                stats.by_tenant[tenant] += 1
            stats.log.append(
                {"method": request.method, "path": request.path, "status": status, "route": route}
            )

    return middleware
