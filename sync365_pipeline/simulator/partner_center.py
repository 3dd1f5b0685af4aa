"""Partner Center REST v1: the customer list (seek paging), a customer's subscribed SKUs, the
subscriptions the partner sold it (microsoft-apis-more.md §1) and CPV consent
(`applicationconsents`, §4).

Only tokens for the Partner Center audience in the partner's tenant are accepted; App+User tokens
must carry `mfa` in `amr` (Partner Center's MFA enforcement answers 401 code 900421 otherwise).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.simulator.disruptions import ServiceErrors, serve
from sync365_pipeline.simulator.identity import PARTNER_CENTER_RESOURCES
from sync365_pipeline.simulator.payloads import partner_center_subscribed_sku
from sync365_pipeline.simulator.scenario import Customer
from sync365_pipeline.simulator.state import SimulatorState
from sync365_pipeline.simulator.tokens import (
    InvalidTokenError,
    b64url,
    b64url_decode,
    bearer_claims,
)
from sync365_pipeline.simulator.wire import (
    json_response,
    partner_center_error,
    partner_center_ids,
    partner_center_throttled,
)

MAX_PAGE_SIZE = 500
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
ALREADY_EXISTS = "Permission entry already exists."
INVALID_TOKEN_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def _partner_center_server_error(
    request: web.Request, status: int, retry_after: int | None
) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return partner_center_error(request, status, 800003, "Unexpected service error", headers)


PARTNER_CENTER_ERRORS = ServiceErrors(
    "partner_center", partner_center_throttled, _partner_center_server_error
)


class PartnerCenter:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/customers", self.customers, name="partner_center.customers")
        app.router.add_get(
            "/v1/customers/{customer}/subscribedskus",
            self.subscribed_skus,
            name="partner_center.subscribedskus",
        )
        app.router.add_get(
            "/v1/customers/{customer}/subscriptions",
            self.subscriptions,
            name="partner_center.subscriptions",
        )
        app.router.add_get(
            "/v1/customers/{customer}/subscriptions/{subscription}",
            self.subscription,
            name="partner_center.subscription",
        )
        app.router.add_post(
            "/v1/customers/{customer}/applicationconsents",
            self.application_consents,
            name="partner_center.applicationconsents",
        )

    def _authenticate(self, request: web.Request) -> dict[str, Any] | web.Response:
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            return partner_center_error(
                request,
                401,
                800001,
                "Partner Token missing in request context",
                INVALID_TOKEN_CHALLENGE,
            )
        try:
            claims = bearer_claims(
                self.state.signer, authorization, PARTNER_CENTER_RESOURCES, time.time()
            )
        except InvalidTokenError:
            return partner_center_error(request, 401, 400, "Access denied", INVALID_TOKEN_CHALLENGE)
        if claims.get("tid") != self.state.partner.tenant_id:
            return partner_center_error(request, 403, 2032, "Access denied")
        if "scp" in claims and "mfa" not in claims.get("amr", []):
            return partner_center_error(
                request,
                401,
                900421,
                "Authentication failed. MFA required.",
                INVALID_TOKEN_CHALLENGE,
            )
        return claims

    async def customers(self, request: web.Request) -> web.Response:
        claims = self._authenticate(request)
        if isinstance(claims, web.Response):
            return claims
        return await serve(
            request,
            self.state,
            self.state.partner.tenant_id,
            PARTNER_CENTER_ERRORS,
            lambda: self._customers_page(request),
        )

    async def _customers_page(self, request: web.Request) -> web.Response:
        raw_size = request.query.get("size")
        if raw_size is not None and not raw_size.isdigit():
            return partner_center_error(request, 400, 800002, "Invalid request input")
        size = min(int(raw_size or self.state.settings.page_size_customers), MAX_PAGE_SIZE) or 1
        return self._seek_page(
            request, self.state.partner_center_customers(), f"/v1/customers?size={size}", size
        )

    def _seek_page(
        self, request: web.Request, items: list[dict[str, Any]], self_uri: str, size: int
    ) -> web.Response:
        """One page of `items`: `links.next` (`seekOperation=Next` plus an `MS-ContinuationToken`
        header) while more remain."""
        offset = 0
        if request.query.get("seekOperation", "").lower() == "next":
            decoded = self._offset_from(request.headers.get("MS-ContinuationToken"))
            if decoded is None:
                return partner_center_error(
                    request, 400, 800002, "Invalid request input: continuation token is invalid"
                )
            offset = decoded
        page = items[offset : offset + size]
        links: dict[str, Any] = {"self": {"uri": self_uri, "method": "GET", "headers": []}}
        if offset + size < len(items):
            separator = "&" if "?" in self_uri else "?"
            links["next"] = {
                "uri": f"{self_uri}{separator}seekOperation=Next",
                "method": "GET",
                "headers": [
                    {"key": "MS-ContinuationToken", "value": self._token_for(offset + size)}
                ],
            }
        body = {
            "totalCount": len(page),
            "items": page,
            "links": links,
            "attributes": {"objectType": "Collection"},
        }
        return json_response(body, headers=partner_center_ids(request))

    def _token_for(self, offset: int) -> str:
        """Opaque like Partner Center's (`guid,base64,hex`); signed so edits are rejected."""
        payload = b64url(f"{offset}".encode())
        return f"{self.state.partner.tenant_id},{payload},{self.state.signer.mac(payload)[:12]}"

    def _offset_from(self, token: str | None) -> int | None:
        parts = (token or "").split(",")
        if len(parts) != 3 or parts[2] != self.state.signer.mac(parts[1])[:12]:
            return None
        return int(b64url_decode(parts[1]))

    def _known_customer(
        self, request: web.Request, customer_id: str
    ) -> Customer | web.Response | None:
        """The customer; None if it left the partner; 404 code 60003 for an unknown or deleted
        tenant."""
        customer = self.state.customers.get(customer_id)
        gone = self.state.take_fault(customer_id, frozenset({"tenant_gone"})) is not None
        if gone or (customer is None and customer_id not in self.state.departed):
            return partner_center_error(request, 404, 60003, "Tenant not found")
        return customer

    async def _for_customer(
        self,
        request: web.Request,
        produce: Callable[[str, dict[str, Any]], Awaitable[web.Response]],
    ) -> web.StreamResponse:
        """A `/v1/customers/{customer}/...` call: the partner's token, then the customer's
        faults, then `produce(customer_id, claims)`."""
        claims = self._authenticate(request)
        if isinstance(claims, web.Response):
            return claims
        customer_id = request.match_info["customer"].lower()
        return await serve(
            request,
            self.state,
            customer_id,
            PARTNER_CENTER_ERRORS,
            lambda: produce(customer_id, claims),
        )

    async def subscribed_skus(self, request: web.Request) -> web.StreamResponse:
        return await self._for_customer(
            request, lambda customer_id, claims: self._subscribed_skus(request, customer_id, claims)
        )

    async def _subscribed_skus(
        self, request: web.Request, customer_id: str, claims: dict[str, Any]
    ) -> web.Response:
        customer = self._known_customer(request, customer_id)
        if isinstance(customer, web.Response):
            return customer
        if customer is None or not customer.in_partner_center:
            return self._no_commerce_relationship(request, customer_id)
        if claims.get("idtyp") == "app" or not customer.has_delegated_access(utcnow()):
            return partner_center_error(request, 403, 2032, "Access denied")
        items = [partner_center_subscribed_sku(sku, self.state.catalog) for sku in customer.skus]
        body = {
            "totalCount": len(items),
            "items": items,
            "attributes": {"objectType": "Collection"},
        }
        return json_response(body, headers=partner_center_ids(request))

    def _no_commerce_relationship(self, request: web.Request, customer_id: str) -> web.Response:
        return partner_center_error(
            request,
            403,
            20002,
            f"The partner id {self.state.partner.tenant_id} has no commerce relationship with "
            f"the customer id {customer_id}.",
        )

    async def subscriptions(self, request: web.Request) -> web.StreamResponse:
        return await self._for_customer(
            request, lambda customer_id, _claims: self._subscriptions(request, customer_id)
        )

    async def _subscriptions(self, request: web.Request, customer_id: str) -> web.Response:
        """The collection, unpaged as documented unless `settings.page_size_subscriptions`;
        `order_id` and `mpn_id` filter it."""
        found = self._sold_subscriptions(request, customer_id)
        if isinstance(found, web.Response):
            return found
        order_id, mpn_id = request.query.get("order_id"), request.query.get("mpn_id")
        items = [
            item
            for item in found
            if (order_id is None or item["orderId"].lower() == order_id.lower())
            and (mpn_id is None or (item.get("partnerId") or "") == mpn_id)
        ]
        size = self.state.settings.page_size_subscriptions
        if size is not None:
            return self._seek_page(request, items, request.path, size)
        body = {
            "totalCount": len(items),
            "items": items,
            "attributes": {"objectType": "Collection"},
        }
        return json_response(body, headers=partner_center_ids(request))

    async def subscription(self, request: web.Request) -> web.StreamResponse:
        return await self._for_customer(
            request, lambda customer_id, _claims: self._subscription(request, customer_id)
        )

    async def _subscription(self, request: web.Request, customer_id: str) -> web.Response:
        """One subscription by id (any case); 404 code 20003 when the partner sold none such."""
        subscription_id = request.match_info["subscription"]
        if not _GUID.match(subscription_id):
            return partner_center_error(request, 400, 800002, "Invalid request input")
        found = self._sold_subscriptions(request, customer_id)
        if isinstance(found, web.Response):
            return found
        for item in found:
            if item["id"] == subscription_id.lower():
                return json_response(item, headers=partner_center_ids(request))
        return partner_center_error(
            request, 404, 20003, f"Subscription with id {subscription_id} not found."
        )

    def _sold_subscriptions(
        self, request: web.Request, customer_id: str
    ) -> list[dict[str, Any]] | web.Response:
        """What the partner sold the customer. Only the partner's token is needed (app-only
        too) and losing GDAP changes nothing (§0.2); without a commerce relationship (an
        advisor, a GDAP-only or a departed customer) 403 code 20002."""
        if not _GUID.match(customer_id):
            return partner_center_error(request, 400, 800002, "Invalid request input")
        customer = self._known_customer(request, customer_id)
        if isinstance(customer, web.Response):
            return customer
        if customer is None or not customer.has_commerce_relationship():
            return self._no_commerce_relationship(request, customer_id)
        return self.state.partner_center_subscriptions(customer)

    async def application_consents(self, request: web.Request) -> web.StreamResponse:
        return await self._for_customer(
            request, lambda customer_id, _claims: self._grant_consent(request, customer_id)
        )

    async def _grant_consent(self, request: web.Request, customer_id: str) -> web.Response:
        """201 echoing the consent; 409 `Permission entry already exists.` when it exists."""
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        application_id = _consent_application_id(body)
        if application_id is None:
            return partner_center_error(
                request,
                400,
                800002,
                "Invalid request input: applicationId and applicationGrants "
                "[{enterpriseApplicationId, scope}] are required.",
            )
        customer = self._known_customer(request, customer_id)
        if isinstance(customer, web.Response):
            return customer
        if customer is None or not customer.has_any_relationship():
            return partner_center_error(request, 403, 2032, "Access denied")
        if customer.consent_failure == "access_denied":
            return partner_center_error(request, 403, 2032, "Access denied")
        if customer.consent_failure == "server_error":
            return _partner_center_server_error(request, 500, None)
        if not self.state.grant_cpv_consent(customer_id, application_id):
            return partner_center_error(request, 409, 409, ALREADY_EXISTS)
        return json_response(body, status=201, headers=partner_center_ids(request))


def _consent_application_id(body: Any) -> str | None:
    """The app id of a well-formed ApplicationConsent body (lower case), else None."""
    if not isinstance(body, dict):
        return None
    application_id, grants = body.get("applicationId"), body.get("applicationGrants")
    if not isinstance(application_id, str) or not _GUID.match(application_id):
        return None
    if not isinstance(grants, list) or not grants:
        return None
    for grant in grants:
        resource = grant.get("enterpriseApplicationId") if isinstance(grant, dict) else None
        scope = grant.get("scope") if isinstance(grant, dict) else None
        if not isinstance(resource, str) or not _GUID.match(resource):
            return None
        if not isinstance(scope, str) or not scope.strip():
            return None
    return application_id.lower()
