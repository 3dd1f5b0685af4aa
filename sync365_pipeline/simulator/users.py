"""Graph `GET /v1.0/users` and `GET /v1.0/users/delta` over each tenant's directory
(`directory.py`), with the query rules, errors and limits of microsoft-apis-more.md §3.

`$skiptoken` and `$deltatoken` are opaque to clients (base64url JSON here): a users skip token
names the last id served, so users added or removed between two pages neither repeat nor shift
the rest; a delta token names the directory version it was issued at.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aiohttp import web

from sync365_pipeline.simulator.directory import (
    DEFAULT_PROPERTIES,
    PROPERTIES,
    DirectoryUser,
    TenantDirectory,
)
from sync365_pipeline.simulator.graph import BadQueryError, Graph, link
from sync365_pipeline.simulator.state import SimulatorState
from sync365_pipeline.simulator.tokens import b64url, b64url_decode
from sync365_pipeline.simulator.wire import graph_error, graph_request_ids, json_response

MAX_TOP = 999
SIGN_IN = "signInActivity"
_LICENSED = re.compile(r"^assignedLicenses/\$count\s+ne\s+0$", re.IGNORECASE)
_UNLICENSED = re.compile(
    r"^(?:assignedLicenses/\$count\s+eq\s+0|not\s*\(\s*assignedLicenses/\$count\s+ne\s+0\s*\))$",
    re.IGNORECASE,
)
_HOLDS_SKU = re.compile(
    r"^assignedLicenses/any\(\s*(\w+)\s*:\s*\1/skuId\s+eq\s+([0-9a-fA-F-]{36})\s*\)$",
    re.IGNORECASE,
)
_DELTA_UNSUPPORTED = ("$top", "$expand", "$orderby", "$filter", "$count", "$search")
THROTTLE_WINDOW_S = 10.0
REPORTING_REQUESTS = 5  # sign-in data: requests per 10 s per app and tenant (§3.6)


def resource_units(query: Any) -> int:
    """`GET users` costs 2 RU, 1 less with `$select`, 1 less with `$top` under 20; at least 1."""
    top = query.get("$top", "")
    cost = 2 - ("$select" in query) - (top.isdigit() and int(top) < 20)
    return max(1, cost)


def ru_budget(user_count: int) -> int:
    """Resource units per app and tenant per 10 s, by the tenant's size."""
    return 3500 if user_count < 50 else 5000 if user_count <= 500 else 8000


@dataclass
class _Window:
    """Costs spent in the last `THROTTLE_WINDOW_S` seconds (a sliding window)."""

    spent: deque[tuple[float, int]] = field(default_factory=deque)

    def admit(self, now: float, cost: int, budget: int) -> float | None:
        """Spend `cost` if it fits in `budget`; else the seconds until it would."""
        while self.spent and self.spent[0][0] <= now - THROTTLE_WINDOW_S:
            self.spent.popleft()
        if sum(c for _, c in self.spent) + cost > budget:
            return self.spent[0][0] + THROTTLE_WINDOW_S - now
        self.spent.append((now, cost))
        return None

    def share(self, budget: int) -> float:
        return sum(c for _, c in self.spent) / budget


class _RefusedError(Exception):
    """An answer other than the page (403, 429, the odd 400s), built where it is decided."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(frozen=True)
class DeltaCursor:
    """Where a delta round is: the versions it spans (`since` None: the first round, every
    user), the selected properties, the last id served and when its delta token was issued."""

    tenant_id: str
    since: int | None
    until: int
    selected: tuple[str, ...]
    after: str | None = None
    issued_at: float = 0.0

    def encode(self) -> str:
        fields = [self.tenant_id, self.since, self.until, self.selected, self.after, self.issued_at]
        return b64url(json.dumps(fields, separators=(",", ":")).encode())

    @classmethod
    def decode(cls, token: str, tenant_id: str) -> DeltaCursor:
        try:
            tenant, since, until, selected, after, issued_at = json.loads(b64url_decode(token))
            cursor = cls(tenant, since, until, tuple(selected), after, float(issued_at))
        except (ValueError, TypeError):
            raise BadQueryError("The delta or skip token is not valid.") from None
        if cursor.tenant_id != tenant_id:
            raise BadQueryError("The delta or skip token is not valid.")
        return cursor

    @cached_property
    def _selected_set(self) -> frozenset[str]:
        return frozenset(self.selected)

    def lists(self, user: DirectoryUser) -> bool:
        """Whether this round lists the user (changed, added or removed within it)."""
        if self.since is None:
            return user.removed_version is None
        if user.removed_version is not None:
            return self.since < user.removed_version <= self.until
        return self.since < user.changed_at(self._selected_set) <= self.until


class UsersApi:
    def __init__(self, state: SimulatorState, graph: Graph) -> None:
        self.state = state
        self.graph = graph
        self._budgets: dict[tuple[str, str], _Window] = {}  # (tenant, "ru" | "reporting")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1.0/users", self.users, name="graph.users")
        app.router.add_get("/v1.0/users/delta", self.delta, name="graph.usersDelta")

    async def users(self, request: web.Request) -> web.StreamResponse:
        return await self.graph.serve_tenant(request, self._answer(request, self._users_page))

    async def delta(self, request: web.Request) -> web.StreamResponse:
        return await self.graph.serve_tenant(request, self._answer(request, self._delta_page))

    def _answer(
        self,
        request: web.Request,
        page: Callable[[web.Request, str, dict[str, Any]], web.Response],
    ) -> Callable[[str, dict[str, Any]], web.Response]:
        def answer(tenant_id: str, claims: dict[str, Any]) -> web.Response:
            try:
                return page(request, tenant_id, claims)
            except _RefusedError as refused:
                return refused.response

        return answer

    # --- GET /users ------------------------------------------------------------------------------

    def _users_page(
        self, request: web.Request, tenant_id: str, claims: dict[str, Any]
    ) -> web.Response:
        query = request.query
        selected = _selection(query.get("$select"))
        directory = self.state.directory(tenant_id)
        sign_in = SIGN_IN in selected
        if sign_in:
            self._check_sign_in_allowed(request, tenant_id, claims)
        eventual = request.headers.get("ConsistencyLevel", "").lower() == "eventual"
        counted = eventual and query.get("$count") == "true"
        keep = _user_filter(query.get("$filter"), advanced_allowed=counted)
        top = self._page_size(request, sign_in)
        cost = resource_units(query)
        headers = self._spend(request, tenant_id, claims, directory, cost, sign_in)
        after = _skip_token_after(query.get("$skiptoken"))
        page: list[DirectoryUser] = []
        more = False
        for user in directory.after(after):
            if user.removed_version is None and keep(user):
                if len(page) == top:
                    more = True
                    break
                page.append(user)
        body: dict[str, Any] = {"@odata.context": _context(request, query.get("$select"))}
        if counted and after is None:
            body["@odata.count"] = sum(1 for user in directory.alive() if keep(user))
        body["value"] = [_selected(user.resource(), selected) for user in page]
        if more:
            skip_token = b64url(json.dumps({"after": page[-1].id}).encode())
            body["@odata.nextLink"] = link(request, {**query, "$skiptoken": skip_token})
        return json_response(body, headers=headers)

    def _check_sign_in_allowed(
        self, request: web.Request, tenant_id: str, claims: dict[str, Any]
    ) -> None:
        """Sign-in activity needs AuditLog.Read.All and Entra ID P1 or P2 in the tenant (§3.4)."""
        permissions = set(str(claims.get("scp", "")).split()) | set(claims.get("roles", []))
        if "AuditLog.Read.All" not in permissions:
            raise _RefusedError(
                graph_error(
                    request,
                    403,
                    "Authentication_MSGraphPermissionMissing",
                    "Calling principal does not have required MSGraph permissions "
                    "AuditLog.Read.All",
                )
            )
        skus = self.state.skus(tenant_id)
        if not self.state.directory(tenant_id).premium(skus, self.state.catalog):
            raise _RefusedError(
                graph_error(
                    request,
                    403,
                    "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                    "Neither tenant is B2C or tenant doesn't have premium license",
                )
            )

    def _page_size(self, request: web.Request, sign_in: bool) -> int:
        """`$top` (default `page_size_graph`, 999 at most); with sign-in activity, capped at
        `users_sign_in_page_cap` silently or, in the 2023 behaviour, refused with its odd body."""
        settings = self.state.settings
        raw = request.query.get("$top")
        if raw is None:
            top = settings.page_size_graph
        elif raw.isdigit() and 1 <= int(raw) <= MAX_TOP:
            top = int(raw)
        else:
            raise BadQueryError(
                f"Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive.",
                code="Request_UnsupportedQuery",
            )
        cap = settings.users_sign_in_page_cap
        if not sign_in or top <= cap:
            return top
        if settings.users_sign_in_over_cap == "cap":
            return cap
        raise _RefusedError(
            json_response(
                {
                    "@odata.context": "http://reportingservice.activedirectory.windowsazure.com"
                    "/auditLogs/$metadata#Edm.String",
                    "value": f"Cannot query data for more than {cap} users at a time.",
                },
                400,
                graph_request_ids(request),
            )
        )

    # --- GET /users/delta ------------------------------------------------------------------------

    def _delta_page(
        self, request: web.Request, tenant_id: str, claims: dict[str, Any]
    ) -> web.Response:
        query = request.query
        directory = self.state.directory(tenant_id)
        headers = self._spend(
            request, tenant_id, claims, directory, resource_units(query), sign_in=False
        )
        if "$skiptoken" in query:
            cursor = DeltaCursor.decode(query["$skiptoken"], tenant_id)
        elif "$deltatoken" in query and query["$deltatoken"] != "latest":
            cursor = self._resumed(request, tenant_id, directory)
        else:
            cursor = self._first_round(query, tenant_id, directory)
            if query.get("$deltatoken") == "latest":  # "sync from now": no data, a delta link
                return json_response(self._delta_body(request, cursor, [], None), headers=headers)
        page: list[DirectoryUser] = []
        more = False
        for user in directory.after(cursor.after):
            if cursor.lists(user):
                if len(page) == self.state.settings.page_size_users_delta:
                    more = True
                    break
                page.append(user)
        following = None
        if more:
            following = DeltaCursor(
                tenant_id, cursor.since, cursor.until, cursor.selected, page[-1].id
            )
        return json_response(self._delta_body(request, cursor, page, following), headers=headers)

    def _first_round(self, query: Any, tenant_id: str, directory: TenantDirectory) -> DeltaCursor:
        """The cursor of a round without a token: every user, as of now."""
        refused = [option for option in _DELTA_UNSUPPORTED if option in query]
        if refused:
            raise BadQueryError(f"The query option {refused[0]} is not supported on delta queries.")
        selected = _selection(query.get("$select"))
        if SIGN_IN in selected:
            raise BadQueryError(
                "Invalid request for delta query: for this entity set, $expand/$select is not "
                "supported for the following properties: signInActivity"
            )
        return DeltaCursor(tenant_id, None, directory.version, tuple(selected))

    def _resumed(
        self, request: web.Request, tenant_id: str, directory: TenantDirectory
    ) -> DeltaCursor:
        """The round after a delta token: its changes up to now, unless the token expired."""
        token = DeltaCursor.decode(request.query["$deltatoken"], tenant_id)
        settings = self.state.settings
        if time.time() - token.issued_at <= settings.delta_token_lifetime_s:
            return DeltaCursor(tenant_id, token.until, directory.version, token.selected)
        if settings.delta_expired_answer == "gone":
            restart = {"$select": ",".join(token.selected)} if token.selected else {}
            raise _RefusedError(
                graph_error(
                    request,
                    410,
                    "resyncRequired",
                    "Resync required. Replace any local cached copies of the users with a new "
                    "full synchronization.",
                    {"Location": link(request, restart)},
                )
            )
        raise _RefusedError(
            graph_error(
                request,
                400,
                "syncStateNotFound",
                "The sync state of this delta token was not found or has expired; start a new "
                "sync without a token.",
            )
        )

    def _delta_body(
        self,
        request: web.Request,
        cursor: DeltaCursor,
        page: list[DirectoryUser],
        following: DeltaCursor | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"@odata.context": _context(request, ",".join(cursor.selected))}
        if following is not None:
            body["@odata.nextLink"] = link(request, {"$skiptoken": following.encode()})
        else:
            after = DeltaCursor(
                cursor.tenant_id, cursor.until, cursor.until, cursor.selected, None, time.time()
            )
            body["@odata.deltaLink"] = link(request, {"$deltatoken": after.encode()})
        body["value"] = [
            _selected(user.resource(), cursor.selected)
            if user.removed_version is None
            else {"id": user.id, "@removed": {"reason": "changed"}}
            for user in page
        ]
        return body

    # --- throttling (§3.6) -----------------------------------------------------------------------

    def _spend(
        self,
        request: web.Request,
        tenant_id: str,
        claims: dict[str, Any],
        directory: TenantDirectory,
        cost: int,
        sign_in: bool,
    ) -> dict[str, str]:
        """The answer's headers: its cost in resource units, and with `identity_throttling`
        the share of the tenant's budget once above 80 %. Over the budget, or over the reporting
        limit of 5 requests per 10 s for sign-in data, 429 with Retry-After."""
        headers = {**graph_request_ids(request), "x-ms-resource-unit": str(cost)}
        if not self.state.settings.identity_throttling:
            return headers
        now = time.monotonic()
        budget = ru_budget(sum(1 for _ in directory.alive()))
        limits = [("ru", cost, budget, "ResourceUnitLimitExceeded")]
        if sign_in:
            limits.append(("reporting", 1, REPORTING_REQUESTS, "ReportingRequestLimitExceeded"))
        for kind, spend, limit, information in limits:
            window = self._budgets.setdefault((tenant_id, kind), _Window())
            wait = window.admit(now, spend, limit)
            if wait is not None:
                app_id = claims.get("appid", "")
                raise _RefusedError(
                    graph_error(
                        request,
                        429,
                        "TooManyRequests",
                        "Too many requests.",
                        {
                            "Retry-After": str(max(1, math.ceil(wait))),
                            "x-ms-throttle-scope": f"Tenant_Application/Read/{app_id}/{tenant_id}",
                            "x-ms-throttle-information": information,
                            "x-ms-resource-unit": str(cost),
                        },
                    )
                )
        share = self._budgets[(tenant_id, "ru")].share(budget)
        if share > 0.8:
            headers["x-ms-throttle-limit-percentage"] = f"{share:.1f}"
        return headers


def _selection(raw: str | None) -> list[str]:
    """The `$select`ed properties in their order, `id` always; Graph's default set without it."""
    if raw is None:
        return list(DEFAULT_PROPERTIES)
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if name not in PROPERTIES:
            raise BadQueryError(
                f"Could not find a property named '{name}' on type 'microsoft.graph.user'."
            )
    return names if "id" in names else ["id", *names]


def _selected(resource: dict[str, Any], selected: Sequence[str]) -> dict[str, Any]:
    return {name: resource[name] for name in selected if name in resource}


def _context(request: web.Request, select: str | None) -> str:
    shape = f"users({select})" if select else "users"
    return f"https://{request.host}/v1.0/$metadata#{shape}"


def _user_filter(
    expression: str | None, *, advanced_allowed: bool
) -> Callable[[DirectoryUser], bool]:
    """The documented licence filters (§3.1); the `$count` ones are advanced queries, refused
    without `ConsistencyLevel: eventual` and `$count=true`."""
    text = " ".join((expression or "").split())
    if not text:
        return lambda user: True
    holds = _HOLDS_SKU.match(text)
    if holds:
        sku_id = holds.group(2).lower()
        return lambda user: sku_id in user.holdings
    licensed, unlicensed = _LICENSED.match(text), _UNLICENSED.match(text)
    if not (licensed or unlicensed):
        raise BadQueryError(f"Invalid filter clause: {text}")
    if not advanced_allowed:
        raise BadQueryError("Unsupported Query.", code="Request_UnsupportedQuery")
    if licensed:
        return lambda user: bool(user.holdings)
    return lambda user: not user.holdings


def _skip_token_after(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        after = json.loads(b64url_decode(token))["after"]
    except (ValueError, TypeError, KeyError):
        raise BadQueryError("Invalid $skiptoken.") from None
    if not isinstance(after, str):
        raise BadQueryError("Invalid $skiptoken.")
    return after
