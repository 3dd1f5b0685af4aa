"""License facts: fetched payloads checked and normalized once into rows, or rebuilt from raw."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.normalize import (
    FactRows,
    MalformedPayload,
    graph_shaped_partner_center_skus,
    license_fact_rows,
)
from sync365_pipeline.licensing.tenants import TenantFetch
from sync365_pipeline.warehouse import (
    CustomerAccessRow,
    RawPayload,
    TenantStatusRow,
    Warehouse,
)

log = logging.getLogger(__name__)
FACTS_FROM_PARTNER_CENTER = "Its facts came from Partner Center's subscribedskus instead."


def facts_for(
    tenant_id: str,
    payloads: dict[str, Any],
    *,
    catalog: SkuCatalog,
    partner_tenant_id: str,
    snapshot_date: date,
    synced_at: datetime,
) -> FactRows:
    """One tenant's license facts from its raw payloads: Graph's counts (with Partner Center's
    names when it has them), or, with no Graph payload (the fallback), Partner Center's counts
    with `source = 'partner_center'`. Raises `MalformedPayload`."""
    partner_center = payloads.get("partner_center")
    graph = payloads.get("graph")
    return license_fact_rows(
        partner_tenant_id=partner_tenant_id,
        tenant_id=tenant_id,
        snapshot_date=snapshot_date,
        synced_at=synced_at,
        graph_skus=graph_shaped_partner_center_skus(partner_center) if graph is None else graph,
        partner_center_skus=partner_center,
        catalog=catalog,
        source="partner_center" if graph is None else "graph",
    )


@dataclass(frozen=True)
class StagedFetches:
    """One pass over fetched tenants: a status row and an access row each, the raw payloads,
    and the facts of each tenant whose payload validated (no rows for a tenant with zero SKUs)."""

    statuses: list[TenantStatusRow]
    access: list[CustomerAccessRow]
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
    `SkippedRecords` and the reasons as its code and message. A tenant that Graph could not be
    read for, but Partner Center could (`TenantFetch.fell_back`), keeps the status and code of
    Graph's failure (a human should still restore Graph access), and its facts come from Partner
    Center, as its message says.
    """
    staged = StagedFetches([], [], [], {})
    for fetched in fetches:
        status, code, message = fetched.status, fetched.error_code, fetched.message
        if status is TenantStatus.OK or fetched.fell_back:
            try:
                normalized = facts_for(
                    fetched.tenant_id,
                    {
                        "graph": None if fetched.fell_back else fetched.graph_skus,
                        "partner_center": fetched.partner_center_skus,
                    },
                    catalog=catalog,
                    partner_tenant_id=partner_tenant_id,
                    snapshot_date=snapshot_date,
                    synced_at=fetched.checked_at,
                )
            except MalformedPayload as exc:
                if fetched.fell_back:
                    message = f"{message} Partner Center's subscribedskus did not validate: {exc}"
                else:
                    status, code, message = TenantStatus.ERROR, "MalformedPayload", str(exc)
            else:
                staged.facts_by_tenant[fetched.tenant_id] = normalized.rows
                skipped = " ".join(record.reason for record in normalized.skipped)
                if fetched.fell_back:
                    message = " ".join(filter(None, (message, FACTS_FROM_PARTNER_CENTER, skipped)))
                elif skipped:
                    code, message = "SkippedRecords", skipped
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
        staged.access.append(access_row(fetched, partner_tenant_id, sync_id))
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


def access_row(fetched: TenantFetch, partner_tenant_id: str, sync_id: str) -> CustomerAccessRow:
    """The tenant's `customer_access` row of this attempt."""
    access = fetched.access
    return CustomerAccessRow(
        partner_tenant_id=partner_tenant_id,
        tenant_id=fetched.tenant_id,
        checked_at=fetched.checked_at,
        cpv_consent=access.cpv_consent.value,
        gdap_roles=access.gdap_roles,
        can_read_licenses=access.can_read_licenses,
        gdap_end_date=access.gdap_end_date,
        auto_extend=access.auto_extend,
        message=access.message or None,
        sync_id=sync_id,
    )


def build_license_facts(
    warehouse: Warehouse,
    catalog: SkuCatalog,
    *,
    partner_tenant_id: str,
    snapshot_date: date,
    synced_at: datetime,
    sync_id: str | None,
) -> int:
    """Replace the facts of the tenants whose latest attempt on `snapshot_date` gave facts: it
    was ok (Graph's payload), or Graph failed and Partner Center answered (the fallback's).

    With `sync_id` (the facts are built in the run that fetched), only the tenants that sync
    fetched are rebuilt: rerunning one tenant costs one tenant, and an account that failed in
    this run is left alone. Without it (facts rebuilt on their own) the whole day is rebuilt.
    Returns the number of fact rows written. Tenants that failed, or whose payload does not
    validate, are not touched, so their earlier facts stay (the views mark them stale).
    """
    payloads_by_tenant = warehouse.raw_payloads_for_facts(
        partner_tenant_id, snapshot_date, sync_id=sync_id
    )
    rows_by_tenant = {}
    for tenant_id, payloads in payloads_by_tenant.items():
        try:
            rows_by_tenant[tenant_id] = facts_for(
                tenant_id,
                payloads,
                catalog=catalog,
                partner_tenant_id=partner_tenant_id,
                snapshot_date=snapshot_date,
                synced_at=synced_at,
            ).rows
        except MalformedPayload as exc:
            log.warning("Facts of tenant %s not rebuilt: %s", tenant_id, exc)
    return warehouse.replace_license_facts(
        snapshot_date, rows_by_tenant, partner_tenant_id=partner_tenant_id
    )
