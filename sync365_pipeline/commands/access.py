"""Customer access as people read it: `sync365 status`'s section fitted to the terminal, what a
sync landed, and how each partner reaches a customer the demo's partners share."""

from __future__ import annotations

import shutil
import textwrap
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.access import CpvConsent
from sync365_pipeline.licensing.access_report import (
    AccessReport,
    CustomerAccess,
    Reach,
    access_reports,
    reach_counts,
)
from sync365_pipeline.warehouse import Warehouse

REACH_WIDTH = 15  # "yes, fallback" and two spaces
MIN_WIDTH = 60


def terminal_width() -> int:
    return max(MIN_WIDTH, shutil.get_terminal_size().columns)


def access_section(warehouse: Warehouse, width: int) -> str:
    """Every active customer's access as the last sync saw it, failing and at-risk customers
    first, each line wrapped to `width`; then nothing, when no sync has audited access yet."""
    reports = access_reports(warehouse.latest_customer_access(), utcnow())
    if not reports:
        return "Customer access: not audited yet (the next sync records it)."
    lines = textwrap.wrap(f"Customer access (last sync): {reach_counts(reports)}.", width)
    lines += [line for report in reports for line in _customer_lines(report, width)]
    return "\n".join(lines)


def landed_section(warehouse: Warehouse) -> str:
    """How many customers this sync landed, and by name those reached only because it granted
    the app's consent, or through the Partner Center fallback; '' before any access audit."""
    accesses = [
        CustomerAccess.from_record(record)
        for record in warehouse.latest_customer_access().to_dict("records")
    ]
    if not accesses:
        return ""
    landed = [access for access in accesses if access.reach is not Reach.NONE]
    tally = Counter(access.reach for access in landed)
    lines = [
        f"{len(landed)} of {len(accesses)} customers landed ({tally[Reach.GRAPH]} via Graph, "
        f"{tally[Reach.PARTNER_CENTER]} via the Partner Center fallback)."
    ]
    consented = [a.customer for a in landed if a.cpv_consent is CpvConsent.GRANTED]
    fallback = [a.customer for a in landed if a.reach is Reach.PARTNER_CENTER]
    for what, names in (
        ("Reached once the sync granted the app's consent", consented),
        ("Reached through the Partner Center fallback", fallback),
    ):
        if names:
            lines.append(f"{what}: {', '.join(sorted(names))}.")
    return "\n".join(lines)


def shared_customers_section(warehouse: Warehouse, partner_names: Mapping[str, str]) -> str:
    """One line per customer that several partner accounts reach, saying how each of them
    reached it in the last sync, so one partner's loss is not hidden by another's success;
    '' when no customer is shared. Partners are named by `partner_names` (tenant id: name)."""
    by_tenant: dict[str, list[CustomerAccess]] = defaultdict(list)
    for record in warehouse.latest_customer_access().to_dict("records"):
        access = CustomerAccess.from_record(record)
        by_tenant[access.tenant_id].append(access)
    lines = []
    for accesses in by_tenant.values():
        if len(accesses) < 2:
            continue
        seen = "; ".join(
            f"{partner_names.get(a.partner_tenant_id, a.partner_tenant_id)}: {_reached(a)}"
            for a in sorted(accesses, key=lambda a: a.reach is Reach.NONE)
        )
        lines.append(f"Shared customer {accesses[0].customer}, per partner account: {seen}.")
    return "\n".join(sorted(lines))


def _reached(access: CustomerAccess) -> str:
    """'via Graph', or the reach with the last status when that is not ok."""
    if access.status in (None, TenantStatus.OK):
        return access.reach.value
    code = f", {access.error_code}" if access.error_code else ""
    return f"{access.reach.value} ({access.status}{code})"


def _customer_lines(report: AccessReport, width: int) -> Sequence[str]:
    """`  NO             Name: why` and, indented under it, `fix: ...`, each wrapped."""
    indent = " " * (2 + REACH_WIDTH)
    head = f"{report.customer}: {report.why}" if report.why else report.customer
    lines = textwrap.wrap(
        head,
        width,
        initial_indent=f"  {report.reach.label:<{REACH_WIDTH}}",
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
    )
    if report.fix:
        lines += textwrap.wrap(
            report.fix,
            width,
            initial_indent=f"{indent}fix: ",
            subsequent_indent=f"{indent}     ",
            break_on_hyphens=False,
        )
    return lines
