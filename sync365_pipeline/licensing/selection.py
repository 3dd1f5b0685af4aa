"""Which tenants a sync covers: every active one, the ones that failed, or a few named.

A daily sync covers every active tenant in one run; a data engineer reruns the tenants that
failed, or one customer, by naming them (tenant id, customer name or default domain), in the
Dagster launchpad or on the command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from sync365_pipeline.warehouse import Warehouse


class UnknownTenantsError(ValueError):
    """Names in a selection that match no active tenant of any account."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__(
            f"No active customer tenant matches {', '.join(repr(n) for n in names)}. "
            "Name a tenant by its id, its customer name or its default domain, as `sync365 "
            "status` lists them (a departed customer is no longer synced)."
        )


@dataclass(frozen=True)
class TenantSelection:
    """`tenants` names tenants (id, customer name or default domain, any case); empty means all.
    `failed_only` keeps the tenants whose latest attempt did not succeed or never ran."""

    tenants: tuple[str, ...] = ()
    failed_only: bool = False

    @property
    def everything(self) -> bool:
        return not self.tenants and not self.failed_only

    def describe(self) -> str:
        if self.everything:
            return "every active tenant"
        named = f"tenants {', '.join(self.tenants)}" if self.tenants else "every active tenant"
        return f"{named}, failed ones only" if self.failed_only else named

    def choose(self, health: pd.DataFrame) -> list[str]:
        """The tenant ids of `health` (rows of `tenant_health`) this selection covers, in order."""
        chosen = health[health["active"]]
        if self.tenants:
            wanted = {name.casefold() for name in self.tenants}
            chosen = chosen[
                chosen.apply(lambda row: bool(_names(row) & wanted), axis=1).astype(bool)
            ]
        if self.failed_only:
            chosen = chosen[chosen["status"].fillna("never_synced") != "ok"]
        return sorted(chosen["tenant_id"])

    def unmatched(self, healths: Iterable[pd.DataFrame]) -> list[str]:
        """The names in `tenants` that match no active tenant of any of `healths`."""
        known: set[str] = set()
        for health in healths:
            for _, row in health[health["active"]].iterrows():
                known |= _names(row)
        return [name for name in self.tenants if name.casefold() not in known]


EVERY_TENANT = TenantSelection()


def _names(row: pd.Series) -> set[str]:
    return {
        str(value).casefold()
        for value in (row["tenant_id"], row["display_name"], row["default_domain"])
        if isinstance(value, str) and value
    }


def selected_tenants(
    store: Warehouse, partner_tenant_ids: Sequence[str], selection: TenantSelection
) -> dict[str, list[str]]:
    """The tenant ids to sync per partner account; raises `UnknownTenantsError` for a name that
    matches no active tenant of any of these accounts (a typo must not sync nothing quietly)."""
    healths = {partner: store.tenant_health(partner) for partner in partner_tenant_ids}
    if missing := selection.unmatched(healths.values()):
        raise UnknownTenantsError(missing)
    return {partner: selection.choose(health) for partner, health in healths.items()}
