"""Nothing reads as fresh that was not written: the stale rule against a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.warehouse import RawPayload, TenantStatusRow, Warehouse
from sync365_pipeline_tests.samples import CONTOSO, FABRIKAM, PARTNER, SPB, facts


def stale_by_tenant(warehouse: Warehouse) -> dict[str, bool]:
    frame = warehouse.tenant_health().set_index("tenant_id")
    return {tenant: bool(stale) for tenant, stale in frame["is_stale"].items()}


def ok(tenant: str, at: datetime) -> TenantStatusRow:
    return TenantStatusRow(PARTNER, tenant, at, TenantStatus.OK)


def test_an_ok_attempt_whose_facts_were_never_written_is_stale(warehouse: Warehouse) -> None:
    today = datetime.now(UTC).date()
    fetched_at = datetime.now(UTC) - timedelta(minutes=1)
    warehouse.record_tenant_statuses([ok(CONTOSO, fetched_at), ok(FABRIKAM, fetched_at)])
    warehouse.replace_license_facts(
        today,
        {CONTOSO: facts(CONTOSO, today, {SPB: (5, 3)}), FABRIKAM: facts(FABRIKAM, today, {})},
        partner_tenant_id=PARTNER,
    )
    assert stale_by_tenant(warehouse) == {CONTOSO: False, FABRIKAM: False}

    # The next sync fetched both and recorded `ok`, then its facts step failed: nothing new was
    # written, so neither tenant's facts may read as fresh.
    warehouse.record_tenant_statuses(
        [ok(CONTOSO, datetime.now(UTC) + timedelta(minutes=1)), ok(FABRIKAM, fetched_at)]
    )
    assert stale_by_tenant(warehouse) == {CONTOSO: True, FABRIKAM: False}


def test_facts_from_partner_center_in_the_attempt_graph_failed_are_fresh(
    warehouse: Warehouse,
) -> None:
    """Graph read Contoso in the morning; in the afternoon Graph failed and Partner Center
    answered: the afternoon's Partner Center payload (only) makes its facts, which are fresh.
    Fabrikam failed with no Partner Center answer: stale."""
    today = datetime.now(UTC).date()
    morning = datetime.now(UTC) - timedelta(hours=2)
    afternoon = datetime.now(UTC) - timedelta(minutes=1)
    refused = TenantStatus.ACCESS_REMOVED
    warehouse.save_raw_payloads(
        [
            RawPayload(today, PARTNER, CONTOSO, "graph", morning, [{"skuId": SPB}]),
            RawPayload(today, PARTNER, CONTOSO, "partner_center", afternoon, [{"id": "pc"}]),
            RawPayload(today, PARTNER, FABRIKAM, "partner_center", morning, [{"id": "names"}]),
        ]
    )
    warehouse.record_tenant_statuses(
        [ok(CONTOSO, morning), ok(FABRIKAM, morning)]
        + [TenantStatusRow(PARTNER, tenant, afternoon, refused) for tenant in (CONTOSO, FABRIKAM)]
    )

    assert warehouse.raw_payloads_for_facts(PARTNER, today) == {
        CONTOSO: {"partner_center": [{"id": "pc"}]}
    }, "not the morning's Graph payload, nor Fabrikam's names of an earlier attempt"

    warehouse.replace_license_facts(
        today,
        {CONTOSO: facts(CONTOSO, today, {SPB: (5, 3)}), FABRIKAM: facts(FABRIKAM, today, {})},
        partner_tenant_id=PARTNER,
    )
    assert stale_by_tenant(warehouse) == {CONTOSO: False, FABRIKAM: True}
    health = warehouse.tenant_health().set_index("tenant_id")
    assert health["facts_from_partner_center"].to_dict() == {CONTOSO: True, FABRIKAM: False}
    assert health["status"].to_dict() == {CONTOSO: "access_removed", FABRIKAM: "access_removed"}
