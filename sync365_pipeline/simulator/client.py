"""A thin client of the control API, for tests and benchmarks that change the world mid-run."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

CONTROL_PREFIX = "/_simulator"


class SimulatorControlError(RuntimeError):
    """The control API refused a change (unknown tenant, invalid fault, ...)."""


class SimulatorClient:
    def __init__(self, url: str, ca_path: Path | str, timeout_s: float = 10) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.verify = str(ca_path)
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override `verify`

    def close(self) -> None:
        self.session.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.session.request(
            method, f"{self.url}{CONTROL_PREFIX}{path}", json=body, timeout=self.timeout_s
        )
        if response.status_code >= 400:
            raise SimulatorControlError(
                f"{method} {path}: {response.status_code} {response.json().get('error')}"
            )
        return response.json()

    # --- state changes -----------------------------------------------------------------------

    def revoke_consent(self, tenant_id: str) -> None:
        self._call("POST", f"/tenants/{tenant_id}/consent/revoke")

    def restore_consent(self, tenant_id: str) -> None:
        self._call("POST", f"/tenants/{tenant_id}/consent/restore")

    def set_partner_refresh_token_state(self, state: str) -> None:
        """`expired`/`revoked` invalidate every refresh token issued so far; `valid` restores."""
        self._call("PUT", "/partner/refresh-token-state", {"state": state})

    def set_sku_units(self, tenant_id: str, sku_id: str, **units: Any) -> dict[str, Any]:
        """Set enabled, consumed, suspended, warning, locked_out, capability_status and/or
        subscriptions (the SKU's `SubscriptionSpec`s, replaced whole)."""
        return self._call("PUT", f"/tenants/{tenant_id}/skus/{quote(sku_id, safe='')}", units)

    def add_sku(self, tenant_id: str, sku: dict[str, Any]) -> None:
        """Give the tenant a SKU it lacks (`part_number` or `sku_id`, units, subscriptions)."""
        self._call("POST", f"/tenants/{tenant_id}/skus", sku)

    def remove_sku(self, tenant_id: str, sku_id: str) -> None:
        """Take a SKU (by id or part number) from the tenant; its holders lose it."""
        self._call("DELETE", f"/tenants/{tenant_id}/skus/{quote(sku_id, safe='')}")

    def update_gdap_relationship(
        self, tenant_id: str, index: int = 0, **changes: Any
    ) -> dict[str, Any]:
        """Change a customer's GDAP relationship (`ends_in_days`, `auto_extend_duration`, ...)."""
        return self._call("PATCH", f"/tenants/{tenant_id}/gdap-relationships/{index}", changes)

    def set_password_credentials(self, credentials: list[dict[str, Any]]) -> None:
        """Replace the app's client secrets; one without `hint` is the configured secret."""
        self._call("PUT", "/partner/password-credentials", {"password_credentials": credentials})

    def remove_customer(self, tenant_id: str) -> None:
        self._call("DELETE", f"/customers/{tenant_id}")

    def add_customer(self, customer: dict[str, Any]) -> None:
        self._call("POST", "/customers", customer)

    def set_fault(self, tenant_id: str, fault: dict[str, Any]) -> None:
        self._call("POST", f"/tenants/{tenant_id}/faults", fault)

    def clear_faults(self, tenant_id: str) -> None:
        self._call("DELETE", f"/tenants/{tenant_id}/faults")

    def change_users(
        self,
        tenant_id: str,
        *,
        added: int = 0,
        removed: int = 0,
        changed: int = 0,
        relicensed: int = 0,
    ) -> dict[str, list[str]]:
        """Random changes to the tenant's users (a day's worth): the ids added, removed (soft
        deleted), changed and relicensed (a SKU gained, one of several lost, all lost, in turn);
        SKUs' consumed units follow."""
        counts = {"added": added, "removed": removed, "changed": changed, "relicensed": relicensed}
        return self._call("POST", f"/tenants/{tenant_id}/users/changes", counts)

    def update_settings(self, **settings: int | str | bool) -> dict[str, Any]:
        """Change scenario settings live (latency_ms, latency_jitter_ms, page sizes, ...)."""
        return self._call("PUT", "/settings", settings)

    # --- device-code sign-ins (the "user" side of the flow) ------------------------------------

    def approve_device_code(self, user_code: str, mfa: bool = True) -> None:
        self._call("POST", f"/device-codes/{user_code}/approve", {"mfa": mfa})

    def decline_device_code(self, user_code: str) -> None:
        self._call("POST", f"/device-codes/{user_code}/decline")

    def expire_device_code(self, user_code: str) -> None:
        self._call("POST", f"/device-codes/{user_code}/expire")

    # --- reading -------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def request_counts(self) -> dict[str, Any]:
        """total, by_route, by_tenant, by_status, bytes_by_route (response body sizes), in_flight,
        max_in_flight."""
        return self._call("GET", "/requests")

    def reset_request_counts(self) -> None:
        self._call("DELETE", "/requests")

    def request_log(self) -> list[dict[str, Any]]:
        """The latest requests (method, path, status, route), oldest first."""
        return self._call("GET", "/requests/log")

    def issued_secrets(self) -> list[str]:
        """The client secret, the seed refresh token and every token issued since the start
        (needs `settings.record_issued_tokens`), for a test to search what a client wrote."""
        return self._call("GET", "/issued-secrets")

    def expected_users(self, tenant_id: str) -> dict[str, Any]:
        """`users` (every user, every property, as Graph holds them now), `shared_mailboxes`
        (their ids) and `premium` (whether the tenant has Entra ID P1 for sign-in activity)."""
        return self._call("GET", f"/tenants/{tenant_id}/users")

    def expected_subscribed_skus(self, tenant_id: str) -> list[dict[str, Any]]:
        """What Graph `/v1.0/subscribedSkus` would serve for this tenant now."""
        return self._call("GET", f"/tenants/{tenant_id}/subscribed-skus")

    def expected_subscriptions(self, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
        """What Partner Center's `subscriptions` (`partner_center`: those this partner sold) and
        Graph's `directory/subscriptions` (`graph`: every seller's) would serve now."""
        return self._call("GET", f"/tenants/{tenant_id}/subscriptions")
