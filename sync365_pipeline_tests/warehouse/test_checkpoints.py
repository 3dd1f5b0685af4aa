"""Checkpoints are guarded: one cut short inside its in-place write of the metadata block (a
SIGKILL there, or a full disk, leaves that block half-written and the file unopenable) is undone
at the next open, which finds every committed write; a completed one leaves only the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import duckdb
import pytest

from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline.warehouse.connection import close, connect
from sync365_pipeline_tests.samples import CONTOSO, DAY1, PARTNER, SPB, facts

METADATA_BLOCK = 12288  # after the file's three 4 KiB headers; rewritten in place by checkpoints


class Killed(BaseException):
    """The process died here."""


class DiesInCheckpoint:
    """A connection whose CHECKPOINT stops halfway through rewriting the metadata block, as a
    SIGKILL inside that write leaves it, and then dies."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con = con
        self.path = path

    def execute(self, sql: str, *args: Any) -> duckdb.DuckDBPyConnection:
        if sql == "CHECKPOINT":
            with self.path.open("r+b") as file:
                file.seek(METADATA_BLOCK + 4096)
                file.write(bytes(4096 * 8))
            raise Killed
        return self.con.execute(sql, *args)

    def close(self) -> None:
        self.con.close()


def consumed_units(path: Path) -> list[int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [
            row[0] for row in con.execute("SELECT consumed_units FROM license_facts").fetchall()
        ]


def test_a_checkpoint_cut_short_in_place_is_undone_and_loses_no_commit(
    warehouse: Warehouse,
) -> None:
    warehouse.replace_license_facts(
        DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (10, 1)})}, partner_tenant_id=PARTNER
    )
    warehouse.publish_analyst_copy()  # checkpoints: the facts are in the file's blocks
    path = warehouse.path
    con = connect(path, read_only=False, timeout_s=5.0, analyst_copy=warehouse.analyst_copy_path)
    con.execute(
        "UPDATE license_facts SET consumed_units = 2, available_units = enabled_units - 2"
    )  # committed: in the WAL only
    with pytest.raises(Killed):
        close(cast(duckdb.DuckDBPyConnection, DiesInCheckpoint(con, path)), path, checkpoint=True)
    with pytest.raises(duckdb.Error, match="Corrupt database file"):
        consumed_units(path)  # the torn file, as DuckDB alone sees it

    assert warehouse.current_facts_preview()["consumed_units"].tolist() == [2]
    assert consumed_units(path) == [2]


def test_writes_keep_a_small_wal_and_publishing_checkpoints_it_leaving_no_copy(
    warehouse: Warehouse,
) -> None:
    """A guarded checkpoint copies the whole file: a sync's writes leave a small WAL (no copy,
    no checkpoint) and the publisher at its end folds it into the file."""
    warehouse.replace_license_facts(
        DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (10, 3)})}, partner_tenant_id=PARTNER
    )
    wal = warehouse.path.with_name(warehouse.path.name + ".wal")
    assert wal.exists()
    assert not warehouse.path.with_name(warehouse.path.name + ".before-checkpoint").exists()
    copy = warehouse.publish_analyst_copy()

    assert sorted(
        p.name for p in warehouse.path.parent.iterdir() if "lock" not in p.name
    ) == sorted(
        [
            copy.name,
            warehouse.path.name,
        ]
    )
    assert consumed_units(copy) == consumed_units(warehouse.path) == [3]
