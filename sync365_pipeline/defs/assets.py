"""The asset graph: partner_token -> customers -> subscribed_skus, subscriptions,
tenant_subscriptions, user_licenses (all tenants, one bulk step) -> license_facts.

Each asset calls plain Python in `sync365_pipeline.licensing` and reports what happened as metadata.
No asset returns data to an IO manager: facts live in DuckDB, tokens only in the token cache.
"""

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, date
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import pandas as pd
from pydantic import Field

from sync365_pipeline.catalog import SkuCatalog, sku_classes
from sync365_pipeline.core.clock import on_clock, utcnow
from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.defs.resources import MicrosoftCloudResource, WarehouseResource
from sync365_pipeline.licensing import access_report, accounts, chunks, discovery, facts, tenants
from sync365_pipeline.licensing.selection import (
    TenantSelection,
    UnknownTenantsError,
    selected_tenants,
)
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.warehouse import (
    Warehouse,
    WarehouseLocked,
    WarehouseUnwritable,
    remove_abandoned_stages,
    remove_stage,
    staged_files,
)

GROUP = "licensing"
WAREHOUSE_POOL = "sync365_warehouse"
# Whole-step faults (a Partner Center outage that outlasted the HTTP retries, a locked warehouse).
# Permanent failures raise dg.Failure(allow_retries=False) and are not retried.
T = TypeVar("T")
STOPPED = "Stopped by SIGINT or SIGTERM before it finished."
ABANDONED_STAGE_S = 24 * 3600
STEP_RETRY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def guarded(compute: Callable[..., T]) -> Callable[..., T]:
    """A step body whose expected endings are clear, unretried failures.

    A warehouse still locked after the warehouse's own wait fails the run with its message and
    no step retry: a human holds the file (an analyst session on the live file, a stray process).
    So does a warehouse that cannot be written (disk full, read-only): retrying cannot help.
    So does SIGINT/SIGTERM (Dagster raises it inside the step): a stop is never retried.
    """

    @functools.wraps(compute)
    def step(*args: Any, **kwargs: Any) -> T:
        try:
            return compute(*args, **kwargs)
        except (WarehouseLocked, WarehouseUnwritable) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        except dg.DagsterExecutionInterruptedError:
            raise dg.Failure(description=STOPPED, allow_retries=False) from None

    return step


def licensing_asset(**kwargs: Any) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`dg.asset` with what every asset here shares: group, warehouse pool, step retries and
    the `guarded` endings."""
    decorate = dg.asset(
        group_name=GROUP,
        pool=WAREHOUSE_POOL,
        retry_policy=STEP_RETRY,
        **{"kinds": {"python", "duckdb"}, **kwargs},
    )
    return lambda compute: decorate(guarded(compute))


def _for_each_account(
    context: dg.AssetExecutionContext,
    microsoft: MicrosoftCloudResource,
    store: Warehouse,
    work: Callable[[AccountSettings, MicrosoftCloud], T],
) -> accounts.AccountResults[T]:
    """Run an asset's step for every configured account, each with its own ready client; go on
    with the accounts that worked and fail only when none did.

    A failed account is recorded in `partner_status` (where the consent sensor flags it). A
    single account's failure thus fails the run with its remedy (retried only when it was a
    temporary fault), while with several accounts one broken account is logged and the others
    are synced.
    """
    results = accounts.for_each_account(microsoft.accounts(), store, microsoft.connect, work)
    messages = [
        f"Account {name}: {accounts.failure_problem(exc)}\n\n"
        f"What to do: {accounts.failure_remedy(exc)}"
        for name, exc in results.failed.items()
    ]
    if not results.succeeded:
        raise dg.Failure(
            description="\n\n".join(messages),
            metadata={
                "error_codes": dg.MetadataValue.json(
                    {name: exc.code for name, exc in results.failed.items()}
                )
            },
            allow_retries=any(exc.retryable for exc in results.failed.values()),
        )
    for message in messages:
        context.log.error(message)
    return results


StepContext = dg.AssetExecutionContext | dg.OpExecutionContext | dg.AssetCheckExecutionContext


def run_snapshot_date(context: StepContext) -> date:
    """The day this run's facts describe: the run's creation date (UTC) on the pipeline's clock
    (a replayed day's in a replay), stable across steps."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    created = on_clock(record.create_timestamp) if record else utcnow()
    return created.astimezone(UTC).date()


def _markdown(frame: pd.DataFrame, rows: int = 20) -> dg.MetadataValue:
    return dg.MetadataValue.md(
        frame.head(rows).to_markdown(index=False) if len(frame) else "_none_"
    )


@licensing_asset(kinds={"python", "microsoft"})
def partner_token(
    context: dg.AssetExecutionContext,
    microsoft: MicrosoftCloudResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Each account's sign-in: a partner's Partner Center token (Secure Application Model
    refresh token, with MFA) or a direct tenant's app token.

    Materializes facts about the tokens (expiry, account, MFA), never the tokens. A dead refresh
    token, a sign-in without MFA or a rejected client secret fail the run with the fix.
    """
    store = warehouse.open()

    def sign_in(account: AccountSettings, cloud: MicrosoftCloud) -> dict[str, object]:
        token = accounts.check_sign_in(cloud, store, account)
        return {
            "account": account.name,
            "kind": account.kind,
            "tenant_id": token.tenant_id,
            "signed_in_as": token.account or "(app)",
            "mfa": token.mfa,
            "token_expires_at": token.expires_at.isoformat(timespec="seconds"),
        }

    results = _for_each_account(context, microsoft, store, sign_in)
    table = pd.DataFrame(list(results.succeeded.values()))
    return dg.MaterializeResult(
        metadata={
            "accounts_ok": dg.MetadataValue.int(len(results.succeeded)),
            "accounts_failed": dg.MetadataValue.json(sorted(results.failed)),
            "sign_ins": _markdown(table),
        }
    )


@licensing_asset(deps=[partner_token])
def customers(
    context: dg.AssetExecutionContext,
    microsoft: MicrosoftCloudResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Every customer tenant the accounts can reach (Partner Center customers, GDAP and DAP;
    a direct account's own tenant).

    Active customers are what `subscribed_skus` fetches; departed tenants are marked inactive in
    the `customers` table, keeping their history.
    """
    store = warehouse.open()
    seen_at = utcnow()
    discoveries = _for_each_account(
        context,
        microsoft,
        store,
        lambda account, cloud: discovery.discover_customers(cloud, store, account, seen_at),
    ).succeeded
    active = store.active_tenants()
    frame = pd.concat([found.customers for found in discoveries.values()], ignore_index=True)
    access = access_report.access_reports(store.latest_customer_access(), utcnow())
    reached = access_report.reach_tally(access)
    names = store.customer_names()
    partners = {account.name: account.tenant_id for account in microsoft.accounts()}
    return dg.MaterializeResult(
        metadata={
            "customers": dg.MetadataValue.int(len(frame)),
            "active": dg.MetadataValue.int(len(active)),
            # Each kind of change's customers, 'Name (tenant id)', of every account.
            **{
                change: dg.MetadataValue.json(
                    sorted(
                        label
                        for account, found in discoveries.items()
                        for label in names.labels(partners[account], getattr(found.changes, change))
                    )
                )
                for change in ("new", "departed", "returned")
            },
            "by_relationship": dg.MetadataValue.json(
                frame["relationship"].value_counts().to_dict() if len(frame) else {}
            ),
            "preview": _markdown(
                frame[["tenant_id", "display_name", "relationship", "gdap_status"]]
            ),
            # What the last sync saw of each customer's access, failing and at-risk first.
            "access": _markdown(access_report.access_table(access), rows=50),
            "reachable_via_graph": dg.MetadataValue.int(reached[access_report.Reach.GRAPH]),
            "reachable_via_partner_center": dg.MetadataValue.int(
                reached[access_report.Reach.PARTNER_CENTER]
            ),
            "not_reachable": dg.MetadataValue.int(reached[access_report.Reach.NONE]),
            "reachable_tenants": dg.MetadataValue.int(
                reached[access_report.Reach.GRAPH] + reached[access_report.Reach.PARTNER_CENTER]
            ),
        }
    )


class TenantSelectionConfig(dg.Config):
    """Which tenants a run fetches; by default every active tenant (the daily sync)."""

    tenants: list[str] = Field(
        default=[],
        description="Tenant ids, customer names or default domains (any case); empty: all.",
    )
    failed_only: bool = Field(
        default=False,
        description="Only tenants whose latest attempt did not succeed, or that never ran.",
    )

    def selection(self) -> TenantSelection:
        return TenantSelection(tuple(self.tenants), self.failed_only)


@dg.op(
    pool=WAREHOUSE_POOL,
    ins={"customers": dg.In(dg.Nothing)},
    out=dg.DynamicOut(chunks.TenantChunk),
)
@guarded
def plan_tenant_chunks(
    context: dg.OpExecutionContext,
    config: TenantSelectionConfig,
    microsoft: MicrosoftCloudResource,
    warehouse: WarehouseResource,
) -> Iterator[dg.DynamicOutput[chunks.TenantChunk]]:
    """The tenants this run fetches (every active one, or those its config names), cut into
    chunks of `chunk_size`: one step each. A name that matches no tenant fails the run."""
    store = warehouse.open()
    staging = store.staging_dir(context.run.run_id)
    if removed := remove_abandoned_stages(staging.parent, partial(_unfinished, context)):
        context.log.info(f"Removed what {len(removed)} stopped sync(s) had staged.")
    selection = config.selection()
    settings = microsoft.accounts()
    try:
        chosen = selected_tenants(store, [account.tenant_id for account in settings], selection)
    except UnknownTenantsError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    planned = chunks.plan_chunks(
        store,
        settings,
        chosen,
        snapshot_date=run_snapshot_date(context),
        sync_id=context.run.run_id,
        staging_dir=staging,
    )
    context.log.info(
        f"Fetching {selection.describe()}: {sum(map(len, chosen.values()))} tenant(s) in "
        f"{len(planned)} chunk(s)."
    )
    for chunk in planned:
        yield dg.DynamicOutput(chunk, mapping_key=chunk.key)


def _unfinished(context: dg.OpExecutionContext, run_id: str, folder: Path) -> bool:
    """A run of this instance that is not over, or, for a run this instance does not know (a
    sync from another Dagster home on the same warehouse), one whose files are under a day old."""
    run = context.instance.get_run_by_id(run_id) if run_id != context.run.run_id else context.run
    if run is None:
        return time.time() - folder.stat().st_mtime < ABANDONED_STAGE_S
    return not run.is_finished


@dg.op(retry_policy=STEP_RETRY)
@guarded
def fetch_tenant_chunk(
    context: dg.OpExecutionContext, chunk: chunks.TenantChunk, microsoft: MicrosoftCloudResource
) -> chunks.StagedChunk:
    """Fetch one chunk of tenants concurrently (a bounded pool), check and normalize each payload
    once, and stage the rows as files. Needs no warehouse, so chunks run in parallel under a
    multiprocess executor. A failing tenant is a status; the other tenants go on."""
    (settings,) = [account for account in microsoft.accounts() if account.name == chunk.account]
    with microsoft.connect(settings, saves_tokens=False) as cloud:
        return chunks.fetch_chunk(
            cloud,
            settings,
            chunk,
            SkuCatalog.load(),
            on_progress=_progress_logger(context, f"{settings.name} chunk {chunk.number + 1}"),
        )


# What one bulk run lands, each an asset of its own: the tenants' SKUs (with the partner's access
# to each), the partner's subscriptions (Partner Center; they survive the loss of GDAP), the
# tenants' subscriptions whoever sold them (Graph `directory/subscriptions`), and who holds each
# licence (Graph's licensed users; personal data).
BULK_OUTPUTS = ("subscribed_skus", "subscriptions", "tenant_subscriptions", "user_licenses")
SUBSCRIBED_SKUS = dg.AssetKey("subscribed_skus")  # whose staged facts license_facts promotes


@dg.op(pool=WAREHOUSE_POOL, out={name: dg.Out(dg.Nothing) for name in BULK_OUTPUTS})
@guarded
def store_tenant_chunks(
    context: dg.OpExecutionContext,
    staged: list[chunks.StagedChunk],
    microsoft: MicrosoftCloudResource,
    warehouse: WarehouseResource,
) -> tuple[None, None, None, None]:
    """The one writer of what the chunks staged: statuses and raw payloads in one transaction,
    and the accounts that failed inside a chunk in `partner_status`. Fails the run only when
    every account failed (with the remedy); the tenants_synced check names failing customers."""
    store = warehouse.open()
    chunks.store_chunks(store, staged, microsoft.accounts())
    failed = {chunk.chunk.account: chunk.failure for chunk in staged if chunk.failure is not None}
    if failed and len(failed) == len({chunk.chunk.account for chunk in staged}):
        raise dg.Failure(
            description="\n\n".join(
                f"Account {name}: {failure.message}" for name, failure in failed.items()
            ),
            metadata={"error_codes": dg.MetadataValue.json({n: f.code for n, f in failed.items()})},
            allow_retries=any(failure.retryable for failure in failed.values()),
        )
    for name, failure in failed.items():
        context.log.error(f"Account {name}: {failure.message}")
    statuses = chunks.status_counts(staged)
    context.add_output_metadata(
        {
            "tenants": dg.MetadataValue.int(statuses.total()),
            "ok_tenants": dg.MetadataValue.int(statuses[TenantStatus.OK]),
            "failing_tenants": dg.MetadataValue.int(statuses.total() - statuses[TenantStatus.OK]),
            "statuses": dg.MetadataValue.json(dict(statuses)),
            "chunks": dg.MetadataValue.int(len(staged)),
            "http": dg.MetadataValue.json(chunks.http_by_account(staged)),
        },
        output_name="subscribed_skus",
    )
    counts = store.subscription_counts()
    context.add_output_metadata(
        {
            name: dg.MetadataValue.int(counts[name])
            for name in ("subscriptions", "renewal_actions", "monthly_rollovers")
        },
        output_name="subscriptions",
    )
    context.add_output_metadata(
        {"tenant_subscriptions": dg.MetadataValue.int(counts["tenant_subscriptions"])},
        output_name="tenant_subscriptions",
    )
    context.add_output_metadata(
        {"licensed_users": dg.MetadataValue.int(counts["licensed_users"])},
        output_name="user_licenses",
    )
    return None, None, None, None


@dg.graph_multi_asset(
    group_name=GROUP,
    outs={
        "subscribed_skus": dg.AssetOut(kinds={"python", "duckdb"}),
        "subscriptions": dg.AssetOut(
            kinds={"python", "duckdb"},
            description="The subscriptions this partner sells each customer (Partner Center: "
            "terms, billing cycles, commitment ends, auto-renew, cancellation windows), dated; "
            "read with the partner's token, so they survive the loss of GDAP.",
        ),
        "tenant_subscriptions": dg.AssetOut(
            kinds={"python", "duckdb"},
            description="Each customer's subscriptions whoever sold them (Graph "
            "directory/subscriptions, with the owning tenant), dated: what `sold_by_us` compares.",
        ),
        "user_licenses": dg.AssetOut(
            kinds={"python", "duckdb"},
            description="Who holds each licence (Graph users: assignments, group, state, last "
            "sign-in), dated; personal data, off with SYNC365_USERS=false.",
        ),
    },
    ins={"customers": dg.AssetIn(dagster_type=dg.Nothing)},
)
def subscribed_skus(customers: None) -> dict[str, Any]:
    """Each tenant's subscribed SKUs from Graph (plus Partner Center's names), raw and dated,
    and the partner's access to it (`customer_access`: the GDAP roles audited, the CPV consent
    granted when the tenant refused for want of it, then retried). A reseller customer Graph
    cannot be read for gets Partner Center's SKUs instead (`source = 'partner_center'`).

    One run covers every active tenant (or those the run's config names), in chunks fetched
    concurrently with a bounded pool; per-tenant outcomes live in DuckDB, so Dagster records a
    few events per chunk, not one per tenant. A tenant that fails (consent revoked, access
    removed, throttled, ...) gets a status row with Microsoft's error code and the others go on;
    the `tenants_synced` check then fails (as a warning) and names every failing customer.
    """
    staged = plan_tenant_chunks(customers).map(fetch_tenant_chunk)
    stored = store_tenant_chunks(staged.collect())
    return dict(zip(BULK_OUTPUTS, stored, strict=True))


def _progress_logger(context: StepContext, what: str) -> tenants.ProgressCallback:
    """Log about ten progress lines for `what` (an account's chunk), however many tenants."""

    def progress(done: int, total: int) -> None:
        if done == total or done * 10 // total > (done - 1) * 10 // total:
            context.log.info(f"{what}: fetched {done}/{total} tenants")

    return progress


@licensing_asset(deps=[subscribed_skus])
def license_facts(
    context: dg.AssetExecutionContext,
    microsoft: MicrosoftCloudResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Normalized, dated license facts: one row per (snapshot date, tenant, SKU) in DuckDB.

    In a run that fetched, promotes what the chunks staged: exactly today's slice of each tenant
    that answered, in one transaction; tenants that failed keep their last good facts (marked
    stale in `current_license_facts`). On its own, rebuilds the day from the raw payloads.
    Publishes the analyst copy.
    """
    store = warehouse.open()
    snapshot_date = run_snapshot_date(context)
    catalog = SkuCatalog.load()
    store.replace_sku_classes(asdict(entry) for entry in sku_classes(catalog))
    in_this_run = context.run.asset_selection or context.job_def.asset_layer.executable_asset_keys
    if SUBSCRIBED_SKUS in in_this_run:  # promote what this run's chunks staged
        staging = store.staging_dir(context.run.run_id)
        rows = store.promote_staged_facts(snapshot_date, staged_files(staging))
        remove_stage(staging)
    else:  # rebuilt on its own: every tenant's facts of the day, from its raw payloads
        written = _for_each_account(
            context,
            microsoft,
            store,
            lambda account, _cloud: facts.build_license_facts(
                store,
                catalog,
                partner_tenant_id=account.tenant_id,
                snapshot_date=snapshot_date,
                synced_at=utcnow(),
                sync_id=None,
            ),
        ).succeeded
        rows = sum(written.values())
    analyst_copy = store.publish_analyst_copy()
    counts = store.subscription_counts()
    totals = store.license_totals()
    return dg.MaterializeResult(
        metadata={
            "snapshot_date": str(snapshot_date),
            "rows_written": dg.MetadataValue.int(rows),
            **{name: dg.MetadataValue.int(units) for name, units in totals.items()},
            "subscriptions": dg.MetadataValue.int(counts["subscriptions"]),
            "renewal_actions": dg.MetadataValue.int(counts["renewal_actions"]),
            "monthly_rollovers": dg.MetadataValue.int(counts["monthly_rollovers"]),
            "renewals": _markdown(
                store.renewal_actions()[
                    [
                        "display_name",
                        "offer_name",
                        "action",
                        "act_by",
                        "quantity",
                        "consumed_units",
                        "reducible_units",
                    ]
                ]
            ),
            "analyst_copy": dg.MetadataValue.path(str(analyst_copy)),
            "per_customer": _markdown(store.licenses_per_customer(), rows=50),
            "preview": _markdown(store.current_facts_preview()),
        }
    )
