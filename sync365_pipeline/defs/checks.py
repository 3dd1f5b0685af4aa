"""Asset checks: what the data engineer sees pass or fail on the assets."""

from collections.abc import Sequence
from datetime import datetime

import dagster as dg
import pandas as pd

from sync365_pipeline.defs.assets import customers
from sync365_pipeline.defs.resources import WarehouseResource
from sync365_pipeline.warehouse import ConsentFlag, CustomerNames

CONSENT_CHECK = "consent_granted"
TENANTS_CHECK = "tenants_synced"


@dg.asset_check(asset=customers, name=CONSENT_CHECK, blocking=False)
def consent_granted(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Fails (as a warning) while any customer or the partner itself has lost access; the open
    flags it lists include GDAP relationships and client secrets that end soon."""
    store = warehouse.open()
    flags = store.open_consent_flags()
    return dg.AssetCheckResult(
        passed=not access_lost(flags),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"open_flags": flags_markdown(flags, store.customer_names())},
    )


@dg.asset_check(asset=dg.AssetKey("subscribed_skus"), name=TENANTS_CHECK, blocking=False)
def tenants_synced(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Passes while every active tenant's latest attempt produced facts (from Graph, or from
    Partner Center when Graph failed: the consent flags still see that failure); otherwise a
    warning that names each failing customer (status, Microsoft's code, since when) and how to
    rerun exactly those: the `rerun_failed_tenants` job, or `license_sync` with `tenants` set."""
    health = warehouse.open().tenant_health()
    active = health[health["active"]]
    failing = active[
        (active["status"].fillna("never_synced") != "ok") & ~active["facts_from_partner_center"]
    ]
    shown = failing.assign(
        customer=failing["display_name"].fillna(failing["tenant_id"]),
        status=failing["status"].fillna("never_synced"),
        message=failing["message"].fillna("").str.slice(0, 120),
        status_since=failing["status_since"].dt.strftime("%Y-%m-%d %H:%M UTC"),
    )
    named = [f"{row.customer} ({row.status})" for row in shown.head(10).itertuples()]
    more = f" and {len(shown) - len(named)} more" if len(shown) > len(named) else ""
    return dg.AssetCheckResult(
        passed=failing.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(failing)} of {len(active)} active tenants failing: {', '.join(named)}{more}."
            if len(failing)
            else f"All {len(active)} active tenants synced."
        ),
        metadata={
            "active_tenants": dg.MetadataValue.int(len(active)),
            "failing_tenants": dg.MetadataValue.int(len(failing)),
            "facts_from_partner_center": dg.MetadataValue.int(
                int(active["facts_from_partner_center"].sum())
            ),
            "failing": dg.MetadataValue.md(
                shown[["customer", "tenant_id", "status", "error_code", "status_since", "message"]]
                .head(200)
                .to_markdown(index=False)
                if len(shown)
                else "_none_"
            ),
            "rerun": dg.MetadataValue.md(
                "Launch the `rerun_failed_tenants` job to fetch exactly these tenants again, or "
                "`license_sync` with `plan_tenant_chunks: {config: {tenants: [...]}}` "
                "naming a few (ids, customer names or domains)."
            )
            if len(failing)
            else dg.MetadataValue.md("_nothing to rerun_"),
        },
    )


def access_lost(flags: Sequence[ConsentFlag]) -> list[ConsentFlag]:
    """The flags that fail the `consent_granted` check: lost access, not an access that ends."""
    return [flag for flag in flags if flag.kind == "access_lost"]


def flags_markdown(flags: Sequence[ConsentFlag], names: CustomerNames) -> dg.MetadataValue:
    """The flags as a table, each customer by name next to its ids (a partner's own flag, one
    without a tenant, says so)."""
    if not flags:
        return dg.MetadataValue.md("_no open flags_")
    columns = [
        "partner_tenant_id",
        "tenant_id",
        "kind",
        "status",
        "error_code",
        "ends_at",
        "raised_at",
    ]
    frame = pd.DataFrame(
        [
            {
                "customer": "(the partner)"
                if flag.tenant_id is None
                else names.get((flag.partner_tenant_id, flag.tenant_id), ""),
                **{name: _cell(getattr(flag, name)) for name in columns},
            }
            for flag in flags
        ]
    )
    return dg.MetadataValue.md(frame.to_markdown(index=False))


def _cell(value: object) -> object:
    """A flag's field as a table shows it: blank for none, times to the minute (UTC)."""
    if value is None:
        return ""
    return f"{value:%Y-%m-%d %H:%M}" if isinstance(value, datetime) else value
