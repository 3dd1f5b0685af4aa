"""Other processes on the DuckDB file: lock errors that say what to do, and the analyst copy."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from sync365_pipeline.warehouse import Warehouse, WarehouseLocked
from sync365_pipeline_tests.warehouse.samples import CONTOSO, DAY1, FABRIKAM, SPB, facts

# Opens the file, says "ready", then answers each stdin line with a row count until stdin closes.
HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("ready", flush=True)
for _ in sys.stdin:
    print(con.execute("SELECT count(*) FROM license_facts").fetchone()[0], flush=True)
"""


@contextmanager
def holder(path: Path, mode: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield process
    finally:
        process.stdin.close()  # type: ignore[union-attr]
        process.wait(timeout=10)


def ask_count(process: subprocess.Popen[str]) -> int:
    process.stdin.write("count\n")  # type: ignore[union-attr]
    process.stdin.flush()  # type: ignore[union-attr]
    return int(process.stdout.readline())  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_locked_file_raises_actionable_error_within_timeout(tmp_path: Path, mode: str) -> None:
    store = Warehouse(tmp_path / "sync365.duckdb", lock_timeout_s=0.5)
    store.migrate()

    with holder(store.path, mode) as process:
        started = time.monotonic()
        with pytest.raises(WarehouseLocked) as caught:
            store.replace_license_facts(DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (1, 0)})})
        waited = time.monotonic() - started

    assert 0.5 <= waited < 3
    message = str(caught.value)
    assert str(store.path) in message
    assert f"process {process.pid}" in message
    assert str(tmp_path / "sync365_analyst.duckdb") in message
    assert "analyst session" in message
    assert caught.value.holder_pid == process.pid


def test_writer_waits_for_a_short_lock(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "sync365.duckdb", lock_timeout_s=20)
    store.migrate()
    script = (
        "import sys, time, duckdb; c = duckdb.connect(sys.argv[1]); print(1, flush=True); "
        "time.sleep(1)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(store.path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline()

    written = store.replace_license_facts(DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (1, 0)})})

    assert written == 1
    process.wait(timeout=10)


def test_publish_while_an_analyst_reads_the_old_copy(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "sync365.duckdb", lock_timeout_s=5)
    store.replace_license_facts(DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (1, 0)})})
    published = store.publish_analyst_copy()
    assert published == tmp_path / "sync365_analyst.duckdb"

    with holder(published, "ro") as analyst:
        assert ask_count(analyst) == 1
        store.replace_license_facts(DAY1, {FABRIKAM: facts(FABRIKAM, DAY1, {SPB: (2, 0)})})
        store.publish_analyst_copy()  # the analyst's read-only handle does not block this
        assert ask_count(analyst) == 1  # still the old copy

    with holder(published, "ro") as fresh:
        assert ask_count(fresh) == 2
    assert not list(tmp_path.glob(".*tmp"))


def test_published_copy_has_the_views(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "main.duckdb")  # a file named main: current_database() matters
    store.replace_license_facts(DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (5, 2)})})
    target = store.publish_analyst_copy(tmp_path / "share" / "analyst.duckdb")

    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute("SELECT unused_units FROM unused_licenses").fetchall() == [(3,)]
    finally:
        con.close()
