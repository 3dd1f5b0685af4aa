"""The asset graph: partner_token -> customers -> subscribed_skus (per tenant) -> license_facts.

Each asset calls one function of `sync365_pipeline.sync` and reports what happened as metadata.
No asset returns data to an IO manager: facts live in DuckDB, tokens only in the token cache.
"""

from datetime import UTC, date, datetime

import dagster as dg
import pandas as pd

from sync365_pipeline import sync
from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.defs.partitions import tenant_partitions
from sync365_pipeline.defs.resources import MicrosoftCloudResource, WarehouseResource
from sync365_pipeline.microsoft import PartnerAccessError

GROUP = "licensing"
WAREHOUSE_POOL = "sync365_warehouse"
# Whole-step faults (a Partner Center outage that outlasted the HTTP retries, a locked warehouse).
# Permanent failures raise dg.Failure(allow_retries=False) and are not retried.
STEP_RETRY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _partner_failure(exc: PartnerAccessError) -> dg.Failure:
    return dg.Failure(
        description=f"{exc.problem}\n\nWhat to do: {exc.remedy}",
        metadata={"error_type": type(exc).__name__, "error_code": exc.code or ""},
        allow_retries=False,
    )


def _run_snapshot_date(context: dg.AssetExecutionContext) -> date:
    """The day this run's facts describe: the run's creation date (UTC), stable across steps."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    created = record.create_timestamp if record else datetime.now(UTC)
    return created.astimezone(UTC).date()


def _markdown(frame: pd.DataFrame, rows: int = 20) -> dg.MetadataValue:
    return dg.MetadataValue.md(
        frame.head(rows).to_markdown(index=False) if len(frame) else "_none_"
    )


@dg.asset(
    group_name=GROUP,
    kinds={"python", "microsoft"},
    pool=WAREHOUSE_POOL,
    retry_policy=STEP_RETRY,
)
def partner_token(
    microsoft: MicrosoftCloudResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """The partner's Partner Center sign-in (Secure Application Model refresh token).

    Materializes facts about the token (expiry, account, MFA), never the token itself. A dead
    refresh token, a sign-in without MFA or a rejected client secret fail the run with the fix.
    """
    settings = microsoft.settings()
    with microsoft.connect() as cloud:
        try:
            facts = sync.check_partner_sign_in(
                cloud, warehouse.open(), settings.credentials.partner_tenant_id
            )
        except PartnerAccessError as exc:
            raise _partner_failure(exc) from None
    return dg.MaterializeResult(
        metadata={
            "partner_tenant_id": facts.tenant_id,
            "account": facts.account or "",
            "mfa": facts.mfa,
            "expires_at": dg.MetadataValue.timestamp(facts.expires_at),
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"python", "duckdb"},
    deps=[partner_token],
    pool=WAREHOUSE_POOL,
    retry_policy=STEP_RETRY,
)
def customers(
    context: dg.AssetExecutionContext,
    microsoft: MicrosoftCloudResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Every customer tenant the partner can reach (Partner Center customers, GDAP and DAP).

    Registers new tenants as partitions of `subscribed_skus`; departed tenants are marked
    inactive in the `customers` table, keeping their partition and history.
    """
    settings = microsoft.settings()
    store = warehouse.open()
    with microsoft.connect() as cloud:
        try:
            discovery = sync.discover_customers(
                cloud, store, settings.credentials.partner_tenant_id, sync.utcnow()
            )
        except PartnerAccessError as exc:
            raise _partner_failure(exc) from None
    active = store.active_tenants(settings.credentials.partner_tenant_id)
    registered = set(context.instance.get_dynamic_partitions(tenant_partitions.name))
    if new_keys := [tenant for tenant in active if tenant not in registered]:
        context.instance.add_dynamic_partitions(tenant_partitions.name, new_keys)
    frame = discovery.customers
    changes = discovery.changes
    return dg.MaterializeResult(
        metadata={
            "customers": dg.MetadataValue.int(len(frame)),
            "active": dg.MetadataValue.int(len(active)),
            "new": dg.MetadataValue.json(changes.new),
            "departed": dg.MetadataValue.json(changes.departed),
            "returned": dg.MetadataValue.json(changes.returned),
            "by_relationship": dg.MetadataValue.json(
                frame["relationship"].value_counts().to_dict() if len(frame) else {}
            ),
            "preview": _markdown(
                frame[["tenant_id", "display_name", "relationship", "gdap_status"]]
            ),
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"python", "duckdb"},
    deps=[customers],
    partitions_def=tenant_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    retry_policy=STEP_RETRY,
)
def subscribed_skus(
    context: dg.AssetExecutionContext,
    microsoft: MicrosoftCloudResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Each tenant's subscribed SKUs from Graph (plus Partner Center's names), raw and dated.

    One run covers any number of tenants, fetched concurrently with a bounded pool. A tenant
    that fails (consent revoked, access removed, throttled, ...) gets a status row with
    Microsoft's error code; the others go on.
    """
    settings = microsoft.settings()
    partner_tenant_id = settings.credentials.partner_tenant_id
    store = warehouse.open()
    active = set(store.active_tenants(partner_tenant_id))
    tenant_ids = [key for key in context.partition_keys if key in active]
    if skipped := len(context.partition_keys) - len(tenant_ids):
        context.log.info(f"Skipping {skipped} departed tenant(s); their history is kept.")
    snapshot_date = _run_snapshot_date(context)
    step = max(1, len(tenant_ids) // 10)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            context.log.info(f"Fetched {done}/{total} tenants")

    with microsoft.connect() as cloud:
        try:
            fetches = sync.fetch_tenants(
                cloud, tenant_ids, max_workers=settings.max_workers, on_progress=progress
            )
        except PartnerAccessError as exc:
            raise _partner_failure(exc) from None
        http = cloud.session.stats.snapshot()
    screened = sync.screen_payloads(
        fetches,
        catalog=SkuCatalog.load(),
        partner_tenant_id=partner_tenant_id,
        snapshot_date=snapshot_date,
    )
    summary = sync.store_fetches(
        store,
        screened,
        partner_tenant_id=partner_tenant_id,
        snapshot_date=snapshot_date,
        sync_id=context.run.run_id,
    )
    failing = pd.DataFrame(
        [
            {"tenant_id": f.tenant_id, "status": f.status.value, "error_code": f.error_code}
            for f in screened
            if f.status.value != "ok"
        ],
        columns=["tenant_id", "status", "error_code"],
    )
    return dg.MaterializeResult(
        metadata={
            "snapshot_date": str(snapshot_date),
            "tenants": dg.MetadataValue.int(summary.tenants),
            "statuses": dg.MetadataValue.json(dict(summary.statuses)),
            "http": dg.MetadataValue.json(http),
            "failing_tenants": _markdown(failing, rows=50),
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"python", "duckdb"},
    deps=[subscribed_skus],
    pool=WAREHOUSE_POOL,
    retry_policy=STEP_RETRY,
)
def license_facts(
    context: dg.AssetExecutionContext,
    microsoft: MicrosoftCloudResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Normalized, dated license facts: one row per (snapshot date, tenant, SKU) in DuckDB.

    Replaces exactly today's slice of each tenant that answered; tenants that failed keep their
    last good facts (marked stale in `current_license_facts`). Publishes the analyst copy.
    """
    partner_tenant_id = microsoft.settings().credentials.partner_tenant_id
    store = warehouse.open()
    snapshot_date = _run_snapshot_date(context)
    rows = sync.build_license_facts(
        store,
        SkuCatalog.load(),
        partner_tenant_id=partner_tenant_id,
        snapshot_date=snapshot_date,
        synced_at=sync.utcnow(),
    )
    analyst_copy = store.publish_analyst_copy()
    return dg.MaterializeResult(
        metadata={
            "snapshot_date": str(snapshot_date),
            "rows_written": dg.MetadataValue.int(rows),
            "analyst_copy": dg.MetadataValue.path(str(analyst_copy)),
            "per_customer": _markdown(store.licenses_per_customer(), rows=50),
        }
    )
