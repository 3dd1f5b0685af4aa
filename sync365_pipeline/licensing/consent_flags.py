"""Which customers (and partners) lost access, as plain data: the consent sensor's logic.

A flag is raised once when a tenant enters an access-loss status and stays open, without repeats,
until the tenant is seen `ok` again; then it is cleared. Partner-level loss of consent (the
refresh token or the app stopped working) is a flag with no tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from sync365_pipeline.core.status import ACCESS_LOSS_STATUSES, TenantStatus
from sync365_pipeline.warehouse import ConsentFlag

FlagKey = tuple[str, str | None]  # (partner_tenant_id, tenant_id or None for the partner itself)
# Partner-level outcomes that are not a loss of consent: ok, and faults the next run retries.
NOT_ACCESS_LOSS = frozenset({TenantStatus.OK, TenantStatus.ERROR, TenantStatus.THROTTLED})


@dataclass(frozen=True)
class ConsentChanges:
    raised: list[ConsentFlag]
    cleared: list[FlagKey]


def consent_changes(
    tenant_statuses: pd.DataFrame,
    partner_statuses: pd.DataFrame,
    open_flags: Iterable[ConsentFlag],
    now: datetime,
    *,
    active_customers: set[tuple[str, str]],
) -> ConsentChanges:
    """Compare each tenant's and partner's latest status with the flags already open.

    `tenant_statuses` and `partner_statuses` hold the latest row per tenant / partner (columns
    partner_tenant_id, [tenant_id,] status, error_code, message). A customer that departed
    (its (partner, tenant) pair not in `active_customers`) is no longer synced, so its flag is
    cleared rather than left open for ever, and it raises none; the same tenant still reached
    through another partner is another customer, with flags of its own.
    """
    open_flags = list(open_flags)
    already_open = {flag.key for flag in open_flags}
    raised: list[ConsentFlag] = []
    cleared: list[FlagKey] = []

    def consider(flag: ConsentFlag, lost: bool, restored: bool) -> None:
        if lost and flag.key not in already_open:
            raised.append(flag)
        elif restored and flag.key in already_open:
            cleared.append(flag.key)

    cleared.extend(
        flag.key
        for flag in open_flags
        if flag.tenant_id is not None and flag.key not in active_customers
    )
    for row in tenant_statuses.itertuples():
        if (row.partner_tenant_id, row.tenant_id) not in active_customers:
            continue
        consider(
            _flag(row, row.tenant_id, now),
            lost=row.status in ACCESS_LOSS_STATUSES,
            restored=row.status == TenantStatus.OK,
        )
    for row in partner_statuses.itertuples():
        consider(
            _flag(row, None, now),
            lost=row.status not in NOT_ACCESS_LOSS,
            restored=row.status == TenantStatus.OK,
        )
    return ConsentChanges(raised=raised, cleared=cleared)


def _flag(row: object, tenant_id: str | None, now: datetime) -> ConsentFlag:
    error_code = getattr(row, "error_code", None)
    message = getattr(row, "message", None)
    return ConsentFlag(
        partner_tenant_id=row.partner_tenant_id,  # type: ignore[attr-defined]
        tenant_id=tenant_id,
        status=row.status,  # type: ignore[attr-defined]
        raised_at=now,
        error_code=None if pd.isna(error_code) else error_code,
        message=None if pd.isna(message) else message,
    )
