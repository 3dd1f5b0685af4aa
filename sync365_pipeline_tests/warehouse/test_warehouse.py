"""Warehouse writes and views on real DuckDB files: exact counts, slices, history, staleness."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pandas as pd
import pytest

from sync365_pipeline.core.redaction import REDACTED, register_secret
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.normalize import LICENSE_FACT_COLUMNS, customers_frame
from sync365_pipeline.warehouse import (
    ConsentFlag,
    InvalidFrameError,
    PartnerStatusRow,
    RawPayload,
    SkippedRecord,
    TenantStatusRow,
    Warehouse,
)
from sync365_pipeline_tests.samples import (
    CONTOSO,
    DAY1,
    DAY2,
    E3,
    FABRIKAM,
    NORTHWIND,
    OTHER_PARTNER,
    PARTNER,
    POWER_BI_PRO,
    SPB,
    facts,
)

REQUIRED_COLUMNS = {
    "customers": [
        "partner_tenant_id",
        "tenant_id",
        "display_name",
        "default_domain",
        "relationship",
        "gdap_status",
        "gdap_end_date",
        "first_seen",
        "last_seen",
        "active",
    ],
    "license_facts": [
        "snapshot_date",
        "tenant_id",
        "sku_id",
        "partner_tenant_id",
        "sku_part_number",
        "product_name",
        "capability_status",
        "enabled_units",
        "suspended_units",
        "warning_units",
        "locked_out_units",
        "consumed_units",
        "available_units",
        "source",
        "synced_at",
    ],
    "license_snapshots": ["snapshot_date", "partner_tenant_id", "tenant_id", "sku_count"],
    "tenant_status": [
        "tenant_id",
        "checked_at",
        "status",
        "error_code",
        "message",
        "partner_tenant_id",
        "sync_id",
    ],
    "consent_flags": [
        "partner_tenant_id",
        "tenant_id",
        "kind",
        "status",
        "error_code",
        "message",
        "ends_at",
        "raised_at",
        "cleared_at",
    ],
    "app_credentials": [
        "partner_tenant_id",
        "checked_at",
        "key_id",
        "display_name",
        "end_date",
        "in_use",
        "message",
    ],
    "partner_status": [
        "partner_tenant_id",
        "checked_at",
        "status",
        "error_code",
        "message",
        "token_expires_at",
        "account",
        "mfa",
    ],
    "skipped_customer_records": [
        "partner_tenant_id",
        "seen_at",
        "list_name",
        "list_index",
        "record_key",
        "reason",
    ],
    "raw_subscribed_skus": [
        "snapshot_date",
        "partner_tenant_id",
        "tenant_id",
        "source",
        "fetched_at",
        "payload",
    ],
    "schema_version": ["version"],
    "schema_objects": ["digest", "applied_at"],
    "tenant_freshness": ["partner_tenant_id", "tenant_id", "facts_as_of", "is_stale"],
    "current_license_facts": [
        "is_stale",
        "partner_tenant_id",
        "tenant_id",
        "sku_id",
        "source",
        "available_units",
    ],
    "unused_licenses": ["tenant_id", "sku_id", "unused_units"],
    "license_changes": ["tenant_id", "sku_id", "change", "enabled_units_change"],
    "tenant_health": ["tenant_id", "status", "error_code", "status_since", "last_ok_at"],
}


def query(store: Warehouse, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(store.path), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def status(tenant: str, value: TenantStatus, at: datetime, code: str | None = None):
    return TenantStatusRow(PARTNER, tenant, at, value, error_code=code, message=code)


def value(row: tuple[Any, ...], column: str) -> Any:
    return row[LICENSE_FACT_COLUMNS.index(column)]


def changed(rows: tuple[tuple[Any, ...], ...], **values: Any) -> list[tuple[Any, ...]]:
    """`rows` with the named columns set: a value, or a function of the row."""
    return [
        tuple(
            (values[c](row) if callable(values[c]) else values[c]) if c in values else v
            for c, v in zip(LICENSE_FACT_COLUMNS, row, strict=True)
        )
        for row in rows
    ]


def test_schema_has_the_required_tables_views_and_columns(warehouse: Warehouse) -> None:
    assert warehouse.migrate() == warehouse.migrate()  # idempotent
    for table, columns in REQUIRED_COLUMNS.items():
        found = set(query(warehouse, f"DESCRIBE {table}")["column_name"])
        assert set(columns) <= found, (table, set(columns) - found)
    types = query(warehouse, "DESCRIBE license_facts").set_index("column_name")["column_type"]
    assert {types[c] for c in REQUIRED_COLUMNS["license_facts"] if c.endswith("_units")} == {
        "BIGINT"
    }


def test_facts_round_trip_value_by_value(warehouse: Warehouse) -> None:
    rows = facts(CONTOSO, DAY1, {SPB: (1_000_000, 0), POWER_BI_PRO: (0, 3), E3: (10_000, 10_000)})
    assert warehouse.replace_license_facts(DAY1, {CONTOSO: rows}, partner_tenant_id=PARTNER) == 3

    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        stored = con.execute(
            f"SELECT {', '.join(LICENSE_FACT_COLUMNS)} FROM license_facts ORDER BY sku_id"
        ).fetchall()
    finally:
        con.close()
    assert stored == sorted(rows, key=lambda row: value(row, "sku_id"))
    assert (
        value(next(r for r in stored if value(r, "sku_id") == POWER_BI_PRO), "available_units")
        == -3
    )
    types = query(warehouse, "DESCRIBE license_facts").set_index("column_name")["column_type"]
    assert {types[c] for c in LICENSE_FACT_COLUMNS if c.endswith("_units")} == {"BIGINT"}


def test_replace_is_idempotent_and_touches_only_its_slice(warehouse: Warehouse) -> None:
    warehouse.replace_license_facts(
        DAY1,
        {CONTOSO: facts(CONTOSO, DAY1, {SPB: (10, 1)}), FABRIKAM: facts(FABRIKAM, DAY1, {})},
        partner_tenant_id=PARTNER,
    )
    warehouse.replace_license_facts(
        DAY2, {CONTOSO: facts(CONTOSO, DAY2, {SPB: (11, 1)})}, partner_tenant_id=PARTNER
    )
    new_day1 = facts(CONTOSO, DAY1, {SPB: (20, 2), E3: (5, 5)})

    for _ in range(2):
        warehouse.replace_license_facts(DAY1, {CONTOSO: new_day1}, partner_tenant_id=PARTNER)

    rows = query(warehouse, "SELECT snapshot_date, sku_id, enabled_units FROM license_facts")
    assert sorted(map(tuple, rows.astype(str).to_numpy())) == sorted(
        [("2026-07-01", SPB, "20"), ("2026-07-01", E3, "5"), ("2026-07-02", SPB, "11")]
    )
    slices = query(warehouse, "SELECT tenant_id, sku_count FROM license_snapshots")
    assert len(slices) == 3  # Fabrikam's empty day-1 slice is recorded as written


def test_empty_frame_empties_the_slice(warehouse: Warehouse) -> None:
    warehouse.replace_license_facts(
        DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (10, 1)})}, partner_tenant_id=PARTNER
    )
    warehouse.replace_license_facts(
        DAY2, {CONTOSO: facts(CONTOSO, DAY2, {SPB: (10, 1)})}, partner_tenant_id=PARTNER
    )
    warehouse.replace_license_facts(
        DAY2, {CONTOSO: facts(CONTOSO, DAY2, {})}, partner_tenant_id=PARTNER
    )

    assert query(warehouse, "SELECT count(*) AS n FROM current_license_facts").n[0] == 0
    assert query(warehouse, "SELECT count(*) AS n FROM license_facts").n[0] == 1  # day 1 kept


@pytest.mark.parametrize(
    "break_rows",
    [
        lambda rows: [*rows, rows[0]],  # one SKU twice
        lambda rows: changed(
            rows, consumed_units=-1, available_units=lambda r: value(r, "enabled_units") + 1
        ),
        lambda rows: changed(rows, available_units=lambda r: value(r, "available_units") + 1),
    ],
    ids=["duplicate-sku", "negative-count", "available-mismatch"],
)
def test_a_failed_write_rolls_back_every_slice(warehouse: Warehouse, break_rows) -> None:
    good = {CONTOSO: facts(CONTOSO, DAY1, {SPB: (10, 1)})}
    warehouse.replace_license_facts(DAY1, good, partner_tenant_id=PARTNER)
    before = query(warehouse, "SELECT * FROM license_facts")
    rewrite = {
        FABRIKAM: facts(FABRIKAM, DAY1, {SPB: (3, 3)}),
        CONTOSO: break_rows(facts(CONTOSO, DAY1, {SPB: (99, 9), E3: (1, 1)})),
    }

    with pytest.raises(duckdb.ConstraintException):
        warehouse.replace_license_facts(DAY1, rewrite, partner_tenant_id=PARTNER)

    pd.testing.assert_frame_equal(query(warehouse, "SELECT * FROM license_facts"), before)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: changed(r, enabled_units=lambda r: float(value(r, "enabled_units"))), "float"),
        (lambda r: changed(r, enabled_units=True), "enabled_units is bool"),
        (lambda r: changed(r, warning_units=2**63), "warning_units is uint64"),
        (lambda r: changed(r, consumed_units=None), "consumed_units has missing values"),
        (lambda r: changed(r, tenant_id=FABRIKAM), "hold another tenant's"),
        (lambda r: changed(r, partner_tenant_id=OTHER_PARTNER), "hold another partner's"),
        (lambda r: [row[:-1] for row in r], "has 16 values, not 17"),
        (lambda r: changed(r, snapshot_date=DAY2), "not dated"),
    ],
)
def test_rows_that_do_not_fit_are_refused(warehouse: Warehouse, change, message: str) -> None:
    with pytest.raises(InvalidFrameError, match=message):
        warehouse.replace_license_facts(
            DAY1, {CONTOSO: change(facts(CONTOSO, DAY1, {SPB: (1, 0)}))}, partner_tenant_id=PARTNER
        )
    assert query(warehouse, "SELECT count(*) AS n FROM license_facts").n[0] == 0


def test_customers_first_last_seen_departed_and_returned(warehouse: Warehouse) -> None:
    def listing(*tenants: str) -> pd.DataFrame:
        return customers_frame(
            PARTNER,
            [
                {
                    "id": t,
                    "companyProfile": {"companyName": t[:4]},
                    "relationshipToPartner": "reseller",
                }
                for t in tenants
            ],
            [],
            [],
        ).frame

    day1, day2, day3 = (datetime(2026, 7, d, 5) for d in (1, 2, 3))
    first = warehouse.upsert_customers(PARTNER, listing(CONTOSO, FABRIKAM), day1)
    second = warehouse.upsert_customers(PARTNER, listing(CONTOSO, NORTHWIND), day2)
    third = warehouse.upsert_customers(PARTNER, listing(CONTOSO, FABRIKAM, NORTHWIND), day3)

    assert first.new == sorted([CONTOSO, FABRIKAM])
    assert (second.new, second.departed, second.returned) == ([NORTHWIND], [FABRIKAM], [])
    assert (third.new, third.departed, third.returned) == ([], [], [FABRIKAM])
    rows = query(warehouse, "SELECT * FROM customers").set_index("tenant_id")
    assert rows.loc[CONTOSO, "first_seen"] == day1
    assert rows.loc[CONTOSO, "last_seen"] == day3
    assert rows.loc[FABRIKAM, "active"]
    assert pd.isna(rows.loc[FABRIKAM, "departed_at"])
    assert warehouse.active_tenants(PARTNER) == sorted([CONTOSO, FABRIKAM, NORTHWIND])

    warehouse.upsert_customers(PARTNER, listing(NORTHWIND), day3)
    assert warehouse.active_tenants() == [NORTHWIND]
    assert len(query(warehouse, "SELECT * FROM customers")) == 3  # history is never deleted


def test_two_day_views(warehouse: Warehouse) -> None:
    day1_at, day2_at = datetime(2026, 7, 1, 5), datetime(2026, 7, 2, 5)
    warehouse.replace_license_facts(
        DAY1,
        {
            CONTOSO: facts(CONTOSO, DAY1, {SPB: (10, 8), POWER_BI_PRO: (5, 5)}),
            FABRIKAM: facts(FABRIKAM, DAY1, {SPB: (3, 1)}),
        },
        partner_tenant_id=PARTNER,
    )
    warehouse.record_tenant_statuses(
        [status(CONTOSO, TenantStatus.OK, day1_at), status(FABRIKAM, TenantStatus.OK, day1_at)]
    )
    # Day 2: Contoso changes; Fabrikam revoked consent, so it gets no new facts.
    warehouse.replace_license_facts(
        DAY2, {CONTOSO: facts(CONTOSO, DAY2, {SPB: (12, 9), E3: (2, 0)})}, partner_tenant_id=PARTNER
    )
    warehouse.record_tenant_statuses(
        [
            status(CONTOSO, TenantStatus.OK, day2_at),
            status(FABRIKAM, TenantStatus.CONSENT_REVOKED, day2_at, "AADSTS65001"),
        ]
    )

    changes = query(warehouse, "SELECT * FROM license_changes").set_index("sku_id")
    assert set(changes.tenant_id) == {CONTOSO}
    assert changes.loc[
        SPB, ["change", "enabled_units_change", "consumed_units_change"]
    ].tolist() == [
        "changed",
        2,
        1,
    ]
    assert changes.loc[SPB, "available_units_change"] == 1
    assert changes.loc[POWER_BI_PRO, ["change", "enabled_units_change"]].tolist() == ["removed", -5]
    assert changes.loc[E3, ["change", "enabled_units_change"]].tolist() == ["added", 2]

    current = query(warehouse, "SELECT * FROM current_license_facts")
    by_tenant = current.groupby("tenant_id").agg({"is_stale": "all", "snapshot_date": "max"})
    assert not by_tenant.loc[CONTOSO, "is_stale"]
    assert by_tenant.loc[FABRIKAM, "is_stale"]  # last good facts, kept and flagged
    assert by_tenant.loc[FABRIKAM, "snapshot_date"] == pd.Timestamp(DAY1)

    unused = query(warehouse, "SELECT tenant_id, sku_id, unused_units FROM unused_licenses")
    assert sorted(map(tuple, unused.to_numpy())) == sorted(
        [(CONTOSO, SPB, 3), (CONTOSO, E3, 2), (FABRIKAM, SPB, 2)]
    )

    health = warehouse.tenant_health().set_index("tenant_id")
    assert health.loc[FABRIKAM, "status"] == "consent_revoked"
    assert health.loc[FABRIKAM, "error_code"] == "AADSTS65001"
    assert health.loc[FABRIKAM, "status_since"] == day2_at
    assert health.loc[FABRIKAM, "last_ok_at"] == day1_at
    assert health.loc[FABRIKAM, "facts_as_of"] == pd.Timestamp(DAY1)
    assert health.loc[FABRIKAM, "is_stale"]
    assert health.loc[CONTOSO, "status_since"] == day1_at  # ok on both days
    latest = warehouse.latest_tenant_statuses().set_index("tenant_id")["status"].to_dict()
    assert latest == {CONTOSO: "ok", FABRIKAM: "consent_revoked"}


def test_status_summary_counts_active_tenants(warehouse: Warehouse) -> None:
    warehouse.upsert_customers(
        PARTNER,
        customers_frame(PARTNER, [], [], [{"customerId": CONTOSO}, {"customerId": FABRIKAM}]).frame,
        datetime(2026, 7, 1),
    )
    warehouse.record_tenant_statuses(
        [status(CONTOSO, TenantStatus.MFA_REQUIRED, datetime(2026, 7, 1), "AADSTS50076")]
    )

    summary = warehouse.status_summary().set_index("status")["tenants"].to_dict()
    assert summary == {"mfa_required": 1, "never_synced": 1}


def test_unknown_status_is_refused(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match="fine"):
        warehouse.record_tenant_statuses(
            [TenantStatusRow(PARTNER, CONTOSO, datetime(2026, 7, 1), "fine")]  # type: ignore[arg-type]
        )


def test_consent_flags_raise_once_and_clear(warehouse: Warehouse) -> None:
    at = datetime(2026, 7, 2, 5)
    tenant_flag = ConsentFlag(PARTNER, FABRIKAM, "consent_revoked", at, "AADSTS65001", "re-consent")
    partner_flag = ConsentFlag(PARTNER, None, "refresh_token_expired", at, "AADSTS700082")
    lost = "access_lost"

    later = datetime(2026, 7, 3)
    raised, cleared = warehouse.apply_consent_changes([tenant_flag, partner_flag], [], at)
    again, _ = warehouse.apply_consent_changes([tenant_flag], [], at)

    assert [flag.key for flag in raised] == [(PARTNER, FABRIKAM, lost), (PARTNER, None, lost)]
    assert cleared == []
    assert again == []
    assert {flag.key for flag in warehouse.open_consent_flags()} == {
        (PARTNER, FABRIKAM, lost),
        (PARTNER, None, lost),
    }
    _, cleared = warehouse.apply_consent_changes(
        [], [(PARTNER, None, lost), (PARTNER, CONTOSO, lost)], later
    )
    assert cleared == [(PARTNER, None, lost)], "only a flag that was open is reported cleared"
    assert [flag.key for flag in warehouse.open_consent_flags()] == [(PARTNER, FABRIKAM, lost)]
    raised, _ = warehouse.apply_consent_changes([partner_flag], [], later)
    assert len(raised) == 1  # a new episode


def test_one_open_flag_per_kind_and_a_clear_closes_only_its_kind(warehouse: Warehouse) -> None:
    at = datetime(2026, 7, 2, 5)
    ends = datetime(2026, 7, 11)
    lost = ConsentFlag(PARTNER, FABRIKAM, "access_removed", at)
    expiring = ConsentFlag(PARTNER, FABRIKAM, "expiring", at, kind="gdap_expiring", ends_at=ends)
    secret = ConsentFlag(PARTNER, None, "expiring", at, kind="client_secret_expiring", ends_at=ends)

    raised, _ = warehouse.apply_consent_changes([lost, expiring, secret, expiring], [], at)
    _, cleared = warehouse.apply_consent_changes(
        [], [(PARTNER, FABRIKAM, "gdap_expiring"), (PARTNER, FABRIKAM, "gdap_expiring")], at
    )

    assert [flag.kind for flag in raised] == [
        "access_lost",
        "gdap_expiring",
        "client_secret_expiring",
    ]
    assert cleared == [(PARTNER, FABRIKAM, "gdap_expiring")]
    still_open = warehouse.open_consent_flags()
    assert {flag.key for flag in still_open} == {lost.key, secret.key}
    assert {flag.kind: flag.ends_at for flag in still_open} == {
        "access_lost": None,
        "client_secret_expiring": ends,
    }
    with (
        duckdb.connect(str(warehouse.path)) as con,
        pytest.raises(duckdb.ConstraintException, match="CHECK"),
    ):
        con.execute("UPDATE consent_flags SET kind = 'something_else'")


def test_partner_status_and_raw_payloads(warehouse: Warehouse) -> None:
    warehouse.record_partner_status(
        PartnerStatusRow(
            PARTNER,
            datetime(2026, 7, 1, 5),
            "ok",
            token_expires_at=datetime(2026, 7, 1, 6),
            account="admin@partner.example",
            mfa=True,
        )
    )
    raw = RawPayload(DAY1, PARTNER, CONTOSO, "graph", datetime(2026, 7, 1, 5), {"value": [1]})
    warehouse.save_raw_payloads([raw])
    warehouse.save_raw_payloads([RawPayload(**{**raw.__dict__, "payload": '{"value": [2]}'})])

    assert query(warehouse, "SELECT payload FROM raw_subscribed_skus").payload.tolist() == [
        '{"value": [2]}'
    ]
    assert query(warehouse, "SELECT mfa FROM partner_status").mfa.tolist() == [True]


def test_readers_for_the_sync_sensor_and_cli(warehouse: Warehouse) -> None:
    assert warehouse.status_marker() is None
    day1_at = datetime(2026, 7, 1, 5)
    for tenant, outcome in ((CONTOSO, TenantStatus.OK), (FABRIKAM, TenantStatus.THROTTLED)):
        warehouse.save_raw_payloads(
            [RawPayload(DAY1, PARTNER, tenant, "graph", day1_at, [{"skuId": SPB}])]
        )
        warehouse.record_tenant_statuses([status(tenant, outcome, day1_at)])
    warehouse.record_partner_status(PartnerStatusRow(PARTNER, day1_at, "ok"))
    warehouse.record_partner_status(
        PartnerStatusRow(PARTNER, datetime(2026, 7, 1, 6), "mfa_missing")
    )
    warehouse.replace_license_facts(
        DAY1,
        {CONTOSO: facts(CONTOSO, DAY1, {SPB: (10, 4), POWER_BI_PRO: (2, 5)})},
        partner_tenant_id=PARTNER,
    )

    assert warehouse.raw_payloads_for_facts(PARTNER, DAY1) == {CONTOSO: {"graph": [{"skuId": SPB}]}}
    assert warehouse.latest_partner_statuses().status.tolist() == ["mfa_missing"]
    assert warehouse.status_marker() == "2026-07-01T06:00:00"
    line = warehouse.licenses_per_customer().iloc[0]
    assert (line.tenant_id, line.enabled_units, line.consumed_units) == (CONTOSO, 12, 9)
    assert (line.unused_units, line.over_assigned_units) == (6, 3), "per SKU, not 12 - 9"


def test_a_day_on_which_every_tenant_has_zero_skus_empties_their_slices(
    warehouse: Warehouse,
) -> None:
    warehouse.replace_license_facts(
        DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (10, 4)})}, partner_tenant_id=PARTNER
    )
    assert warehouse.replace_license_facts(DAY1, {CONTOSO: []}, partner_tenant_id=PARTNER) == 0

    assert query(warehouse, "SELECT count(*) AS n FROM license_facts").n.tolist() == [0]
    assert query(warehouse, "SELECT sku_count FROM license_snapshots").sku_count.tolist() == [0]


def test_skipped_customer_records_are_stored_redacted_with_the_list(warehouse: Warehouse) -> None:
    secret = "skipped-record-secret-0123456789"
    register_secret(secret)
    listing = customers_frame(PARTNER, [], [], [{"customerId": CONTOSO}]).frame
    skipped = [
        SkippedRecord("customers", 3, f"customers[3] echoed {secret}\x1b[2J"),
        SkippedRecord("contracts", 0, "contracts[0].displayName is not text.", FABRIKAM),
    ]
    seen = datetime(2026, 7, 1, 5)

    warehouse.upsert_customers(PARTNER, listing, seen, skipped)

    rows = query(warehouse, "SELECT * FROM skipped_customer_records ORDER BY list_name")
    assert rows["list_name"].tolist() == ["contracts", "customers"]
    assert rows["list_index"].tolist() == [0, 3]
    assert rows["record_key"].tolist()[0] == FABRIKAM
    assert pd.isna(rows["record_key"].tolist()[1])
    assert set(rows["partner_tenant_id"]) == {PARTNER}
    assert set(rows["seen_at"]) == {seen}
    stored = rows["reason"].tolist()[1]
    assert secret not in stored
    assert REDACTED in stored
    assert "\x1b" not in stored
    assert warehouse.active_tenants(PARTNER) == [CONTOSO]
