"""Asset checks: what the data engineer sees pass or fail on the assets, on every run that
materializes them (the jobs select an asset's checks with it). Each evaluation is also recorded in
the warehouse's `check_results`, which `sync365 status` shows.

Blocking checks guard the facts this run staged, so a failure (an ERROR) stops `license_facts`
(nothing promoted, the analyst copy not replaced). The others fail as a WARN: they report
operational problems (customers not reached, stale facts, SKUs without a name) and stop nothing.
The checks' logic is plain SQL in `warehouse/quality.py`. Every check step reads and writes the
warehouse, so it takes the warehouse pool's slot like the writing assets (DuckDB: one writing
process).
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
import pandas as pd

from sync365_pipeline.catalog.skus import NAME_SOURCE_PART_NUMBER, NAME_SOURCE_SKU_ID
from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.defs.assets import (
    SUBSCRIBED_SKUS,
    WAREHOUSE_POOL,
    customers,
    license_facts,
    run_snapshot_date,
)
from sync365_pipeline.defs.resources import WarehouseResource
from sync365_pipeline.warehouse import (
    CheckResultRow,
    ConsentFlag,
    CustomerNames,
    QualityResult,
    Warehouse,
    staged_files,
)

CONSENT_CHECK = "consent_granted"
TENANTS_CHECK = "tenants_synced"
ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


@dataclass(frozen=True)
class Evaluated:
    """A check's result with what `check_results` keeps beside it."""

    result: dg.AssetCheckResult
    offending: int
    remedy: str | None


def record(
    context: dg.AssetCheckExecutionContext, store: Warehouse, evaluated: Sequence[Evaluated]
) -> list[dg.AssetCheckResult]:
    """The results of one check step, once recorded together in `check_results` (for `sync365
    status`); a result without a check name is the step's one check."""
    specs = {spec.name: spec for spec in context.check_specs}
    (only, *_) = context.check_specs
    checked_at = utcnow()
    rows = []
    for item in evaluated:
        result = item.result
        spec = specs[result.check_name] if result.check_name else only
        rows.append(
            CheckResultRow(
                sync_id=context.run.run_id,
                asset=spec.asset_key.to_user_string(),
                check_name=spec.name,
                passed=result.passed,
                severity=result.severity.value,
                blocking=spec.blocking,
                offending=item.offending,
                summary=result.description or ("Passed." if result.passed else "Failed."),
                remedy=None if result.passed else item.remedy,
                checked_at=checked_at,
            )
        )
    store.record_check_results(rows)
    return [item.result for item in evaluated]


def severity(spec: dg.AssetCheckSpec) -> dg.AssetCheckSeverity:
    """A blocking check fails as an ERROR, any other as a WARN."""
    return ERROR if spec.blocking else WARN


def report(
    context: dg.AssetCheckExecutionContext,
    store: Warehouse,
    verdicts: Mapping[str, QualityResult],
) -> list[dg.AssetCheckResult]:
    """`warehouse.quality` verdicts by check name as recorded check results: counts, a few
    offending rows (named after their customer) and the remedy in the UI."""
    specs_by_name = {spec.name: spec for spec in context.check_specs}
    evaluated = [
        Evaluated(
            dg.AssetCheckResult(
                check_name=name,
                passed=quality.passed,
                severity=severity(specs_by_name[name]),
                description=quality.summary,
                metadata={
                    "checked": dg.MetadataValue.int(quality.checked),
                    "offending": dg.MetadataValue.int(quality.offending),
                    "examples": dg.MetadataValue.md(
                        quality.examples.astype(str).to_markdown(index=False)
                        if len(quality.examples)
                        else "_none_"
                    ),
                    "remedy": dg.MetadataValue.md(quality.remedy or "_nothing to do_"),
                },
            ),
            quality.offending,
            quality.remedy,
        )
        for name, quality in verdicts.items()
    ]
    return record(context, store, evaluated)


def specs(
    asset: dg.AssetKey, checks: Mapping[str, str], *, blocking: bool = False
) -> list[dg.AssetCheckSpec]:
    """One spec per {check name: what it guards} on `asset`."""
    return [
        dg.AssetCheckSpec(name, asset=asset, blocking=blocking, description=text)
        for name, text in checks.items()
    ]


def staged_facts(context: dg.AssetCheckExecutionContext, store: Warehouse) -> list[str]:
    """The fact files this run's chunks staged, which `license_facts` is about to promote."""
    stages = staged_files(store.staging_dir(context.run.run_id))
    return [stage["license_facts"] for stage in stages if "license_facts" in stage]


# One step per group of checks: each step costs a process-wide warehouse open and a write.
STAGED_FACT_CHECKS = {
    "facts_unique_keys": "Blocks the facts when two staged rows share a (snapshot date, partner, "
    "tenant, SKU) key: promoting them would double a customer's seats.",
    "facts_available_units": "Blocks the facts when a staged row's available_units is not "
    "enabled_units - consumed_units.",
    "facts_non_negative": "Blocks the facts when a staged unit count (enabled, suspended, "
    "warning, locked out, consumed) is negative.",
}
# After the facts step: a customer Partner Center stood in for counts as reached once its facts
# are written (tenant_freshness), so the share reached is measured there.
FACT_CHECKS = {
    "facts_fresh": "Warns when a customer the sync reached has facts older than "
    "max_facts_age_days.",
    "skus_named": "Warns when a current SKU has only its part number or id for a product name.",
    "tenants_reached": "Warns when the share of active customers reached (Graph, or Partner "
    "Center standing in) is below min_reached_share.",
}


# In the same step as the staged-fact checks (one step less per sync); it blocks nothing.
STATUS_CHECKS = {
    "statuses_recorded": "Warns when an active customer has no sync status for the run's day: "
    "nothing says whether its facts could be fetched.",
}


@dg.multi_asset_check(
    specs=[
        *specs(SUBSCRIBED_SKUS, STAGED_FACT_CHECKS, blocking=True),
        *specs(SUBSCRIBED_SKUS, STATUS_CHECKS),
    ],
    pool=WAREHOUSE_POOL,
)
def staged_facts_and_statuses(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.AssetCheckResult]:
    """The facts this run staged, before `license_facts` promotes them (ERROR, blocking), and
    whether every active customer has a status for the run's day (WARN)."""
    store = warehouse.open()
    verdicts = store.staged_fact_checks(staged_facts(context, store))
    yield from report(
        context,
        store,
        {
            "facts_unique_keys": verdicts.unique_keys,
            "facts_available_units": verdicts.available_units,
            "facts_non_negative": verdicts.non_negative,
            "statuses_recorded": store.statuses_of_the_day(run_snapshot_date(context)),
        },
    )


@dg.multi_asset_check(specs=specs(license_facts.key, FACT_CHECKS), pool=WAREHOUSE_POOL)
def facts_usable(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.AssetCheckResult]:
    """Whether the published facts are current, named and cover enough customers (WARN)."""
    settings = warehouse.settings()
    store = Warehouse.from_settings(settings)
    day = run_snapshot_date(context)
    yield from report(
        context,
        store,
        {
            "facts_fresh": store.facts_fresh(day, settings.max_facts_age_days),
            "skus_named": store.skus_named((NAME_SOURCE_PART_NUMBER, NAME_SOURCE_SKU_ID)),
            "tenants_reached": store.tenants_reached(settings.min_reached_share),
        },
    )


QUALITY_CHECKS = [staged_facts_and_statuses, facts_usable]


@dg.asset_check(asset=customers, name=CONSENT_CHECK, blocking=False, pool=WAREHOUSE_POOL)
def consent_granted(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Fails (as a warning) while any customer or the partner itself has lost access; the open
    flags it lists include GDAP relationships and client secrets that end soon."""
    store = warehouse.open()
    flags = store.open_consent_flags()
    names = store.customer_names()
    lost = access_lost(flags)
    result = dg.AssetCheckResult(
        passed=not lost,
        severity=severity(*context.check_specs),
        description=f"{len(lost)} lost access: {', '.join(lost_names(names, lost))}."
        if lost
        else "No access lost.",
        metadata={"open_flags": flags_markdown(flags, names)},
    )
    remedy = (
        "Restore each customer's GDAP relationship or consent (`sync365 consent` for the "
        "partner's own sign-in); the consent sensor clears the flag once access works again."
    )
    (recorded,) = record(context, store, [Evaluated(result, len(lost), remedy)])
    return recorded


# After `license_facts` when the run has it: a customer Partner Center stood in for counts as
# synced once its facts are written (tenant_freshness), and the blocking checks above would
# otherwise let this check run before the facts step.
@dg.asset_check(
    asset=SUBSCRIBED_SKUS,
    name=TENANTS_CHECK,
    blocking=False,
    pool=WAREHOUSE_POOL,
    additional_deps=[license_facts],
)
def tenants_synced(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Passes while every active tenant's latest attempt produced facts (from Graph, or from
    Partner Center when Graph failed: the consent flags still see that failure); otherwise a
    warning that names each failing customer (status, Microsoft's code, since when) and how to
    rerun exactly those: the `rerun_failed_tenants` job, or `license_sync` with `tenants` set."""
    store = warehouse.open()
    health = store.tenant_health()
    active = health[health["active"]]
    failing = active[~active["reached"]]
    shown = failing.assign(
        customer=failing["display_name"].fillna(failing["tenant_id"]),
        status=failing["status"].fillna("never_synced"),
        message=failing["message"].fillna("").str.slice(0, 120),
        status_since=failing["status_since"].dt.strftime("%Y-%m-%d %H:%M UTC"),
    )
    named = [f"{row.customer} ({row.status})" for row in shown.head(10).itertuples()]
    more = f" and {len(shown) - len(named)} more" if len(shown) > len(named) else ""
    result = dg.AssetCheckResult(
        passed=failing.empty,
        severity=severity(*context.check_specs),
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
    remedy = (
        "Run `sync365 sync --failed` (the rerun_failed_tenants job) once the causes are fixed; "
        "the check's metadata names each failing customer and Microsoft's code."
    )
    (recorded,) = record(context, store, [Evaluated(result, len(failing), remedy)])
    return recorded


def access_lost(flags: Sequence[ConsentFlag]) -> list[ConsentFlag]:
    """The flags that fail the `consent_granted` check: lost access, not an access that ends."""
    return [flag for flag in flags if flag.kind == "access_lost"]


def lost_names(names: CustomerNames, lost: Sequence[ConsentFlag]) -> list[str]:
    """Who lost access: each customer's name (else its tenant id), or the partner itself."""
    return [
        names.get((flag.partner_tenant_id, flag.tenant_id), flag.tenant_id)
        if flag.tenant_id
        else f"partner {flag.partner_tenant_id}"
        for flag in lost
    ]


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
