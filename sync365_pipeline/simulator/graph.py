"""Microsoft Graph v1.0: subscribedSkus, directory/subscriptions, contracts, GDAP relationships
and their access assignments, organization, and the partner's app registration (its client
secrets).

The tenant whose data is served is the access token's `tid`; paging is `@odata.nextLink`, an
absolute URL on this server carrying `$skiptoken`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.simulator.disruptions import ServiceErrors, serve
from sync365_pipeline.simulator.identity import GRAPH_RESOURCES
from sync365_pipeline.simulator.payloads import application, organization, partner_organization
from sync365_pipeline.simulator.state import SimulatorState
from sync365_pipeline.simulator.tokens import (
    InvalidTokenError,
    b64url,
    b64url_decode,
    bearer_claims,
)
from sync365_pipeline.simulator.wire import (
    GRAPH_UNAUTHORIZED_CHALLENGE,
    graph_error,
    graph_request_ids,
    json_response,
)

_SERVER_ERROR_CODES = {
    500: ("generalException", "An unspecified error has occurred."),
    502: ("UnknownError", "Bad gateway."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
    504: ("gatewayTimeout", "The gateway timed out waiting for the service."),
}
_FILTER_CLAUSE = re.compile(r"^\s*([A-Za-z/]+)\s+eq\s+'([^']*)'\s*$")
MAX_TOP = {"delegatedAdminRelationships": 300, "accessAssignments": 300}
# Delegated or application permissions that read an app registration (§6).
APPLICATION_READERS = frozenset(
    {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"}
)
DEFAULT_MAX_TOP = 999


def _graph_throttled(request: web.Request, retry_after: int) -> web.Response:
    return graph_error(
        request,
        429,
        "TooManyRequests",
        "Too many requests from Identifier:sync365-simulator under category:"
        "throttle.aad.ags.subscriptionservice.dc.list. Please try again later.",
        {"Retry-After": str(retry_after)},
    )


def _graph_server_error(request: web.Request, status: int, retry_after: int | None) -> web.Response:
    code, message = _SERVER_ERROR_CODES[status]
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return graph_error(request, status, code, message, headers)


def _forbidden(request: web.Request) -> web.Response:
    """Graph's 403 for a missing role or permission (microsoft-apis.md §6.7)."""
    return graph_error(
        request,
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )


def _not_found(request: web.Request, resource_id: str) -> web.Response:
    return graph_error(
        request,
        404,
        "Request_ResourceNotFound",
        f"Resource '{resource_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


GRAPH_ERRORS = ServiceErrors("graph", _graph_throttled, _graph_server_error)


class BadQueryError(ValueError):
    """A query option or key Graph would reject with 400 (`code`, the message)."""

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code


class Graph:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    def add_routes(self, app: web.Application) -> None:
        routes = {
            "/v1.0/subscribedSkus": ("graph.subscribedSkus", self._subscribed_skus),
            "/v1.0/contracts": ("graph.contracts", self._contracts),
            "/v1.0/tenantRelationships/delegatedAdminRelationships": (
                "graph.delegatedAdminRelationships",
                self._gdap_relationships,
            ),
            "/v1.0/organization": ("graph.organization", self._organization),
            "/v1.0/directory/subscriptions": (
                "graph.directorySubscriptions",
                self.state.directory_subscriptions,
            ),
            "/v1.0/tenantRelationships/delegatedAdminRelationships/{relationship_id}"
            "/accessAssignments": ("graph.accessAssignments", self._access_assignments),
        }
        for path, (name, items) in routes.items():
            app.router.add_get(path, self._collection_handler(path, items), name=name)
        single_objects = (
            ("/v1.0/applications(appId='{app_id}')", "graph.application", self.application),
            (
                "/v1.0/directory/subscriptions/{subscription_id}",
                "graph.directorySubscription",
                self.directory_subscription,
            ),
            (
                "/v1.0/directory/subscriptions(commerceSubscriptionId='{subscription_id}')",
                "graph.directorySubscriptionByCommerceId",
                self.directory_subscription,
            ),
        )
        for path, name, handler in single_objects:
            app.router.add_get(path, handler, name=name)

    def _claims(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The bearer token's claims, or Graph's 401."""
        try:
            return bearer_claims(
                self.state.signer,
                request.headers.get("Authorization", ""),
                GRAPH_RESOURCES,
                time.time(),
            )
        except InvalidTokenError as reason:
            return graph_error(
                request,
                401,
                "InvalidAuthenticationToken",
                str(reason),
                GRAPH_UNAUTHORIZED_CHALLENGE,
            )

    def _collection_handler(
        self, path: str, items: Callable[..., list[dict[str, Any]]]
    ) -> Callable[[web.Request], Any]:
        """`items(tenant_id, **path_parameters)` served in pages."""
        entity_set = path.rsplit("/", 1)[1]

        async def handler(request: web.Request) -> web.StreamResponse:
            return await self.serve_tenant(
                request,
                lambda tenant_id, _claims: self._page(
                    request, entity_set, items(tenant_id, **request.match_info)
                ),
            )

        return handler

    async def serve_tenant(
        self, request: web.Request, answer: Callable[[str, dict[str, Any]], web.Response]
    ) -> web.StreamResponse:
        """`answer(tenant_id, claims)` for the token's tenant, behind Graph's gates: 401 without
        a valid token, the tenant's faults, 403 for a tenant that refuses the partner, 400 for a
        `BadQueryError`."""
        claims = self._claims(request)
        if isinstance(claims, web.Response):
            return claims
        tenant_id = str(claims.get("tid", ""))

        async def produce() -> web.Response:
            if self._denied(tenant_id, claims):
                return _forbidden(request)
            try:
                return answer(tenant_id, claims)
            except BadQueryError as problem:
                return graph_error(request, 400, problem.code, str(problem))

        return await serve(request, self.state, tenant_id, GRAPH_ERRORS, produce)

    def _denied(self, tenant_id: str, claims: dict[str, Any]) -> bool:
        """403 for a customer that forbids Graph, or that the partner user has no live access to."""
        if self.state.take_fault(tenant_id, frozenset({"graph_forbidden"})) is not None:
            return True
        if self.state.is_partner(tenant_id):
            return False
        customer = self.state.customers.get(tenant_id)
        if customer is None:
            return True
        is_app_only = claims.get("idtyp") == "app"
        return not is_app_only and not customer.has_delegated_access(utcnow())

    # --- collections -----------------------------------------------------------------------------

    def _subscribed_skus(self, tenant_id: str) -> list[dict[str, Any]]:
        return self.state.graph_subscribed_skus(tenant_id)

    def _contracts(self, tenant_id: str) -> list[dict[str, Any]]:
        return self.state.contracts() if self.state.is_partner(tenant_id) else []

    def _gdap_relationships(self, tenant_id: str) -> list[dict[str, Any]]:
        return self.state.gdap_relationships() if self.state.is_partner(tenant_id) else []

    def _access_assignments(self, tenant_id: str, relationship_id: str) -> list[dict[str, Any]]:
        """Partner tenant only; another tenant has no such relationship."""
        found = self.state.access_assignments(relationship_id)
        if found is None or not self.state.is_partner(tenant_id):
            raise BadQueryError(
                "The passed in delegatedAdminRelationshipId is invalid.", code="badRequest"
            )
        return found

    def _organization(self, tenant_id: str) -> list[dict[str, Any]]:
        if self.state.is_partner(tenant_id):
            return [partner_organization(self.state.partner)]
        customer = self.state.customers[tenant_id]
        return [
            organization(
                customer.tenant_id, customer.display_name, customer.default_domain, customer.country
            )
        ]

    # --- the partner's app registration ----------------------------------------------------------

    async def application(self, request: web.Request) -> web.StreamResponse:
        claims = self._claims(request)
        if isinstance(claims, web.Response):
            return claims
        tenant_id = str(claims.get("tid", ""))

        async def produce() -> web.Response:
            app_id = request.match_info["app_id"].lower()
            permissions = set(str(claims.get("scp", "")).split()) | set(claims.get("roles", []))
            denied = self.state.take_fault(tenant_id, frozenset({"graph_forbidden"})) is not None
            readable = self.state.partner.app_readable and APPLICATION_READERS & permissions
            if denied or not readable:
                return _forbidden(request)
            # The registration lives in the partner's tenant; customers hold only a service
            # principal.
            if not self.state.is_partner(tenant_id) or app_id != self.state.partner.client_id:
                return _not_found(request, app_id)
            body = application(self.state.partner, utcnow())
            if "$select" in request.query:
                selected = {name.strip() for name in request.query["$select"].split(",")}
                body = {k: v for k, v in body.items() if k in selected | {"id"}}
            context = f"https://{request.host}/v1.0/$metadata#applications/$entity"
            return json_response(
                {"@odata.context": context, **body}, headers=graph_request_ids(request)
            )

        return await serve(request, self.state, tenant_id, GRAPH_ERRORS, produce)

    # --- one company subscription ----------------------------------------------------------------

    async def directory_subscription(self, request: web.Request) -> web.StreamResponse:
        """By its id or its commerce id, in the `{id}` slot as the docs' own example does, or by
        the `commerceSubscriptionId` alternate key (microsoft-apis-more.md §2.1)."""
        wanted = request.match_info["subscription_id"].lower()

        def answer(tenant_id: str, _claims: dict[str, Any]) -> web.Response:
            for item in self.state.directory_subscriptions(tenant_id):
                if wanted in (item["id"], item["commerceSubscriptionId"]):
                    context = f"https://{request.host}/v1.0/$metadata#directory/subscriptions"
                    return json_response(
                        {"@odata.context": f"{context}/$entity", **item},
                        headers=graph_request_ids(request),
                    )
            return _not_found(request, wanted)

        return await self.serve_tenant(request, answer)

    # --- OData paging and query options ----------------------------------------------------------

    def _page(
        self, request: web.Request, entity_set: str, items: list[dict[str, Any]]
    ) -> web.Response:
        query = request.query
        items = _filtered(items, query.get("$filter"))
        max_top = MAX_TOP.get(entity_set, DEFAULT_MAX_TOP)
        top = _int_option(query, "$top", self.state.settings.page_size_graph, 1, max_top)
        offset = _skip_token_offset(query.get("$skiptoken"))
        page = items[offset : offset + top]
        if "$select" in query:
            selected = {name.strip() for name in query["$select"].split(",")} | {"id"}
            page = [{k: v for k, v in item.items() if k in selected} for item in page]
        base = f"https://{request.host}"
        body: dict[str, Any] = {"@odata.context": f"{base}/v1.0/$metadata#{entity_set}"}
        if query.get("$count") == "true" and offset == 0:
            body["@odata.count"] = len(items)
        body["value"] = page
        if offset + top < len(items):
            skip_token = b64url(f"offset:{offset + top}".encode())
            body["@odata.nextLink"] = link(request, {**query, "$skiptoken": skip_token})
        return json_response(body, headers=graph_request_ids(request))


def link(request: web.Request, query: Mapping[str, str]) -> str:
    """An absolute link to this request's path on this server with `query` (next and delta
    links: Graph's are absolute)."""
    query_string = urlencode(query, quote_via=quote, safe="$'/,")
    return f"https://{request.host}{request.path}?{query_string}"


def _int_option(query: Any, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return min(default, high)
    if not raw.isdigit() or int(raw) < low:
        raise BadQueryError(f"Invalid value '{raw}' for query option {name}.")
    return min(int(raw), high)


def _skip_token_offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        label, _, offset = b64url_decode(token).decode("ascii").partition(":")
        if label == "offset" and offset.isdigit():
            return int(offset)
    except ValueError:
        pass
    raise BadQueryError("Invalid $skiptoken.")


def _filtered(items: list[dict[str, Any]], expression: str | None) -> list[dict[str, Any]]:
    """`field eq 'value'` clauses joined by `and` (e.g. status eq 'active'); paths use `/`."""
    if not expression:
        return items
    clauses = []
    for clause in re.split(r"\s+and\s+", expression):
        match = _FILTER_CLAUSE.match(clause)
        if match is None:
            raise BadQueryError(f"Invalid filter clause: {clause.strip()}")
        clauses.append((match.group(1).split("/"), match.group(2)))

    def value_at(item: dict[str, Any], path: list[str]) -> Any:
        for key in path:
            item = item.get(key, {}) if isinstance(item, dict) else {}
        return item

    return [
        item
        for item in items
        if all(str(value_at(item, path)).lower() == value.lower() for path, value in clauses)
    ]
