"""The per-tenant datasets beside the SKUs (`warehouse.columns.DATASETS`), staged: each tenant's
subscriptions of both kinds and its user licences normalized once, a slice per dataset that
validated, and a status row per dataset attempted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.normalize import MalformedPayload
from sync365_pipeline.licensing.subscriptions import (
    commerce_skus,
    partner_subscription_rows,
    tenant_subscription_rows,
)
from sync365_pipeline.licensing.tenants import DatasetFetch, TenantFetch
from sync365_pipeline.licensing.users import user_license_rows
from sync365_pipeline.warehouse.columns import (
    DATASETS,
    PARTNER_SUBSCRIPTIONS,
    TENANT_SUBSCRIPTIONS,
    USERS,
)
from sync365_pipeline.warehouse.rows import (
    DatasetSlice,
    DatasetStatusRow,
    UserDeltaLink,
    UserDeltaSlice,
)


@dataclass
class StagedDatasets:
    """One pass over fetched tenants: each dataset's rows of the tenants whose fetch validated
    ({table: rows}), a slice per such (tenant, dataset) even when empty, and a status row per
    tenant and dataset attempted; for user licences read by delta, the slices it makes and the
    changed users' rows instead, and the delta links to keep."""

    rows: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {dataset: [] for dataset in DATASETS}
    )
    slices: list[DatasetSlice] = field(default_factory=list)
    statuses: list[DatasetStatusRow] = field(default_factory=list)
    user_deltas: list[UserDeltaSlice] = field(default_factory=list)
    user_delta_rows: list[tuple[Any, ...]] = field(default_factory=list)
    user_links: list[UserDeltaLink] = field(default_factory=list)

    def add_users(
        self, outcome: DatasetFetch, piece: DatasetSlice, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """One tenant's validated user licences: a slice of their own, or the changed users'
        rows of a delta round and the slice it makes; and the delta link to keep, if any."""
        read = outcome.users
        if read is None or read.named_users is None:
            self.rows[USERS].extend(rows)
            self.slices.append(piece)
        else:
            self.user_delta_rows.extend(rows)
            self.user_deltas.append(
                UserDeltaSlice(
                    piece.snapshot_date, piece.partner_tenant_id, piece.tenant_id, read.named_users
                )
            )
        if read is not None and read.delta_link is not None:
            self.user_links.append(
                UserDeltaLink(
                    piece.partner_tenant_id,
                    piece.tenant_id,
                    read.delta_link,
                    obtained_at=read.obtained_at,
                    full_read_at=read.full_read_at,
                )
            )


def stage_datasets(
    fetches: Iterable[TenantFetch],
    *,
    catalog: SkuCatalog,
    partner_tenant_id: str,
    snapshot_date: date,
    sync_id: str,
) -> StagedDatasets:
    """Normalize each tenant's datasets (subscriptions of both kinds, user licences) once. A
    dataset that failed, or whose list does not validate, writes no slice (its last good one
    stays) and says why in its status; one with bad records lands the rest, code SkippedRecords
    (unless the fetch set a code of its own, e.g. SignInActivityUnavailable)."""
    staged = StagedDatasets()
    for fetched in fetches:
        graph = fetched.datasets.get(TENANT_SUBSCRIPTIONS)
        sku_by_commerce_id = commerce_skus(graph.payload if graph else None)
        for dataset, outcome in sorted(fetched.datasets.items()):
            status, code, message = outcome.status, outcome.error_code, outcome.message
            if outcome.payload is not None:
                where = {
                    "partner_tenant_id": partner_tenant_id,
                    "tenant_id": fetched.tenant_id,
                    "snapshot_date": snapshot_date,
                    "synced_at": outcome.checked_at,
                }
                try:
                    if dataset == PARTNER_SUBSCRIPTIONS:
                        normalized = partner_subscription_rows(
                            outcome.payload,
                            **where,
                            sku_by_commerce_id=sku_by_commerce_id,
                            catalog=catalog,
                        )
                    elif dataset == TENANT_SUBSCRIPTIONS:
                        normalized = tenant_subscription_rows(outcome.payload, **where)
                    else:
                        normalized = user_license_rows(outcome.payload, **where)
                except MalformedPayload as exc:
                    status, code, message = TenantStatus.ERROR, "MalformedPayload", str(exc)
                else:
                    piece = DatasetSlice(
                        snapshot_date=snapshot_date,
                        partner_tenant_id=partner_tenant_id.lower(),
                        tenant_id=fetched.tenant_id.lower(),
                        dataset=dataset,
                        row_count=len(normalized.rows),
                    )
                    if dataset == USERS:
                        staged.add_users(outcome, piece, normalized.rows)
                    else:
                        staged.rows[dataset].extend(normalized.rows)
                        staged.slices.append(piece)
                    if normalized.skipped:  # a code the fetch set (e.g. no sign-ins) stays
                        code = code or "SkippedRecords"
                        reasons = (record.reason for record in normalized.skipped)
                        message = " ".join((message, *reasons)).strip()
            staged.statuses.append(
                DatasetStatusRow(
                    partner_tenant_id=partner_tenant_id,
                    tenant_id=fetched.tenant_id,
                    dataset=dataset,
                    checked_at=outcome.checked_at,
                    status=status,
                    error_code=code,
                    message=message,
                    sync_id=sync_id,
                )
            )
    return staged
