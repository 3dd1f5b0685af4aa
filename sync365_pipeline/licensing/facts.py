"""License facts: screen fetched payloads, store them raw and dated, then build the facts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.normalize import (
    MalformedPayload,
    Normalized,
    license_facts_frame,
)
from sync365_pipeline.licensing.tenants import TenantFetch
from sync365_pipeline.warehouse import RawPayload, TenantStatusRow, Warehouse


@dataclass
class SyncSummary:
    """Per-status counts of one license sync, for metadata and the CLI summary."""

    snapshot_date: date
    statuses: Counter[str] = field(default_factory=Counter)
    http: dict[str, float] = field(default_factory=dict)


def facts_for(
    tenant_id: str,
    payloads: dict[str, Any],
    *,
    catalog: SkuCatalog,
    partner_tenant_id: str,
    snapshot_date: date,
    synced_at: datetime,
) -> Normalized:
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
    tenant's earlier facts stay as they were. A tenant with some bad SKU records stays `ok` (its
    other SKUs land) with `SkippedRecords` and the reasons as its code and message.
    """
    screened = []
    for fetched in fetches:
        if fetched.status is TenantStatus.OK:
            try:
                normalized = facts_for(
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
            else:
                if normalized.skipped:
                    fetched = replace(
                        fetched,
                        error_code="SkippedRecords",
                        message=" ".join(record.reason for record in normalized.skipped),
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
        ).frame
        for tenant_id, payloads in payloads_by_tenant.items()
    }
    warehouse.replace_license_facts(snapshot_date, frames)
    return sum(len(frame) for frame in frames.values())
