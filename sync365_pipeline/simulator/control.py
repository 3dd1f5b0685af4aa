"""The control API under `/_simulator/`: change the world while a client runs, and read counters.

Requests to it are not counted in the request statistics. Bodies are JSON; errors are
`{"error": "..."}` with 400 (bad input) or 404 (unknown tenant, SKU or code).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from sync365_pipeline.simulator.scenario import (
    AccessFault,
    Customer,
    Fault,
    Settings,
    SkuAssignment,
    describe_validation_error,
)
from sync365_pipeline.simulator.state import RequestStats, SimulatorState
from sync365_pipeline.simulator.wire import json_response

PREFIX = "/_simulator"
_FAULT = TypeAdapter(Fault)
_SKU_FIELDS = (
    "enabled",
    "consumed",
    "suspended",
    "warning",
    "locked_out",
    "capability_status",
    "subscriptions",
)

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _guarded(handler: Handler) -> Handler:
    """Turn bad input into 400 and unknown names into 404, with the reason in the body."""

    async def wrapper(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except ValidationError as error:
            return json_response({"error": describe_validation_error(error)}, 400)
        except KeyError as error:
            return json_response({"error": str(error.args[0])}, 404)
        except ValueError as error:
            return json_response({"error": str(error)}, 400)

    return wrapper


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


class ControlApi:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    def add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/health", self.health),
            ("GET", "/requests", self.request_counts),
            ("DELETE", "/requests", self.reset_request_counts),
            ("GET", "/requests/log", self.request_log),
            ("GET", "/issued-secrets", self.issued_secrets),
            ("PUT", "/settings", self.update_settings),
            ("PUT", "/partner/refresh-token-state", self.set_refresh_token_state),
            ("PUT", "/partner/password-credentials", self.set_password_credentials),
            ("POST", "/customers", self.add_customer),
            ("DELETE", "/customers/{tenant}", self.remove_customer),
            ("POST", "/tenants/{tenant}/consent/revoke", self.revoke_consent),
            ("POST", "/tenants/{tenant}/consent/restore", self.restore_consent),
            ("PUT", "/tenants/{tenant}/skus/{sku}", self.set_sku_units),
            ("POST", "/tenants/{tenant}/skus", self.add_sku),
            ("DELETE", "/tenants/{tenant}/skus/{sku}", self.remove_sku),
            ("PATCH", "/tenants/{tenant}/gdap-relationships/{index}", self.update_relationship),
            ("GET", "/tenants/{tenant}/subscribed-skus", self.expected_subscribed_skus),
            ("GET", "/tenants/{tenant}/subscriptions", self.expected_subscriptions),
            ("GET", "/tenants/{tenant}/users", self.expected_users),
            ("POST", "/tenants/{tenant}/users/changes", self.change_users),
            ("POST", "/tenants/{tenant}/faults", self.add_fault),
            ("DELETE", "/tenants/{tenant}/faults", self.clear_faults),
            ("POST", "/device-codes/{user_code}/{decision}", self.decide_device_code),
        ]
        for method, path, handler in routes:
            name = "control." + method.lower() + re.sub(r"\W+", "_", path).rstrip("_")
            app.router.add_route(method, PREFIX + path, _guarded(handler), name=name)

    def _tenant(self, request: web.Request) -> str:
        tenant_id = request.match_info["tenant"].lower()
        if tenant_id != self.state.partner.tenant_id and tenant_id not in self.state.customers:
            raise KeyError(f"no tenant {tenant_id} in this simulator")
        return tenant_id

    async def health(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "status": "ok",
                "scenario": self.state.scenario_name,
                "partner_tenant_id": self.state.partner.tenant_id,
                "customers": len(self.state.customers),
            }
        )

    async def request_counts(self, request: web.Request) -> web.Response:
        return json_response(self.state.stats.as_dict())

    async def reset_request_counts(self, request: web.Request) -> web.Response:
        self.state.stats = RequestStats()
        return json_response({"status": "reset"})

    async def request_log(self, request: web.Request) -> web.Response:
        return json_response(list(self.state.stats.log))

    async def issued_secrets(self, request: web.Request) -> web.Response:
        return json_response(self.state.issued_secrets())

    async def update_settings(self, request: web.Request) -> web.Response:
        merged = {**self.state.settings.model_dump(), **await _body(request)}
        self.state.settings = Settings.model_validate(merged)
        return json_response(self.state.settings.model_dump())

    async def set_refresh_token_state(self, request: web.Request) -> web.Response:
        self.state.set_refresh_token_state((await _body(request)).get("state", ""))
        return json_response({"state": self.state.rt_state})

    async def set_password_credentials(self, request: web.Request) -> web.Response:
        credentials = (await _body(request)).get("password_credentials")
        if not isinstance(credentials, list):
            raise ValueError("give password_credentials: a list of the app's client secrets")
        self.state.set_password_credentials(credentials)
        return json_response(
            [
                credential.model_dump(mode="json")
                for credential in self.state.partner.password_credentials
            ]
        )

    async def update_relationship(self, request: web.Request) -> web.Response:
        index = request.match_info["index"]
        if not index.isdigit():
            raise ValueError(f"relationship index {index!r} is not a number")
        relationship = self.state.update_gdap_relationship(
            self._tenant(request), int(index), await _body(request)
        )
        return json_response(relationship.model_dump(mode="json"))

    async def add_customer(self, request: web.Request) -> web.Response:
        customer = Customer.model_validate(await _body(request))
        self.state.add_customer(customer)
        return json_response({"tenant_id": customer.tenant_id}, 201)

    async def remove_customer(self, request: web.Request) -> web.Response:
        tenant_id = request.match_info["tenant"].lower()
        self.state.remove_customer(self.state.customer(tenant_id).tenant_id)
        return json_response({"removed": tenant_id})

    async def revoke_consent(self, request: web.Request) -> web.Response:
        self.state.add_fault(self._tenant(request), AccessFault(type="consent_revoked"))
        return json_response({"consent": "revoked"})

    async def restore_consent(self, request: web.Request) -> web.Response:
        self.state.clear_faults(self._tenant(request), fault_type="consent_revoked")
        return json_response({"consent": "granted"})

    async def set_sku_units(self, request: web.Request) -> web.Response:
        sku = self.state.sku(self._tenant(request), request.match_info["sku"])
        changes = await _body(request)
        unknown = set(changes) - set(_SKU_FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; allowed: {list(_SKU_FIELDS)}")
        for name, value in changes.items():
            setattr(sku, name, value)  # validate_assignment checks each value
        return json_response(sku.model_dump(mode="json"))

    async def add_sku(self, request: web.Request) -> web.Response:
        sku = SkuAssignment.model_validate(await _body(request))
        self.state.add_sku(self._tenant(request), sku)
        return json_response(sku.model_dump(mode="json"), 201)

    async def remove_sku(self, request: web.Request) -> web.Response:
        self.state.remove_sku(self._tenant(request), request.match_info["sku"])
        return json_response({"removed": request.match_info["sku"]})

    async def expected_subscribed_skus(self, request: web.Request) -> web.Response:
        return json_response(self.state.graph_subscribed_skus(self._tenant(request)))

    async def expected_subscriptions(self, request: web.Request) -> web.Response:
        """What Partner Center lists for the tenant now (empty without a commerce relationship)
        and what Graph `directory/subscriptions` serves."""
        tenant_id = self._tenant(request)
        customer = self.state.customers.get(tenant_id)
        sold = (
            self.state.partner_center_subscriptions(customer)
            if customer is not None and customer.has_commerce_relationship()
            else []
        )
        return json_response(
            {"partner_center": sold, "graph": self.state.directory_subscriptions(tenant_id)}
        )

    async def expected_users(self, request: web.Request) -> web.Response:
        """Every user with every property, as Graph holds them now, and what Graph does not say:
        which are shared mailboxes, whether the tenant has Entra ID P1."""
        tenant_id = self._tenant(request)
        directory = self.state.directory(tenant_id)
        users = sorted(directory.alive(), key=lambda user: user.id)
        premium = directory.premium(self.state.skus(tenant_id), self.state.catalog)
        return json_response(
            {
                "users": [user.resource() for user in users],
                "shared_mailboxes": [user.id for user in users if user.shared_mailbox],
                "premium": premium,
            }
        )

    async def change_users(self, request: web.Request) -> web.Response:
        """`{"added": n, "removed": n, "changed": n, "relicensed": n}` random changes (seeded by
        the tenant); answers the ids of each kind. Consumed units follow the licences added and
        freed."""
        tenant_id = self._tenant(request)
        counts = await _body(request)
        kinds = {"added": 0, "removed": 0, "changed": 0, "relicensed": 0}
        if set(counts) - set(kinds) or not all(
            isinstance(n, int) and n >= 0 for n in counts.values()
        ):
            raise ValueError(f"give counts (integers >= 0) of users {', '.join(kinds)}")
        skus = self.state.skus(tenant_id)
        changed = self.state.directory(tenant_id).change(skus, **{**kinds, **counts})
        return json_response(changed)

    async def add_fault(self, request: web.Request) -> web.Response:
        fault = _FAULT.validate_python(await _body(request))
        self.state.add_fault(self._tenant(request), fault)
        return json_response(fault.model_dump(), 201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.state.clear_faults(self._tenant(request), request.query.get("type"))
        return json_response({"faults": "cleared"})

    async def decide_device_code(self, request: web.Request) -> web.Response:
        sign_in = self.state.device_code_by_user_code(request.match_info["user_code"])
        decision = request.match_info["decision"]
        if decision == "approve":
            sign_in.status, sign_in.mfa = "approved", bool((await _body(request)).get("mfa", True))
        elif decision == "decline":
            sign_in.status = "declined"
        elif decision == "expire":
            sign_in.status = "expired"
        else:
            raise KeyError(f"unknown decision {decision!r}: approve, decline or expire")
        return json_response({"user_code": sign_in.user_code, "status": sign_in.status})
