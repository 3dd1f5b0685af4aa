"""A customer is a (partner, tenant) pair: one tenant reached through two partner accounts (an MSP
merger) keeps two sets of facts, slices, statuses and health, on real DuckDB files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.normalize import customers_frame
from sync365_pipeline.warehouse import (
    CustomerAccessRow,
    RawPayload,
    TenantStatusRow,
    Warehouse,
    staged_files,
    write_stage,
)
from sync365_pipeline_tests.samples import (
    CONTOSO,
    DAY1,
    DAY2,
    E3,
    OTHER_PARTNER,
    PARTNER,
    SPB,
    facts,
)
from sync365_pipeline_tests.warehouse.test_warehouse import query

PARTNERS = (PARTNER, OTHER_PARTNER)
# Each partner sells Contoso something else, so a row that lands under the wrong one shows.
SKU_OF = {PARTNER: SPB, OTHER_PARTNER: E3}


def share_contoso(warehouse: Warehouse, at: datetime) -> None:
    """Both partners list Contoso as their customer."""
    for partner in PARTNERS:
        listing = customers_frame(partner, [], [], [{"customerId": CONTOSO}]).frame
        warehouse.upsert_customers(partner, listing, at)


def write_day(warehouse: Warehouse, day, units: dict[str, tuple[int, int]]) -> None:
    """Contoso's facts of `day` as each partner in `units` reaches it, {partner: (enabled,
    consumed)} of that partner's SKU."""
    for partner, counts in units.items():
        rows = facts(CONTOSO, day, {SKU_OF[partner]: counts}, partner=partner)
        warehouse.replace_license_facts(day, {CONTOSO: rows}, partner_tenant_id=partner)


def by_partner(frame: pd.DataFrame, column: str) -> dict[str, object]:
    return dict(zip(frame["partner_tenant_id"], frame[column], strict=True))


def test_two_partners_with_the_same_tenant_keep_both_rows_apart(warehouse: Warehouse) -> None:
    checked = datetime.now(UTC) - timedelta(minutes=10)
    share_contoso(warehouse, checked)
    warehouse.record_tenant_statuses(
        [TenantStatusRow(p, CONTOSO, checked, TenantStatus.OK) for p in PARTNERS]
    )
    write_day(warehouse, DAY1, {PARTNER: (10, 4), OTHER_PARTNER: (5, 1)})
    write_day(warehouse, DAY2, {PARTNER: (10, 4), OTHER_PARTNER: (5, 1)})

    stored = query(warehouse, "SELECT partner_tenant_id, sku_id, snapshot_date FROM license_facts")
    assert sorted(map(tuple, stored.astype(str).to_numpy())) == sorted(
        (partner, SKU_OF[partner], str(day)) for partner in PARTNERS for day in (DAY1, DAY2)
    )
    slices = query(warehouse, "SELECT partner_tenant_id, snapshot_date FROM license_snapshots")
    assert len(slices) == 4
    assert sorted(warehouse.latest_tenant_statuses()["partner_tenant_id"]) == sorted(PARTNERS)
    health = warehouse.tenant_health()
    assert by_partner(health, "status") == {PARTNER: "ok", OTHER_PARTNER: "ok"}
    assert by_partner(health, "is_stale") == {PARTNER: False, OTHER_PARTNER: False}
    freshness = query(warehouse, "SELECT * FROM tenant_freshness")
    assert by_partner(freshness, "facts_as_of") == {
        PARTNER: pd.Timestamp(DAY2),
        OTHER_PARTNER: pd.Timestamp(DAY2),
    }
    current = query(warehouse, "SELECT * FROM current_license_facts")
    assert by_partner(current, "sku_id") == SKU_OF
    assert by_partner(current, "enabled_units") == {PARTNER: 10, OTHER_PARTNER: 5}
    unused = query(warehouse, "SELECT * FROM unused_licenses")
    assert by_partner(unused, "unused_units") == {PARTNER: 6, OTHER_PARTNER: 4}
    per_customer = warehouse.licenses_per_customer()
    assert by_partner(per_customer, "enabled_units") == {PARTNER: 10, OTHER_PARTNER: 5}
    assert query(warehouse, "SELECT * FROM license_changes").empty, "neither partner's changed"

    write_day(warehouse, DAY2, {OTHER_PARTNER: (6, 1)})
    changes = query(warehouse, "SELECT * FROM license_changes")
    assert changes[["partner_tenant_id", "sku_id", "enabled_units_change"]].values.tolist() == [
        [OTHER_PARTNER, E3, 1]
    ]

    # One partner's slice emptied (zero SKUs today) leaves the other's alone.
    warehouse.replace_license_facts(DAY2, {CONTOSO: []}, partner_tenant_id=PARTNER)
    day2 = query(
        warehouse, f"SELECT partner_tenant_id FROM license_facts WHERE snapshot_date = '{DAY2}'"
    )
    assert day2["partner_tenant_id"].tolist() == [OTHER_PARTNER]
    counts = query(warehouse, f"SELECT * FROM license_snapshots WHERE snapshot_date = '{DAY2}'")
    assert by_partner(counts, "sku_count") == {PARTNER: 0, OTHER_PARTNER: 1}


def test_one_partners_consent_loss_is_not_hidden_by_the_others_success(
    warehouse: Warehouse,
) -> None:
    now = datetime.now(UTC)
    share_contoso(warehouse, now - timedelta(minutes=10))
    warehouse.record_tenant_statuses(
        [
            TenantStatusRow(p, CONTOSO, now - timedelta(minutes=10), TenantStatus.OK)
            for p in PARTNERS
        ]
    )
    write_day(warehouse, DAY1, {PARTNER: (10, 4), OTHER_PARTNER: (5, 1)})
    # Next day PARTNER's consent is revoked; OTHER_PARTNER's success comes after it, so a
    # window by tenant alone would show Contoso ok and fresh.
    lost_at = now - timedelta(minutes=5)
    warehouse.record_tenant_statuses(
        [
            TenantStatusRow(
                PARTNER, CONTOSO, lost_at, TenantStatus.CONSENT_REVOKED, "AADSTS65001", "revoked"
            ),
            TenantStatusRow(OTHER_PARTNER, CONTOSO, now - timedelta(minutes=4), TenantStatus.OK),
        ]
    )
    write_day(warehouse, DAY2, {OTHER_PARTNER: (5, 1)})

    health = warehouse.tenant_health().set_index("partner_tenant_id")
    assert health.loc[PARTNER, "status"] == "consent_revoked"
    assert health.loc[PARTNER, "error_code"] == "AADSTS65001"
    assert bool(health.loc[PARTNER, "is_stale"]) is True
    assert health.loc[PARTNER, "status_since"] == pd.Timestamp(lost_at.replace(tzinfo=None))
    assert health.loc[PARTNER, "facts_as_of"] == pd.Timestamp(DAY1)
    assert health.loc[OTHER_PARTNER, "status"] == "ok"
    assert bool(health.loc[OTHER_PARTNER, "is_stale"]) is False
    assert health.loc[OTHER_PARTNER, "facts_as_of"] == pd.Timestamp(DAY2)

    current = query(warehouse, "SELECT * FROM current_license_facts").set_index("partner_tenant_id")
    assert current.loc[PARTNER, "last_status"] == "consent_revoked"
    assert bool(current.loc[PARTNER, "is_stale"]) is True
    assert current.loc[PARTNER, "snapshot_date"] == pd.Timestamp(DAY1)  # last good facts kept
    assert bool(current.loc[OTHER_PARTNER, "is_stale"]) is False
    summary = warehouse.status_summary()
    assert by_partner(summary, "status") == {PARTNER: "consent_revoked", OTHER_PARTNER: "ok"}


def test_raw_payloads_and_their_ok_attempts_are_each_partners_own(warehouse: Warehouse) -> None:
    at = datetime(2026, 7, 1, 5)
    warehouse.save_raw_payloads(
        [RawPayload(DAY1, p, CONTOSO, "graph", at, [{"skuId": SKU_OF[p]}]) for p in PARTNERS]
    )
    warehouse.record_tenant_statuses(
        [
            TenantStatusRow(PARTNER, CONTOSO, at, TenantStatus.OK),
            TenantStatusRow(OTHER_PARTNER, CONTOSO, at, TenantStatus.OK),
            TenantStatusRow(PARTNER, CONTOSO, at + timedelta(hours=1), TenantStatus.ACCESS_REMOVED),
        ]
    )

    assert len(query(warehouse, "SELECT * FROM raw_subscribed_skus")) == 2
    assert warehouse.raw_payloads_for_facts(PARTNER, DAY1) == {}, "its latest attempt failed"
    assert warehouse.raw_payloads_for_facts(OTHER_PARTNER, DAY1) == {
        CONTOSO: {"graph": [{"skuId": E3}]}
    }


def test_staged_chunks_of_two_partners_land_side_by_side(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    at = datetime.now(UTC) - timedelta(minutes=1)
    for number, partner in enumerate(PARTNERS):
        write_stage(
            staging,
            f"chunk_{number}",
            statuses=[TenantStatusRow(partner, CONTOSO, at, TenantStatus.OK, sync_id="s1")],
            access=[CustomerAccessRow(partner, CONTOSO, at, "not_needed", sync_id="s1")],
            raw_payloads=[RawPayload(DAY1, partner, CONTOSO, "graph", at, [])],
            facts_by_tenant={CONTOSO: facts(CONTOSO, DAY1, {SKU_OF[partner]: (3, 1)}, partner)},
            partner_tenant_id=partner,
        )
    stages = staged_files(staging)

    warehouse.load_staged_fetches(stages)
    assert warehouse.promote_staged_facts(DAY1, stages) == 2
    warehouse.load_staged_fetches(stages)  # a retried writer replaces, never doubles, payloads
    assert warehouse.promote_staged_facts(DAY1, stages) == 2
    assert len(query(warehouse, "SELECT * FROM tenant_status")) == 2, "nor statuses"
    access = query(warehouse, "SELECT partner_tenant_id, gdap_roles FROM customer_access")
    assert sorted(access["partner_tenant_id"]) == sorted(PARTNERS), "nor access rows"

    for table in ("license_facts", "license_snapshots", "raw_subscribed_skus"):
        rows = query(warehouse, f"SELECT partner_tenant_id FROM {table}")
        assert sorted(rows["partner_tenant_id"]) == sorted(PARTNERS), table
    current = query(warehouse, "SELECT * FROM current_license_facts")
    assert by_partner(current, "sku_id") == SKU_OF
    assert set(current["source"]) == {"graph"}


def test_a_customer_one_partner_lost_stays_active_through_the_other(warehouse: Warehouse) -> None:
    at = datetime(2026, 7, 1, 5)
    share_contoso(warehouse, at)
    assert warehouse.active_customers() == {(PARTNER, CONTOSO), (OTHER_PARTNER, CONTOSO)}

    empty = customers_frame(PARTNER, [], [], []).frame
    warehouse.upsert_customers(PARTNER, empty, at + timedelta(days=1))

    assert warehouse.active_customers() == {(OTHER_PARTNER, CONTOSO)}
    assert warehouse.active_tenants(OTHER_PARTNER) == [CONTOSO]
    assert warehouse.active_tenants(PARTNER) == []
