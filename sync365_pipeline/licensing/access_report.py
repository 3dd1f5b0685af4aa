"""What people are told about each customer's access: reachable or not, why, and what to do.

The one place for this wording: `sync365 status`, `sync365 doctor` and the `customers` asset's
metadata all explain a customer through `access_report` (or `access_findings`), whether the facts
come from the last sync's `customer_access` rows or from doctor's live look at GDAP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pandas as pd

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.access import (
    LICENSE_READING_ROLES,
    CpvConsent,
    can_read_licenses,
    granted_roles,
)
from sync365_pipeline.licensing.normalize import customers_frame
from sync365_pipeline.licensing.notify import GENERIC_REMEDY, REMEDIES
from sync365_pipeline.microsoft.errors import ConsentFailed

GDAP_WARN_WITHIN = timedelta(days=30)
AUDIT_WORKERS = 4  # doctor's concurrent accessAssignments calls: a small pool

# Names of the built-in roles a GDAP relationship commonly grants (microsoft-apis-more.md §5.3),
# so a customer without a licence-reading role is told which roles it has.
ROLE_NAMES: Mapping[str, str] = {
    **LICENSE_READING_ROLES,
    "4a5d8f65-41da-4de4-8968-e035b65339cf": "Reports Reader",
    "5d6b6bb7-de71-4623-b4af-96380a352509": "Security Reader",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
    "75934031-6c7e-415a-99d7-48dbd49e875e": "Usage Summary Reports Reader",
    "9360feb5-f418-4baa-8175-e2a00bac4301": "Directory Writers",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f023fd81-a637-4b56-95fd-791ac0226033": "Service Support Administrator",
    "44367163-eba1-44c3-98af-f5787879f96a": "Dynamics 365 Administrator",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
}

ADD_ROLE_FIX = (
    "Add Directory Readers or Global Reader to the relationship's access assignment in Partner "
    "Center (Customers > Admin relationships); the pipeline cannot grant roles."
)
EXTEND_FIX = (
    "Extend the relationship or turn on auto-extend in Partner Center (Customers > Admin "
    "relationships); after its end the sync loses the customer."
)
RENEW_FIX = (
    "Request a new GDAP relationship in Partner Center and have the customer approve it; an "
    "ended relationship cannot be extended."
)
REGRANT_FIX = (
    "Remove and grant the app's consent again in Partner Center, or ask the customer's Global "
    "Administrator whether they removed the app or a policy blocks it; the sync cannot tell which."
)
ENABLE_CONSENT_FIX = (
    "Set SYNC365_AUTO_CONSENT=true (auto_consent in the accounts file) and sync again, or grant "
    "the consent by hand: Partner Center's applicationconsents, or the customer's Global "
    "Administrator consents to the app."
)
# Statuses that are not access a human must restore have their own advice.
STATUS_FIXES: Mapping[str, str] = {
    **REMEDIES,
    TenantStatus.THROTTLED: "Microsoft throttled the tenant: the next sync retries it.",
    TenantStatus.ERROR: "Microsoft failed for a while: the next sync retries it.",
    TenantStatus.TENANT_GONE: (
        "The tenant was deleted or left the partner: nothing to do unless it comes back."
    ),
}


class Reach(StrEnum):
    """How the last sync reached a customer's licence counts."""

    GRAPH = "via Graph"
    PARTNER_CENTER = "via Partner Center fallback"
    NONE = "not reachable"

    @property
    def label(self) -> str:
        """A short form for tables."""
        return {"via Graph": "yes, Graph", "via Partner Center fallback": "yes, fallback"}.get(
            self.value, "NO"
        )


@dataclass(frozen=True)
class CustomerAccess:
    """What is known of one customer's access: the columns of
    `Warehouse.latest_customer_access()`, or doctor's live audit (no sync fields there)."""

    partner_tenant_id: str
    tenant_id: str
    customer: str
    cpv_consent: CpvConsent | None = None
    checked_at: datetime | None = None
    gdap_roles: tuple[str, ...] | None = None  # None: not audited (no active GDAP relationship)
    can_read_licenses: bool | None = None
    gdap_end_date: datetime | None = None  # naive UTC, as the warehouse keeps it
    auto_extend: bool | None = None
    message: str | None = None
    status: TenantStatus | None = None
    error_code: str | None = None
    facts_source: str | None = None  # 'graph' or 'partner_center': its latest snapshot's facts
    facts_from_latest_attempt: bool = False

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CustomerAccess:
        """One row of `latest_customer_access()` (pandas gives NaN/NaT for NULL)."""

        def value(name: str) -> Any:
            item = record.get(name)
            return None if pd.api.types.is_scalar(item) and _is_null(item) else item

        roles = value("gdap_roles")
        end = value("gdap_end_date")
        checked = value("checked_at")
        return cls(
            partner_tenant_id=record["partner_tenant_id"],
            tenant_id=record["tenant_id"],
            customer=value("customer") or record["tenant_id"],
            cpv_consent=CpvConsent(c) if (c := value("cpv_consent")) else None,
            checked_at=pd.Timestamp(checked).to_pydatetime() if checked is not None else None,
            gdap_roles=tuple(roles) if roles is not None else None,
            can_read_licenses=_optional_bool(value("can_read_licenses")),
            gdap_end_date=pd.Timestamp(end).to_pydatetime() if end is not None else None,
            auto_extend=_optional_bool(value("auto_extend")),
            message=value("message"),
            status=TenantStatus(s) if (s := value("status")) else None,
            error_code=value("error_code"),
            facts_source=value("facts_source"),
            facts_from_latest_attempt=bool(value("facts_from_latest_attempt")),
        )

    @property
    def reach(self) -> Reach:
        if self.facts_source == "partner_center" and self.facts_from_latest_attempt:
            return Reach.PARTNER_CENTER
        return Reach.GRAPH if self.status == TenantStatus.OK else Reach.NONE


@dataclass(frozen=True)
class Finding:
    """One thing to say about a customer's access; `problem` False for a plain note."""

    why: str
    fix: str = ""
    problem: bool = True


@dataclass(frozen=True)
class AccessReport:
    customer: str
    tenant_id: str
    partner_tenant_id: str
    reach: Reach
    why: str
    fix: str
    at_risk: bool  # reachable now, but a finding says it will not stay so

    @property
    def attention(self) -> int:
        """Sort key: not reachable first, then at risk, then fine."""
        return 0 if self.reach is Reach.NONE else 1 if self.at_risk else 2


def access_findings(access: CustomerAccess, now: datetime) -> list[Finding]:
    """Every reason to mention, most fundamental first: consent, roles, end of GDAP, and the last
    sync's status when nothing above explains it."""
    findings = [*_consent(access), *_roles(access), *_end(access, now)]
    status = access.status
    if status is not None and status != TenantStatus.OK and not any(f.problem for f in findings):
        code = f" ({access.error_code})" if access.error_code else ""
        findings.append(
            Finding(f"last sync: {status}{code}", STATUS_FIXES.get(status, GENERIC_REMEDY))
        )
    return findings


def access_report(access: CustomerAccess, now: datetime) -> AccessReport:
    """Reachable (via Graph / via Partner Center fallback / not), why, and what to do."""
    findings = access_findings(access, now)
    why = "; ".join(finding.why for finding in findings)
    if not why and access.reach is Reach.NONE and access.status is None:
        why = "not synced yet"
    return AccessReport(
        customer=access.customer,
        tenant_id=access.tenant_id,
        partner_tenant_id=access.partner_tenant_id,
        reach=access.reach,
        why=why,
        fix=" ".join(finding.fix for finding in findings if finding.fix),
        at_risk=any(finding.problem for finding in findings),
    )


def access_reports(frame: pd.DataFrame, now: datetime) -> list[AccessReport]:
    """The reports of `latest_customer_access()`'s rows, failing and at-risk customers first."""
    reports = [
        access_report(CustomerAccess.from_record(record), now)
        for record in frame.to_dict("records")
    ]
    return sorted(reports, key=lambda r: (r.attention, r.customer.lower(), r.tenant_id))


def reach_tally(reports: Iterable[AccessReport]) -> Counter[Reach]:
    return Counter(report.reach for report in reports)


def reach_counts(reports: Iterable[AccessReport]) -> str:
    """'N reachable via Graph, M via Partner Center fallback, K not reachable'."""
    counts = reach_tally(reports)
    return (
        f"{counts[Reach.GRAPH]} reachable via Graph, {counts[Reach.PARTNER_CENTER]} via Partner "
        f"Center fallback, {counts[Reach.NONE]} not reachable"
    )


def access_table(reports: Iterable[AccessReport]) -> pd.DataFrame:
    """customer, reachable, why, fix: one row per report, for tables (Dagster's metadata)."""
    return pd.DataFrame(
        [(r.customer, r.reach.label, r.why, r.fix) for r in reports],
        columns=["customer", "reachable", "why", "fix"],
    )


def role_names(roles: Iterable[str]) -> str:
    names = sorted(ROLE_NAMES.get(role, role) for role in roles)
    return ", ".join(names) if names else "no active role"


def _consent(access: CustomerAccess) -> list[Finding]:
    if access.cpv_consent is CpvConsent.GRANTED:
        when = f" on {access.checked_at:%Y-%m-%d}" if access.checked_at else ""
        return [Finding(f"app consent granted automatically{when}", problem=False)]
    if access.cpv_consent is CpvConsent.FAILED:
        return [Finding("no app consent: granting it failed", ConsentFailed.remedy)]
    if access.cpv_consent is CpvConsent.DISABLED:
        return [Finding("no app consent (auto-consent is off)", ENABLE_CONSENT_FIX)]
    if (
        access.cpv_consent is CpvConsent.ALREADY_GRANTED
        and access.status is TenantStatus.CONSENT_REVOKED
    ):
        return [Finding("app consented in Partner Center, yet the tenant refuses it", REGRANT_FIX)]
    return []


def _roles(access: CustomerAccess) -> list[Finding]:
    if access.can_read_licenses is not False:
        return []
    return [
        Finding(
            f"no licence-reading GDAP role (has {role_names(access.gdap_roles or ())})",
            ADD_ROLE_FIX,
        )
    ]


def _end(access: CustomerAccess, now: datetime) -> list[Finding]:
    end = access.gdap_end_date
    if end is None:
        return []
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    if end <= now:
        return [Finding(f"GDAP ended on {end:%Y-%m-%d}", RENEW_FIX)]
    if end - now > GDAP_WARN_WITHIN or access.auto_extend:
        return []
    days = round((end - now) / timedelta(days=1))
    unextended = " without auto-extend" if access.auto_extend is False else ""
    return [Finding(f"GDAP ends in {days} days ({end:%Y-%m-%d}){unextended}", EXTEND_FIX)]


def audit_gdap_access(
    partner_tenant_id: str,
    relationships: Sequence[Mapping[str, Any]],
    assignments: Callable[[str], list[dict[str, Any]]],
) -> list[CustomerAccess]:
    """Each GDAP customer's access as Graph shows it now (reference §5.4): the roles its active
    relationships' active access assignments grant, and its relationship's end and auto-extend,
    read as discovery reads them. `assignments` is called once per active relationship, a few
    at a time."""
    customers = customers_frame(partner_tenant_id, [], relationships, []).frame
    active_ids = sorted({rid for ids in customers["gdap_relationship_ids"].dropna() for rid in ids})
    with ThreadPoolExecutor(AUDIT_WORKERS, thread_name_prefix="gdap-audit") as pool:
        granted = dict(zip(active_ids, pool.map(assignments, active_ids), strict=True))
    audited = []
    for row in customers.to_dict("records"):
        ids = row["gdap_relationship_ids"]
        roles = (
            tuple(sorted({r for rid in ids for r in granted_roles(granted[rid])}))
            if ids is not None
            else None
        )
        end = row["gdap_end_date"]
        audited.append(
            CustomerAccess(
                partner_tenant_id=partner_tenant_id,
                tenant_id=row["tenant_id"],
                customer=row["display_name"] or row["tenant_id"],
                gdap_roles=roles,
                can_read_licenses=can_read_licenses(roles) if roles is not None else None,
                gdap_end_date=None if _is_null(end) else pd.Timestamp(end).to_pydatetime(),
                auto_extend=_optional_bool(row["gdap_auto_extend"]),
            )
        )
    return audited


def _is_null(value: Any) -> bool:
    return value is None or bool(pd.isna(value))


def _optional_bool(value: Any) -> bool | None:
    return None if _is_null(value) else bool(value)
