"""Stand-ins for the Microsoft clients: the assets run with `dg.materialize` on served payloads,
without a simulator or a network, against a real DuckDB warehouse.

`StubMicrosoft` takes the place of `MicrosoftCloudResource` (same `accounts()` and `connect()`);
each account's stub clients serve its `StubTenant`s in Microsoft's wire format.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sync365_pipeline.core.settings import AccountSettings, Secret
from sync365_pipeline.microsoft import (
    AccessToken,
    ConsentOutcome,
    MicrosoftError,
    RetryStats,
    TokenFacts,
)

# Real SKU ids and part numbers (Microsoft 365 E3, Business Standard).
E3 = ("05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3")
BUSINESS_STANDARD = ("f245ecc8-75af-4f8e-b61f-27d8114de5f3", "O365_BUSINESS_PREMIUM")


@dataclass
class StubTenant:
    """A customer tenant, and what Graph answers for its SKUs (or the failure it raises)."""

    tenant_id: str
    display_name: str
    skus: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # units
    failure: MicrosoftError | None = None

    def subscribed_skus(self) -> list[dict[str, Any]]:
        if self.failure is not None:
            raise self.failure
        return [
            {
                "id": f"{self.tenant_id}_{sku_id}",
                "skuId": sku_id,
                "skuPartNumber": part_number,
                "capabilityStatus": "Enabled",
                "consumedUnits": consumed,
                "prepaidUnits": {"enabled": enabled, "suspended": 0, "warning": 0, "lockedOut": 0},
            }
            for (sku_id, part_number), (enabled, consumed) in self.skus.items()
        ]


@dataclass
class StubAccount:
    """A partner account's settings, its customers, and the sign-in failure every call that needs
    its token meets (if any)."""

    settings: AccountSettings
    tenants: list[StubTenant]
    sign_in_failure: MicrosoftError | None = None

    def signed_in(self) -> StubAccount:
        if self.sign_in_failure is not None:
            raise self.sign_in_failure
        return self


def partner_account(
    name: str, tenant_id: str, tmp_path: Path, tenants: list[StubTenant], **stub: Any
) -> StubAccount:
    settings = AccountSettings(
        name=name,
        tenant_id=tenant_id,
        client_id="0c7e9d9a-6a53-4b1e-9f3e-8b1c2d3e4f50",
        client_secret="stub-client-secret",
        token_cache=tmp_path / f"token_cache-{name}.json",
    )
    return StubAccount(settings, tenants, **stub)


class _StubTokens:
    def __init__(self, account: StubAccount) -> None:
        self._account = account

    def partner_center_token(self) -> AccessToken:
        self._account.signed_in()
        facts = TokenFacts(
            tenant_id=self._account.settings.tenant_id,
            audience="https://api.partnercenter.microsoft.com",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
            account=f"sync@{self._account.settings.name}.example",
            amr=("pwd", "mfa"),
            scopes=("user_impersonation",),
        )
        return AccessToken(Secret("stub-access-token"), facts)

    def release(self, tenant_id: str) -> None:
        """Nothing is cached per tenant."""

    def write_gained(self, path: Path) -> None:
        """A stub gains no customer token: an empty set, as a real client with none writes."""
        path.write_text("{}", encoding="utf-8")


class _StubPartnerCenter:
    def __init__(self, account: StubAccount) -> None:
        self._account = account

    def customers(self) -> list[dict[str, Any]]:
        return [
            {
                "id": tenant.tenant_id,
                "companyProfile": {
                    "tenantId": tenant.tenant_id,
                    "companyName": tenant.display_name,
                    "domain": f"{tenant.display_name.split()[0].lower()}.onmicrosoft.com",
                },
                "relationshipToPartner": "reseller",
            }
            for tenant in self._account.signed_in().tenants
        ]

    def subscribed_skus(self, tenant_id: str) -> list[dict[str, Any]]:
        """No names (the catalog has these); a tenant that fails in Graph fails here too, so
        the fallback has nothing to stand in with."""
        tenants = {tenant.tenant_id: tenant for tenant in self._account.signed_in().tenants}
        if (failure := tenants[tenant_id].failure) is not None:
            raise failure
        return []

    def grant_application_consent(self, tenant_id: str, application_id: str) -> ConsentOutcome:
        """Partner Center has the consent already: a tenant refusing it stays refused."""
        self._account.signed_in()
        return ConsentOutcome.ALREADY_GRANTED


class _StubGraph:
    def __init__(self, account: StubAccount) -> None:
        self._account = account

    def subscribed_skus(self, tenant_id: str) -> list[dict[str, Any]]:
        tenants = {tenant.tenant_id: tenant for tenant in self._account.signed_in().tenants}
        return tenants[tenant_id].subscribed_skus()

    def delegated_admin_relationships(self) -> list[dict[str, Any]]:
        self._account.signed_in()
        return []

    def contracts(self) -> list[dict[str, Any]]:
        self._account.signed_in()
        return []


class StubCloud:
    """What `MicrosoftCloudResource.connect` gives, serving one account's stub payloads."""

    def __init__(self, account: StubAccount) -> None:
        self.tokens = _StubTokens(account)
        self.partner_center = _StubPartnerCenter(account)
        self.graph = _StubGraph(account)
        self.session = SimpleNamespace(stats=RetryStats())


class StubMicrosoft:
    """Stands in for `MicrosoftCloudResource`; `closed` lists each account whose client closed."""

    def __init__(self, *accounts: StubAccount) -> None:
        self._accounts = {account.settings.name: account for account in accounts}
        self.closed: list[str] = []

    def accounts(self) -> list[AccountSettings]:
        return [account.settings for account in self._accounts.values()]

    @contextmanager
    def connect(
        self, account: AccountSettings, *, saves_tokens: bool = True
    ) -> Iterator[StubCloud]:
        try:
            yield StubCloud(self._accounts[account.name])
        finally:
            self.closed.append(account.name)
