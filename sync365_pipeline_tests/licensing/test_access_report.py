"""The access wording, case by case: reachable how, why, and what to do (no servers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.access import CpvConsent
from sync365_pipeline.licensing.access_report import (
    ADD_ROLE_FIX,
    ENABLE_CONSENT_FIX,
    EXTEND_FIX,
    REGRANT_FIX,
    RENEW_FIX,
    CustomerAccess,
    Reach,
    access_report,
    audit_gdap_access,
)
from sync365_pipeline.licensing.notify import REMEDIES
from sync365_pipeline.microsoft.errors import ConsentFailed
from sync365_pipeline_tests.access_seed import DIRECTORY_READERS, EXCHANGE_ADMIN
from sync365_pipeline_tests.samples import CONTOSO, PARTNER

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REACHED = CustomerAccess(
    PARTNER,
    CONTOSO,
    "Contoso",
    cpv_consent=CpvConsent.NOT_NEEDED,
    checked_at=datetime(2026, 12, 1, 5, 0),
    gdap_roles=(DIRECTORY_READERS,),
    can_read_licenses=True,
    gdap_end_date=datetime(2027, 6, 1),
    auto_extend=False,
    status=TenantStatus.OK,
    facts_source="graph",
    facts_from_latest_attempt=True,
)


def report(**changes: object) -> tuple[Reach, str, str, bool]:
    shown = access_report(replace(REACHED, **changes), NOW)  # type: ignore[arg-type]
    return shown.reach, shown.why, shown.fix, shown.at_risk


def test_reached_via_graph_with_nothing_to_say() -> None:
    assert report() == (Reach.GRAPH, "", "", False)


def test_consent_granted_by_the_sync_is_a_note_with_its_date() -> None:
    assert report(cpv_consent=CpvConsent.GRANTED) == (
        Reach.GRAPH,
        "app consent granted automatically on 2026-12-01",
        "",
        False,
    )


@pytest.mark.parametrize(
    ("consent", "why", "fix"),
    [
        (CpvConsent.FAILED, "no app consent: granting it failed", ConsentFailed.remedy),
        (CpvConsent.DISABLED, "no app consent (auto-consent is off)", ENABLE_CONSENT_FIX),
        (
            CpvConsent.ALREADY_GRANTED,
            "app consented in Partner Center, yet the tenant refuses it",
            REGRANT_FIX,
        ),
    ],
)
def test_missing_consent_explains_the_status_it_caused(
    consent: CpvConsent, why: str, fix: str
) -> None:
    assert report(
        cpv_consent=consent, status=TenantStatus.CONSENT_REVOKED, error_code="AADSTS90099"
    ) == (Reach.NONE, why, fix, True)


def test_consent_that_exists_is_no_finding_once_the_tenant_reads() -> None:
    assert report(cpv_consent=CpvConsent.ALREADY_GRANTED) == (Reach.GRAPH, "", "", False)


def test_enabling_auto_consent_is_the_fix_when_it_was_off() -> None:
    assert "SYNC365_AUTO_CONSENT=true" in ENABLE_CONSENT_FIX


def test_no_licence_reading_role_names_the_roles_it_has() -> None:
    assert report(
        gdap_roles=(EXCHANGE_ADMIN, "dd4db9a0-cc4a-4213-9f9f-70242232d97e"),
        can_read_licenses=False,
        status=TenantStatus.ACCESS_REMOVED,
    ) == (
        Reach.NONE,
        "no licence-reading GDAP role (has Exchange Administrator, "
        "dd4db9a0-cc4a-4213-9f9f-70242232d97e)",
        ADD_ROLE_FIX,
        True,
    )
    assert "cannot grant roles" in ADD_ROLE_FIX


def test_no_active_role_at_all() -> None:
    assert report(gdap_roles=(), can_read_licenses=False)[1] == (
        "no licence-reading GDAP role (has no active role)"
    )


def test_gdap_ending_soon_without_auto_extend_is_a_risk_while_still_reachable() -> None:
    assert report(gdap_end_date=datetime(2026, 12, 10, 13, 0)) == (
        Reach.GRAPH,
        "GDAP ends in 9 days (2026-12-10) without auto-extend",
        EXTEND_FIX,
        True,
    )


def test_gdap_ending_soon_that_extends_itself_is_fine() -> None:
    assert report(gdap_end_date=datetime(2026, 12, 10), auto_extend=True)[1:] == ("", "", False)


def test_gdap_ended_needs_a_new_relationship() -> None:
    assert report(gdap_end_date=datetime(2026, 11, 19), status=TenantStatus.ACCESS_REMOVED) == (
        Reach.NONE,
        "GDAP ended on 2026-11-19",
        RENEW_FIX,
        True,
    )


def test_partner_center_fallback_says_why_graph_failed() -> None:
    reach, why, fix, _ = report(
        status=TenantStatus.ACCESS_REMOVED,
        error_code="Authorization_RequestDenied",
        facts_source="partner_center",
    )
    assert reach is Reach.PARTNER_CENTER
    assert why == "last sync: access_removed (Authorization_RequestDenied)"
    assert fix == REMEDIES[TenantStatus.ACCESS_REMOVED]


def test_old_fallback_facts_do_not_make_a_customer_reachable() -> None:
    assert report(
        status=TenantStatus.THROTTLED,
        facts_source="partner_center",
        facts_from_latest_attempt=False,
    ) == (
        Reach.NONE,
        "last sync: throttled",
        "Microsoft throttled the tenant: the next sync retries it.",
        True,
    )


def test_several_reasons_are_all_given_in_order() -> None:
    _, why, fix, _ = report(
        cpv_consent=CpvConsent.DISABLED,
        can_read_licenses=False,
        gdap_roles=(EXCHANGE_ADMIN,),
        status=TenantStatus.CONSENT_REVOKED,
    )
    assert why == (
        "no app consent (auto-consent is off); "
        "no licence-reading GDAP role (has Exchange Administrator)"
    )
    assert fix == f"{ENABLE_CONSENT_FIX} {ADD_ROLE_FIX}"


def test_never_synced() -> None:
    assert report(status=None, facts_source=None)[:2] == (Reach.NONE, "not synced yet")


def relationship(tenant: str, status: str, end: datetime, extend: str, rid: str) -> dict[str, Any]:
    return {
        "id": rid,
        "status": status,
        "endDateTime": end.isoformat(),
        "autoExtendDuration": extend,
        "customer": {"tenantId": tenant, "displayName": f"Customer {tenant[:4]}"},
    }


def test_live_audit_asks_each_active_relationship_once_and_unions_its_roles() -> None:
    asked: list[str] = []
    other = "45c44870-ef77-4fdd-b6fe-3dacb075cff2"
    assignments = {
        "r1": [
            {
                "status": "active",
                "accessDetails": {"unifiedRoles": [{"roleDefinitionId": EXCHANGE_ADMIN}]},
            }
        ],
        "r2": [
            {
                "status": "deleted",
                "accessDetails": {"unifiedRoles": [{"roleDefinitionId": DIRECTORY_READERS}]},
            }
        ],
    }

    def assignments_of(rid: str) -> list[dict[str, Any]]:
        asked.append(rid)
        return assignments[rid]

    audited = audit_gdap_access(
        PARTNER,
        [
            relationship(CONTOSO, "active", NOW + timedelta(days=9), "PT0S", "r1"),
            relationship(CONTOSO, "active", NOW + timedelta(days=8), "P180D", "r2"),
            relationship(other, "expired", NOW - timedelta(days=12), "P180D", "r3"),
        ],
        assignments_of,
    )

    assert sorted(asked) == ["r1", "r2"]
    by_tenant = {access.tenant_id: access for access in audited}
    contoso = by_tenant[CONTOSO]
    assert (contoso.gdap_roles, contoso.can_read_licenses, contoso.auto_extend) == (
        (EXCHANGE_ADMIN,),
        False,
        False,
    )
    ended = by_tenant[other]
    assert (ended.gdap_roles, ended.can_read_licenses) == (None, None)
    assert access_report(ended, NOW).why == f"GDAP ended on {NOW - timedelta(days=12):%Y-%m-%d}"
