"""`sync365 status`'s tenant health: each active customer by name, failing first, in a table that
fits the terminal; `--wide` shows every row and column of `tenant_health`."""

from __future__ import annotations

import textwrap

import pandas as pd

from sync365_pipeline.commands.tables import fitted_table
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.warehouse import Warehouse

# The columns a person reads, most needed first; the last ones go while the table is too wide.
HEALTH_COLUMNS = {
    "customer": "customer",
    "partner": "partner",  # only when several partners reach customers
    "status": "status",
    "facts": "facts as of",
    "error_code": "error",
    "since": "status since (UTC)",
    "message": "why",
}
PARTNER_ID_WIDTH = 8  # enough of a partner's tenant id to tell the partners apart


def health_section(warehouse: Warehouse, width: int, *, wide: bool = False) -> str:
    """A headline counting the active customers by outcome, then their table fitted to `width`
    (or, `wide`, every row and column of `tenant_health` however wide)."""
    health = warehouse.tenant_health()
    if health.empty:
        return "No tenants synced yet."
    active = health[health["active"]]
    ok = int((active["status"] == TenantStatus.OK).sum())
    counts = f"Tenants: {len(active)} active, {ok} ok, {len(active) - ok} need attention"
    if wide:
        return f"{counts}.\n{health.to_markdown(index=False)}"
    departed = len(health) - len(active)
    left_out = f" ({departed} departed left out; --wide lists them)" if departed else ""
    several_partners = active["partner_tenant_id"].nunique() > 1
    columns = {
        column: heading
        for column, heading in HEALTH_COLUMNS.items()
        if column != "partner" or several_partners
    }
    table = fitted_table(
        _readable(active),
        columns,
        width,
        cut=("customer", "error_code", "message"),
    )
    return f"{textwrap.fill(f'{counts}{left_out}.', width)}\n{table}"


def _readable(active: pd.DataFrame) -> pd.DataFrame:
    """`tenant_health` rows as people read them, failing customers first, then by name."""
    stale = active["is_stale"].map({True: ", stale"}).fillna("")
    frame = active.assign(
        customer=active["display_name"].fillna(active["tenant_id"]),
        partner=active["partner_tenant_id"].str.slice(0, PARTNER_ID_WIDTH),
        status=active["status"].fillna("never_synced"),
        facts=(active["facts_as_of"].dt.strftime("%Y-%m-%d") + stale).fillna("none"),
        since=active["status_since"].dt.strftime("%Y-%m-%d %H:%M"),
        message=active["message"].fillna("").str.replace(r"\s+", " ", regex=True),
    )
    order = (frame["status"] == TenantStatus.OK).astype(int)
    return frame.assign(order=order).sort_values(["order", "status", "customer"], kind="stable")
