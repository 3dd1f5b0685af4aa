"""The sync as plain Python: discovery, the concurrent per-tenant fetch, and facts.

The Dagster assets are thin wrappers around these functions, so the whole sync can be tested and
benchmarked without Dagster. A failing customer is an outcome (data), never an exception; only
partner-level failures (`PartnerAccessError`) propagate and stop the sync.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

import pandas as pd

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.config import Settings
from sync365_pipeline.microsoft import (
    MicrosoftCloud,
    MicrosoftError,
    PartnerAccessError,
    TenantAccessError,
    Throttled,
)
from sync365_pipeline.microsoft.auth import TokenFacts
from sync365_pipeline.microsoft.errors import tenant_outcome
from sync365_pipeline.models import TenantStatus
from sync365_pipeline.normalize import (
    MalformedPayload,
    customers_frame,
    direct_tenant_frame,
    license_facts_frame,
)
from sync365_pipeline.warehouse import (
    CustomerChanges,
    PartnerStatusRow,
    RawPayload,
    TenantStatusRow,
    Warehouse,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TenantFetch:
    """What one customer tenant returned in one sync attempt."""

    tenant_id: str
    status: TenantStatus
    checked_at: datetime
    error_code: str | None = None
    message: str = ""
    graph_skus: list[dict[str, Any]] | None = None
    partner_center_skus: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Discovery:
    customers: pd.DataFrame
    changes: CustomerChanges


@dataclass
class SyncSummary:
    """Per-status counts of one license sync, for metadata and the CLI summary."""

    snapshot_date: date
    statuses: Counter[str] = field(default_factory=Counter)
    http: dict[str, float] = field(default_factory=dict)


@dataclass
class AccountResults(Generic[T]):
    """Per-account results of one step; a failed account is recorded, the others go on."""

    succeeded: dict[str, T] = field(default_factory=dict)
    failed: dict[str, MicrosoftError] = field(default_factory=dict)


def for_each_account(
    accounts: Sequence[Settings],
    warehouse: Warehouse,
    work: Callable[[Settings, MicrosoftCloud], T],
) -> AccountResults[T]:
    """Run one step for every account, each with its own session and token cache.

    Any Microsoft failure of one account (a dead refresh token, a rejected secret, no MFA, or a
    Partner Center outage that outlasted the retries) is written to `partner_status`, where the
    consent sensor sees it, and does not stop the other accounts; the caller decides what to do
    when all of them failed.
    """
    results: AccountResults[T] = AccountResults()
    for settings in accounts:
        with MicrosoftCloud.from_settings(settings) as cloud:
            try:
                results.succeeded[settings.name] = work(settings, cloud)
            except MicrosoftError as exc:
                warehouse.record_partner_status(
                    PartnerStatusRow(
                        partner_tenant_id=settings.tenant_id,
                        checked_at=utcnow(),
                        status=partner_status_of(exc),
                        error_code=exc.code,
                        message=f"{failure_problem(exc)} {failure_remedy(exc)}",
                    )
                )
                results.failed[settings.name] = exc
    return results


def failure_problem(exc: MicrosoftError) -> str:
    return exc.problem if isinstance(exc, PartnerAccessError) else str(exc)


def failure_remedy(exc: MicrosoftError) -> str:
    """What the operator does about an account that failed."""
    if isinstance(exc, PartnerAccessError):
        return exc.remedy
    if isinstance(exc, TenantAccessError):  # a direct account's own tenant refuses its app
        return (
            "Check the account's tenant_id, and that the app registration still exists in that "
            "tenant with admin consent granted (Entra admin center > Enterprise applications), "
            "then rerun."
        )
    if exc.retryable:
        return "This is usually temporary: the next run tries again."
    return "See docs/troubleshooting.md for this code, then rerun."


def check_sign_in(cloud: MicrosoftCloud, warehouse: Warehouse, settings: Settings) -> TokenFacts:
    """Prove the account can sign in, and record facts about its token (never the token).

    A partner redeems its refresh token for Partner Center (which must carry MFA); a direct
    tenant's app gets a Graph token with client credentials.
    """
    checked_at = utcnow()
    if settings.kind == "direct":
        facts = cloud.tokens.graph_token(settings.tenant_id).facts
    else:
        facts = cloud.tokens.partner_center_token().facts
    warehouse.record_partner_status(
        PartnerStatusRow(
            partner_tenant_id=settings.tenant_id,
            checked_at=checked_at,
            status="ok",
            token_expires_at=facts.expires_at,
            account=facts.account,
            mfa=facts.mfa,
        )
    )
    return facts


def partner_status_of(exc: MicrosoftError) -> str:
    """`partner_status.status` for an account that failed: the sign-in error in snake case, the
    tenant status that stopped a direct account, or `throttled` / `error` for a failure that is
    not a loss of access."""
    if isinstance(exc, TenantAccessError):
        return exc.status.value
    if isinstance(exc, PartnerAccessError):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    return TenantStatus.THROTTLED.value if isinstance(exc, Throttled) else TenantStatus.ERROR.value


def discover_customers(
    cloud: MicrosoftCloud, warehouse: Warehouse, settings: Settings, seen_at: datetime
) -> Discovery:
    """Every tenant the account can reach, merged into `customers`.

    A partner: Partner Center customers merged with GDAP relationships and DAP contracts. A
    direct account: its own tenant.
    """
    if settings.kind == "direct":
        frame = direct_tenant_frame(
            settings.tenant_id, cloud.graph.organization(settings.tenant_id)
        )
    else:
        frame = customers_frame(
            settings.tenant_id,
            cloud.partner_center.customers(),
            cloud.graph.delegated_admin_relationships(),
            cloud.graph.contracts(),
        )
    changes = warehouse.upsert_customers(settings.tenant_id, frame, seen_at)
    return Discovery(customers=frame, changes=changes)


def fetch_tenant(cloud: MicrosoftCloud, tenant_id: str, *, partner_center: bool) -> TenantFetch:
    """Fetch one tenant's SKUs; every customer-level failure becomes a typed status.

    `partner_center` adds Partner Center's view of the same SKUs, used only for friendly names.
    """
    checked_at = utcnow()
    try:
        graph_skus = cloud.graph.subscribed_skus(tenant_id)
    except PartnerAccessError:
        raise
    except MicrosoftError as exc:
        status, code, message = tenant_outcome(exc)
        return TenantFetch(tenant_id, status, checked_at, code, message)
    partner_center_skus: list[dict[str, Any]] | None = None
    if partner_center:
        try:
            partner_center_skus = cloud.partner_center.subscribed_skus(tenant_id)
        except PartnerAccessError:
            raise
        except MicrosoftError as exc:
            # Partner Center only adds friendly names; the catalog covers them when it fails.
            log.info(
                "Partner Center SKUs unavailable for %s (%s); names from catalog", tenant_id, exc
            )
    return TenantFetch(
        tenant_id,
        TenantStatus.OK,
        checked_at,
        graph_skus=graph_skus,
        partner_center_skus=partner_center_skus,
    )


def fetch_tenants(
    cloud: MicrosoftCloud,
    tenant_ids: Sequence[str],
    *,
    max_workers: int,
    partner_center: bool = True,
    on_progress: ProgressCallback | None = None,
) -> list[TenantFetch]:
    """Fetch many tenants with a bounded pool; stop everything on a partner-level failure."""
    results: list[TenantFetch] = []
    lock = threading.Lock()

    def one(tenant_id: str) -> None:
        try:
            fetched = fetch_tenant(cloud, tenant_id, partner_center=partner_center)
        finally:
            cloud.tokens.release(tenant_id)
        with lock:
            results.append(fetched)
            done = len(results)
        if on_progress is not None:
            on_progress(done, len(tenant_ids))

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tenant") as pool:
        futures = [pool.submit(one, tenant_id) for tenant_id in tenant_ids]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in finished:
            if (error := future.exception()) is not None:
                for pending in futures:
                    pending.cancel()
                raise error
    position = {tenant_id: index for index, tenant_id in enumerate(tenant_ids)}
    return sorted(results, key=lambda fetched: position[fetched.tenant_id])


def facts_for(
    tenant_id: str,
    payloads: dict[str, Any],
    *,
    catalog: SkuCatalog,
    partner_tenant_id: str,
    snapshot_date: date,
    synced_at: datetime,
) -> pd.DataFrame:
    """One tenant's license facts from its raw payloads; raises `MalformedPayload`."""
    return license_facts_frame(
        partner_tenant_id=partner_tenant_id,
        tenant_id=tenant_id,
        snapshot_date=snapshot_date,
        synced_at=synced_at,
        graph_skus=payloads["graph"],
        partner_center_skus=payloads.get("partner_center"),
        catalog=catalog,
    )


def screen_payloads(
    fetches: Iterable[TenantFetch],
    *,
    catalog: SkuCatalog,
    partner_tenant_id: str,
    snapshot_date: date,
) -> list[TenantFetch]:
    """Turn a tenant whose payload does not validate into an `error` outcome before it is stored.

    The raw payload is still kept (for diagnosis) but its facts are never written, so the
    tenant's earlier facts stay as they were.
    """
    screened = []
    for fetched in fetches:
        if fetched.status is TenantStatus.OK:
            try:
                facts_for(
                    fetched.tenant_id,
                    {"graph": fetched.graph_skus, "partner_center": fetched.partner_center_skus},
                    catalog=catalog,
                    partner_tenant_id=partner_tenant_id,
                    snapshot_date=snapshot_date,
                    synced_at=fetched.checked_at,
                )
            except MalformedPayload as exc:
                fetched = replace(
                    fetched,
                    status=TenantStatus.ERROR,
                    error_code="MalformedPayload",
                    message=str(exc),
                )
        screened.append(fetched)
    return screened


def store_fetches(
    warehouse: Warehouse,
    fetches: Iterable[TenantFetch],
    *,
    partner_tenant_id: str,
    snapshot_date: date,
    sync_id: str,
) -> SyncSummary:
    """Keep the raw payloads (dated) and one status row per tenant."""
    summary = SyncSummary(snapshot_date)
    raw_rows: list[RawPayload] = []
    status_rows: list[TenantStatusRow] = []
    for fetched in fetches:
        summary.statuses[fetched.status.value] += 1
        status_rows.append(
            TenantStatusRow(
                partner_tenant_id=partner_tenant_id,
                tenant_id=fetched.tenant_id,
                checked_at=fetched.checked_at,
                status=fetched.status,
                error_code=fetched.error_code,
                message=fetched.message,
                sync_id=sync_id,
            )
        )
        raw_rows.extend(
            RawPayload(
                snapshot_date=snapshot_date,
                partner_tenant_id=partner_tenant_id,
                tenant_id=fetched.tenant_id,
                source=source,
                fetched_at=fetched.checked_at,
                payload=payload,
            )
            for source, payload in (
                ("graph", fetched.graph_skus),
                ("partner_center", fetched.partner_center_skus),
            )
            if payload is not None
        )
    warehouse.save_raw_payloads(raw_rows)
    warehouse.record_tenant_statuses(status_rows)
    return summary


def build_license_facts(
    warehouse: Warehouse,
    catalog: SkuCatalog,
    *,
    partner_tenant_id: str,
    snapshot_date: date,
    synced_at: datetime,
    sync_id: str | None,
) -> int:
    """Replace the facts of the tenants whose latest attempt on `snapshot_date` was ok.

    With `sync_id` (the facts are built in the run that fetched), only the tenants that sync
    fetched are rebuilt: rerunning one tenant costs one tenant, and an account that failed in
    this run is left alone. Without it (facts rebuilt on their own) the whole day is rebuilt.
    Returns the number of fact rows written. Tenants that failed are not touched, so their
    earlier facts stay (the views mark them stale).
    """
    payloads_by_tenant = warehouse.ok_raw_payloads(
        partner_tenant_id, snapshot_date, sync_id=sync_id
    )
    frames = {
        tenant_id: facts_for(
            tenant_id,
            payloads,
            catalog=catalog,
            partner_tenant_id=partner_tenant_id,
            snapshot_date=snapshot_date,
            synced_at=synced_at,
        )
        for tenant_id, payloads in payloads_by_tenant.items()
    }
    warehouse.replace_license_facts(snapshot_date, frames)
    return sum(len(frame) for frame in frames.values())
