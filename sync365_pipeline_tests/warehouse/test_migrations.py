"""Migrations carry a file's rows over: a file of the previous schema version, made by running the
migrations up to it, keeps every row after `migrate()`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from sync365_pipeline.warehouse import Warehouse, schema
from sync365_pipeline.warehouse.columns import LICENSE_FACT_COLUMNS
from sync365_pipeline.warehouse.comments import DESCRIPTIONS
from sync365_pipeline_tests.conftest import HoldDuckDB
from sync365_pipeline_tests.samples import (
    CONTOSO,
    DAY1,
    DAY2,
    FABRIKAM,
    NORTHWIND,
    OTHER_PARTNER,
    PARTNER,
    SPB,
    facts,
)
from sync365_pipeline_tests.warehouse.test_warehouse import query

CHECKED = datetime(2026, 7, 1, 5)
WRITTEN = datetime(2026, 7, 1, 6)
LISTED_ONLY = "99999999-0000-4000-8000-000000000000"  # known from its customer row alone
# Version 3's license_facts columns: today's but `source`, which came with version 4.
V3_FACT_COLUMNS = [column for column in LICENSE_FACT_COLUMNS if column != "source"]


def migrated_to(path: Path, last: int) -> duckdb.DuckDBPyConnection:
    """A new file migrated up to version `last` (no views)."""
    con = duckdb.connect(str(path))
    schema.applied_version(con)
    for version, sql in schema.MIGRATIONS:
        if version <= last:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, CHECKED])
    return con


def version_3_file(path: Path) -> duckdb.DuckDBPyConnection:
    """A new file migrated up to version 3, with a view on its tables as every file had."""
    con = migrated_to(path, 3)
    con.execute(
        "CREATE VIEW current_license_facts AS SELECT f.* FROM license_facts AS f "
        "JOIN license_snapshots USING (snapshot_date, tenant_id)"
    )
    return con


def seed_version_3(con: duckdb.DuckDBPyConnection) -> None:
    """Slices whose partner shows in each place the migration looks: Contoso's own facts,
    Fabrikam's raw payload (zero SKUs), Northwind's statuses (only the one before its slice was
    written counts), and a customer row alone for LISTED_ONLY's day-2 slice."""
    for row in facts(CONTOSO, DAY1, {SPB: (10, 4)}):
        values = dict(zip(LICENSE_FACT_COLUMNS, row, strict=True))
        con.execute(
            f"INSERT INTO license_facts ({', '.join(V3_FACT_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(V3_FACT_COLUMNS))})",
            [values[column] for column in V3_FACT_COLUMNS],
        )
    con.executemany(
        "INSERT INTO license_snapshots VALUES (?, ?, ?, ?)",
        [
            [DAY1, CONTOSO, 1, WRITTEN],
            [DAY1, FABRIKAM, 0, WRITTEN],
            [DAY1, NORTHWIND, 0, WRITTEN],
        ],
    )
    con.execute(
        "INSERT INTO raw_subscribed_skus VALUES (?, ?, ?, 'graph', ?, '[]')",
        [DAY1, OTHER_PARTNER, FABRIKAM, CHECKED],
    )
    con.executemany(
        "INSERT INTO tenant_status (partner_tenant_id, tenant_id, checked_at, status) "
        "VALUES (?, ?, ?, 'ok')",
        [
            [OTHER_PARTNER, NORTHWIND, CHECKED],
            [PARTNER, NORTHWIND, datetime(2026, 7, 1, 7)],  # after the slice: not its writer
            [PARTNER, CONTOSO, CHECKED],
        ],
    )
    con.execute(
        "INSERT INTO customers VALUES (?, ?, 'Lost', NULL, 'reseller', NULL, NULL, ?, ?, true, "
        "NULL)",
        [PARTNER, LISTED_ONLY, CHECKED, CHECKED],
    )
    con.execute("INSERT INTO license_snapshots VALUES (?, ?, 0, ?)", [DAY2, LISTED_ONLY, WRITTEN])


def test_version_4_carries_every_row_over_keyed_by_partner(tmp_path: Path) -> None:
    path = tmp_path / "sync365.duckdb"
    con = version_3_file(path)
    seed_version_3(con)
    con.close()

    warehouse = Warehouse(path)
    assert warehouse.migrate() == schema.LATEST_VERSION

    stored = query(warehouse, "SELECT * FROM license_facts")
    assert stored[
        ["partner_tenant_id", "tenant_id", "sku_id", "enabled_units", "source"]
    ].values.tolist() == [[PARTNER, CONTOSO, SPB, 10, "graph"]]
    slices = query(warehouse, "SELECT * FROM license_snapshots")
    assert {
        (row.snapshot_date.date(), row.tenant_id): (row.partner_tenant_id, row.sku_count)
        for row in slices.itertuples()
    } == {
        (DAY1, CONTOSO): (PARTNER, 1),  # its facts' partner
        (DAY1, FABRIKAM): (OTHER_PARTNER, 0),  # its raw payload's
        (DAY1, NORTHWIND): (OTHER_PARTNER, 0),  # its latest status's by the time it was written
        (DAY2, LISTED_ONLY): (PARTNER, 0),  # its customer row's
    }
    assert set(slices["written_at"]) == {WRITTEN}
    raw = query(warehouse, "SELECT partner_tenant_id, tenant_id, source FROM raw_subscribed_skus")
    assert raw.values.tolist() == [[OTHER_PARTNER, FABRIKAM, "graph"]]
    assert len(query(warehouse, "SELECT * FROM tenant_status")) == 3
    indexes = query(warehouse, "SELECT index_name FROM duckdb_indexes()")["index_name"].tolist()
    assert indexes == ["tenant_status_by_customer"]
    health = warehouse.tenant_health().set_index(["partner_tenant_id", "tenant_id"])
    assert health.loc[(PARTNER, CONTOSO), "facts_as_of"].date() == DAY1

    # The new keys hold: the other partner's Contoso slice of the same day lands beside it.
    rows = facts(CONTOSO, DAY1, {SPB: (3, 0)}, partner=OTHER_PARTNER)
    warehouse.replace_license_facts(DAY1, {CONTOSO: rows}, partner_tenant_id=OTHER_PARTNER)
    assert len(query(warehouse, "SELECT * FROM license_facts")) == 2
    con = duckdb.connect(str(path))
    try:
        with pytest.raises(duckdb.ConstraintException, match="CHECK"):
            con.execute("UPDATE license_facts SET source = 'elsewhere'")
    finally:
        con.close()


def test_a_slice_whose_partner_nothing_records_stops_the_migration_and_keeps_the_file(
    tmp_path: Path,
) -> None:
    """Guessing the partner would attribute facts falsely, and dropping the slice would lose it:
    the file stays at version 3, whole, for a person to look at."""
    path = tmp_path / "sync365.duckdb"
    con = version_3_file(path)
    con.execute("INSERT INTO license_snapshots VALUES (?, ?, 0, ?)", [DAY1, CONTOSO, WRITTEN])
    con.close()

    with pytest.raises(duckdb.ConstraintException, match="partner_tenant_id"):
        Warehouse(path).migrate()

    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT max(version) FROM schema_version").fetchall() == [(3,)]
        assert con.execute("SELECT tenant_id FROM license_snapshots").fetchall() == [(CONTOSO,)]
    finally:
        con.close()


def test_version_6_keeps_every_flag_as_lost_access(tmp_path: Path) -> None:
    path = tmp_path / "sync365.duckdb"
    con = migrated_to(path, 5)
    con.executemany(
        "INSERT INTO consent_flags VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ["f1", PARTNER, CONTOSO, "consent_revoked", "AADSTS65001", "m", CHECKED, None],
            ["f2", PARTNER, None, "refresh_token_expired", None, None, CHECKED, WRITTEN],
        ],
    )
    con.close()

    Warehouse(path).migrate()

    flags = query(
        Warehouse(path),
        "SELECT flag_id, tenant_id, kind, status, ends_at, cleared_at FROM consent_flags "
        "ORDER BY flag_id",
    )
    assert flags[["flag_id", "kind", "status"]].values.tolist() == [
        ["f1", "access_lost", "consent_revoked"],
        ["f2", "access_lost", "refresh_token_expired"],
    ]
    assert flags["ends_at"].isna().all()
    assert [(flag.flag_id, flag.kind) for flag in Warehouse(path).open_consent_flags()] == [
        ("f1", "access_lost")
    ]


def _wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def _view_columns(path: Path, view: str) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [view]
        ).fetchall()
    return [name for (name,) in rows]


def test_a_current_file_is_neither_locked_nor_written_by_migrate(
    tmp_path: Path, hold_duckdb: HoldDuckDB
) -> None:
    """Every step of a sync migrates once: a current file answers on a read-only connection, so
    an analyst's read-only session (which stops every writer) does not stop it either."""
    path = tmp_path / "sync365.duckdb"
    Warehouse(path).migrate()
    wal_after_first = _wal_bytes(path)
    analyst = hold_duckdb(path, read_only=True)

    assert Warehouse(path, lock_timeout_s=0.5).migrate() == schema.LATEST_VERSION

    assert _wal_bytes(path) == wal_after_first
    analyst.release()
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT digest FROM schema_objects").fetchall() == [
            (schema.objects_digest(),)
        ]


def test_other_views_or_comments_are_recreated_and_their_digest_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release whose views.sql differs (here: one more view) recreates the views and sets the
    comments again, even though no migration is pending."""
    path = tmp_path / "sync365.duckdb"
    Warehouse(path).migrate()
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE OR REPLACE VIEW unused_licenses AS SELECT 1 AS stray")
        con.execute("COMMENT ON VIEW current_license_facts IS NULL")
    release_views, release_digest = schema._views_sql(), schema.objects_digest()
    monkeypatch.setattr(
        schema, "_views_sql", lambda: f"{release_views}\nCREATE VIEW probe AS SELECT 1 AS one;"
    )
    schema.objects_digest.cache_clear()
    try:
        new_digest = schema.objects_digest()
        Warehouse(path).migrate()
    finally:
        schema.objects_digest.cache_clear()

    assert _view_columns(path, "probe") == ["one"]
    assert "stray" not in _view_columns(path, "unused_licenses")
    with duckdb.connect(str(path), read_only=True) as con:
        comment = con.execute(
            "SELECT comment FROM duckdb_views() WHERE view_name = 'current_license_facts'"
        ).fetchone()
        digests = con.execute("SELECT digest FROM schema_objects").fetchall()
    assert comment is not None
    assert comment[0] == DESCRIPTIONS["current_license_facts"].text
    assert digests == [(new_digest,)]
    assert new_digest != release_digest
