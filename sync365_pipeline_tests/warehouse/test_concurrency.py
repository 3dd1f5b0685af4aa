"""Other processes on the DuckDB file: lock errors that say what to do, and the analyst copy."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import duckdb
import pytest

from sync365_pipeline.warehouse import Warehouse, WarehouseLocked
from sync365_pipeline_tests.conftest import HoldDuckDB
from sync365_pipeline_tests.leftovers import ended_pid
from sync365_pipeline_tests.samples import CONTOSO, DAY1, FABRIKAM, PARTNER, SPB, facts


@pytest.mark.parametrize("read_only", [False, True])
def test_locked_file_raises_actionable_error_after_the_timeout(
    tmp_path: Path, hold_duckdb: HoldDuckDB, read_only: bool
) -> None:
    store = Warehouse(tmp_path / "sync365.duckdb", lock_timeout_s=0.5)
    store.migrate()
    holder = hold_duckdb(store.path, read_only=read_only)

    with pytest.raises(WarehouseLocked) as caught:  # (that it waits: the test below)
        store.replace_license_facts(
            DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (1, 0)})}, partner_tenant_id=PARTNER
        )

    message = str(caught.value)
    assert str(store.path) in message
    assert f"process {holder.pid}" in message
    assert str(tmp_path / "sync365_analyst.duckdb") in message
    assert "analyst session" in message
    assert caught.value.holder_pid == holder.pid


def test_writer_waits_for_a_short_lock(tmp_path: Path, hold_duckdb: HoldDuckDB) -> None:
    store = Warehouse(tmp_path / "sync365.duckdb", lock_timeout_s=60)
    store.migrate()
    holder = hold_duckdb(store.path, read_only=False)
    release = threading.Timer(0.5, holder.release)  # while the write below waits for the lock
    release.start()

    written = store.replace_license_facts(
        DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (1, 0)})}, partner_tenant_id=PARTNER
    )

    release.join()
    assert written == 1
    assert holder.process.returncode == 0


def test_publish_while_an_analyst_reads_the_old_copy(
    tmp_path: Path, hold_duckdb: HoldDuckDB
) -> None:
    store = Warehouse(tmp_path / "sync365.duckdb", lock_timeout_s=5)
    store.replace_license_facts(
        DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (1, 0)})}, partner_tenant_id=PARTNER
    )
    published = store.publish_analyst_copy()
    assert published == tmp_path / "sync365_analyst.duckdb"

    analyst = hold_duckdb(published, read_only=True)
    assert analyst.count_license_facts() == 1
    store.replace_license_facts(
        DAY1, {FABRIKAM: facts(FABRIKAM, DAY1, {SPB: (2, 0)})}, partner_tenant_id=PARTNER
    )
    store.publish_analyst_copy()  # the analyst's read-only handle does not block this
    assert analyst.count_license_facts() == 1  # still the old copy
    analyst.release()

    assert hold_duckdb(published, read_only=True).count_license_facts() == 2
    assert not list(tmp_path.glob(".*tmp"))


def test_publishing_removes_the_copies_killed_publishers_left(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "sync365.duckdb")
    store.migrate()
    killed = tmp_path / f".sync365_analyst.duckdb.{ended_pid()}.tmp"
    running = tmp_path / f".sync365_analyst.duckdb.{os.getppid()}.tmp"  # left to its publisher
    for leftover in (killed, running):
        leftover.write_bytes(b"half a copy")

    published = store.publish_analyst_copy()

    assert sorted(tmp_path.glob(".*.tmp")) == [running]
    assert published.is_file()


def test_published_copy_has_the_views(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "main.duckdb")  # a file named main: current_database() matters
    store.replace_license_facts(
        DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (5, 2)})}, partner_tenant_id=PARTNER
    )
    target = store.publish_analyst_copy(tmp_path / "share" / "analyst.duckdb")

    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute("SELECT unused_units FROM unused_licenses").fetchall() == [(3,)]
    finally:
        con.close()
