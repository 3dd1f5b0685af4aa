"""License facts: fetched payloads checked and normalized once into rows, or rebuilt from raw."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.normalize import (
    FactRows,
    MalformedPayload,
    license_fact_rows,
)
from sync365_pipeline.licensing.tenants import TenantFetch
from sync365_pipeline.warehouse import RawPayload, TenantStatusRow, Warehouse


def facts_for(
    tenant_id: str,
    payloads: dict[str, Any],
    *,
    catalog: SkuCatalog,
    partner_tenant_id: str,
    snapshot_date: date,
    synced_at: datetime,
) -> FactRows:
    """One tenant's license facts from its raw payloads; raises `MalformedPayload`."""
    return license_fact_rows(
        partner_tenant_id=partner_tenant_id,
        tenant_id=tenant_id,
        snapshot_date=snapshot_date,
        synced_at=synced_at,
        graph_skus=payloads["graph"],
        partner_center_skus=payloads.get("partner_center"),
        catalog=catalog,
    )


@dataclass(frozen=True)
class StagedFetches:
    """One pass over fetched tenants: a status row each, the raw payloads, and the facts of each
    tenant whose payload validated (no rows for a tenant with zero SKUs)."""

    statuses: list[TenantStatusRow]
    raw_payloads: list[RawPayload]
    facts_by_tenant: dict[str, tuple[tuple[Any, ...], ...]]


def stage_fetches(
    fetches: Iterable[TenantFetch],
    *,
    catalog: SkuCatalog,
    partner_tenant_id: str,
    snapshot_date: date,
    sync_id: str,
) -> StagedFetches:
    """Validate and normalize each fetched payload once, into the rows the warehouse keeps.

    A tenant whose payload does not validate becomes an `error` (MalformedPayload): its raw
    payload is still kept, for diagnosis, but it has no facts, so its earlier facts stay as they
    were. A tenant with some bad SKU records stays `ok` (its other SKUs land), with
    `SkippedRecords` and the reasons as its code and message.
    """
    staged = StagedFetches([], [], {})
    for fetched in fetches:
        status, code, message = fetched.status, fetched.error_code, fetched.message
        if status is TenantStatus.OK:
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
                status, code, message = TenantStatus.ERROR, "MalformedPayload", str(exc)
            else:
                staged.facts_by_tenant[fetched.tenant_id] = normalized.rows
                if normalized.skipped:
                    code = "SkippedRecords"
                    message = " ".join(record.reason for record in normalized.skipped)
        staged.statuses.append(
            TenantStatusRow(
                partner_tenant_id=partner_tenant_id,
                tenant_id=fetched.tenant_id,
                checked_at=fetched.checked_at,
                status=status,
                error_code=code,
                message=message,
                sync_id=sync_id,
            )
        )
        staged.raw_payloads.extend(
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
    return staged


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
    rows_by_tenant = {
        tenant_id: facts_for(
            tenant_id,
            payloads,
            catalog=catalog,
            partner_tenant_id=partner_tenant_id,
            snapshot_date=snapshot_date,
            synced_at=synced_at,
        ).rows
        for tenant_id, payloads in payloads_by_tenant.items()
    }
    return warehouse.replace_license_facts(
        snapshot_date, rows_by_tenant, partner_tenant_id=partner_tenant_id
    )
