"""Which flags to raise and clear, as plain data, and the one evaluation that applies them.

Three kinds, each raised once and kept open, without repeats, until what it is about is fixed:
- `access_lost`: a tenant entered an access-loss status (cleared when it is `ok` again), or the
  partner's own sign-in stopped working (a flag with no tenant);
- `gdap_expiring`: a customer's GDAP relationship ends within `EXPIRY_NOTICE`, or has ended, and
  does not extend itself (cleared when renewed or extended, or when the customer departs);
- `client_secret_expiring`: the app's client secret in use ends within `EXPIRY_NOTICE`, or has
  ended (a partner-level flag, cleared when a secret that ends later is in use).

`evaluate_flags` is what `sync365 sync` (after each run) and the consent sensor both call: what
one of them applied, the other finds unchanged, so nothing is raised or announced twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import pandas as pd

from sync365_pipeline.core.clock import utc_naive
from sync365_pipeline.core.status import ACCESS_LOSS_STATUSES, TenantStatus
from sync365_pipeline.warehouse import ConsentFlag, CustomerNames, FlagKey, FlagKind, Warehouse

# Partner-level outcomes that are not a loss of consent: ok, and faults the next run retries.
NOT_ACCESS_LOSS = frozenset({TenantStatus.OK, TenantStatus.ERROR, TenantStatus.THROTTLED})
EXPIRY_NOTICE = timedelta(days=30)


@dataclass(frozen=True)
class FlagChanges:
    """Flags raised and cleared; `names` maps (partner, tenant) to the customer's name and
    `partner_names` a partner's tenant id to its account's name, where known, for the people
    reading about them."""

    raised: list[ConsentFlag]
    cleared: list[FlagKey]
    names: CustomerNames = field(default_factory=CustomerNames)
    partner_names: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.raised or self.cleared)

    def name_of(self, partner_tenant_id: str, tenant_id: str | None) -> str | None:
        return None if tenant_id is None else self.names.get((partner_tenant_id, tenant_id))

    def partner_name_of(self, partner_tenant_id: str) -> str | None:
        return self.partner_names.get(partner_tenant_id)


class Notifier(Protocol):
    """Announces applied changes (the webhook); never raises."""

    def notify(self, changes: FlagChanges) -> bool: ...


def evaluate_flags(
    warehouse: Warehouse,
    now: datetime,
    notifier: Notifier | None,
    partner_names: Mapping[str, str] | None = None,
) -> FlagChanges:
    """Compute every kind of flag from the warehouse, apply the changes in one transaction and
    announce what actually changed, each partner by its account's name in `partner_names`
    (partner tenant id: name) where given; returns that (empty when nothing did).

    The analyst copy is republished after a change, so analysts and `sync365 status` see flags
    at once.
    """
    open_flags = warehouse.open_consent_flags()
    parts = (
        consent_changes(
            warehouse.latest_tenant_statuses(),
            warehouse.latest_partner_statuses(),
            open_flags,
            now,
            active_customers=warehouse.active_customers(),
        ),
        gdap_expiry_changes(warehouse.gdap_ends(), open_flags, now),
        client_secret_changes(warehouse.latest_app_credentials(), open_flags, now),
    )
    names = warehouse.customer_names()  # read first: once applied, nothing may stop the post
    raised, cleared = warehouse.apply_consent_changes(
        [flag for part in parts for flag in part.raised],
        [key for part in parts for key in part.cleared],
        now,
    )
    applied = FlagChanges(raised, cleared, names, partner_names or {})
    if applied:
        if notifier is not None:
            notifier.notify(applied)
        warehouse.publish_analyst_copy()
    return applied


def consent_changes(
    tenant_statuses: pd.DataFrame,
    partner_statuses: pd.DataFrame,
    open_flags: Iterable[ConsentFlag],
    now: datetime,
    *,
    active_customers: set[tuple[str, str]],
) -> FlagChanges:
    """The `access_lost` changes: each tenant's and partner's latest status against the flags
    already open.

    `tenant_statuses` and `partner_statuses` hold the latest row per tenant / partner (columns
    partner_tenant_id, [tenant_id,] status, error_code, message). A customer that departed
    (its (partner, tenant) pair not in `active_customers`) is no longer synced, so its flag is
    cleared rather than left open for ever, and it raises none; the same tenant still reached
    through another partner is another customer, with flags of its own.
    """
    open_flags = _of_kind(open_flags, "access_lost")
    already_open = {flag.key for flag in open_flags}
    raised: list[ConsentFlag] = []
    cleared: list[FlagKey] = [
        flag.key
        for flag in open_flags
        if flag.tenant_id is not None
        and (flag.partner_tenant_id, flag.tenant_id) not in active_customers
    ]

    def consider(flag: ConsentFlag, lost: bool, restored: bool) -> None:
        if lost and flag.key not in already_open:
            raised.append(flag)
        elif restored and flag.key in already_open:
            cleared.append(flag.key)

    for row in tenant_statuses.itertuples():
        if (row.partner_tenant_id, row.tenant_id) not in active_customers:
            continue
        consider(
            _access_flag(row, row.tenant_id, now),
            lost=row.status in ACCESS_LOSS_STATUSES,
            restored=row.status == TenantStatus.OK,
        )
    for row in partner_statuses.itertuples():
        consider(
            _access_flag(row, None, now),
            lost=row.status not in NOT_ACCESS_LOSS,
            restored=row.status == TenantStatus.OK,
        )
    return FlagChanges(raised=raised, cleared=cleared)


def gdap_expiry_changes(
    gdap_ends: pd.DataFrame, open_flags: Iterable[ConsentFlag], now: datetime
) -> FlagChanges:
    """The `gdap_expiring` changes. `gdap_ends` holds the active customers whose chosen GDAP
    relationship has an end (partner_tenant_id, tenant_id, gdap_end_date, gdap_auto_extend).

    One that ends within `EXPIRY_NOTICE` and does not auto-extend, or that has ended (it did
    not extend), is due; an open flag of a customer no longer due (renewed, extended, departed,
    no relationship left) is cleared.
    """
    due = []
    for row in gdap_ends.itertuples():
        end = pd.Timestamp(row.gdap_end_date).to_pydatetime()
        auto_extends = pd.notna(row.gdap_auto_extend) and bool(row.gdap_auto_extend)
        if _ends_within_notice(end, now) and (_has_ended(end, now) or not auto_extends):
            how = "did not extend itself" if _has_ended(end, now) else "does not extend itself"
            message = f"The GDAP relationship {_ending(end, now)} and {how}."
            due.append(
                _expiry_flag(
                    row.partner_tenant_id, row.tenant_id, "gdap_expiring", end, now, message
                )
            )
    return _expiry_changes(due, open_flags, "gdap_expiring", settled=None)


def client_secret_changes(
    latest_credentials: pd.DataFrame, open_flags: Iterable[ConsentFlag], now: datetime
) -> FlagChanges:
    """The `client_secret_expiring` changes, from each partner's latest check of its app's
    secrets (`latest_app_credentials`).

    The secret in use is the one whose hint is the configured secret's (of several with that
    hint, the one that ends last). A partner whose check could not tell (unreadable, or no
    secret with that hint) neither raises nor clears: what is unknown is not news.
    """
    due = []
    known = set()
    in_use = latest_credentials[latest_credentials["in_use"].fillna(False).astype(bool)]
    for partner, secrets in in_use.groupby("partner_tenant_id", sort=True):
        known.add(partner)
        latest = secrets.sort_values("end_date", na_position="last").iloc[-1]
        if pd.isna(latest["end_date"]):
            continue  # a secret without an end never expires
        end = pd.Timestamp(latest["end_date"]).to_pydatetime()
        if _ends_within_notice(end, now):
            name = f'"{latest["display_name"]}" ' if pd.notna(latest["display_name"]) else ""
            message = (
                f"The app's client secret in use ({name}key id {latest['key_id']}) "
                f"{_ending(end, now)}."
            )
            due.append(
                _expiry_flag(str(partner), None, "client_secret_expiring", end, now, message)
            )
    return _expiry_changes(due, open_flags, "client_secret_expiring", settled=known)


def _expiry_changes(
    due: list[ConsentFlag],
    open_flags: Iterable[ConsentFlag],
    kind: FlagKind,
    *,
    settled: set[str] | None,
) -> FlagChanges:
    """Raise what is due and not open; clear what is open and no longer due. `settled`: the
    partners whose state is known (None: all), the only ones whose flags may be cleared."""
    open_keys = {flag.key for flag in _of_kind(open_flags, kind)}
    due_keys = {flag.key for flag in due}
    return FlagChanges(
        raised=[flag for flag in due if flag.key not in open_keys],
        cleared=[
            key
            for key in sorted(open_keys - due_keys, key=str)
            if settled is None or key[0] in settled
        ],
    )


def _of_kind(flags: Iterable[ConsentFlag], kind: FlagKind) -> list[ConsentFlag]:
    return [flag for flag in flags if flag.kind == kind]


def _ends_within_notice(end: datetime, now: datetime) -> bool:
    return end <= utc_naive(now) + EXPIRY_NOTICE


def _has_ended(end: datetime, now: datetime) -> bool:
    return end <= utc_naive(now)


def _ending(end: datetime, now: datetime) -> str:
    """'ends on 2026-07-11 (in 9 days)' or 'ended on 2026-05-18 (45 days ago)'."""
    days = round((end - utc_naive(now)).total_seconds() / 86400)
    count = f"{abs(days)} day{'' if abs(days) == 1 else 's'}"
    if _has_ended(end, now):
        return f"ended on {end:%Y-%m-%d} ({count} ago)"
    return f"ends on {end:%Y-%m-%d} (in {count})"


def _expiry_flag(
    partner_tenant_id: str,
    tenant_id: str | None,
    kind: FlagKind,
    end: datetime,
    now: datetime,
    message: str,
) -> ConsentFlag:
    return ConsentFlag(
        partner_tenant_id=partner_tenant_id,
        tenant_id=tenant_id,
        status="expired" if _has_ended(end, now) else "expiring",
        raised_at=now,
        message=message,
        kind=kind,
        ends_at=end,
    )


def _access_flag(row: object, tenant_id: str | None, now: datetime) -> ConsentFlag:
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
