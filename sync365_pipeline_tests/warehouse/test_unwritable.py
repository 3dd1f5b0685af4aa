"""A warehouse that cannot grow (disk full, quota) is reported as such, at once, and keeps its
earlier data; never as DuckDB's 'cannot rollback - no transaction is active'."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline_tests.samples import CONTOSO, DAY1, DAY2, PARTNER, SPB, facts

# Writes a day of many tenants' facts in a process whose files may not grow past 4 KiB
# (RLIMIT_FSIZE, SIGXFSZ ignored): DuckDB's write-ahead log cannot take the write, which fails
# with EFBIG as it would on a full disk.
WRITER = """
import resource, signal, sys
from datetime import date
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from sync365_pipeline.warehouse import Warehouse, WarehouseUnwritable
from sync365_pipeline_tests.samples import PARTNER, SPB, POWER_BI_PRO, E3, facts
day = date(2026, 7, 2)
tenants = [f"{n:08x}-0000-4000-8000-000000000000" for n in range(300)]
frames = {t: facts(t, day, {SPB: (10, 5), POWER_BI_PRO: (3, 1), E3: (7, 7)}) for t in tenants}
try:
    Warehouse(sys.argv[1]).replace_license_facts(day, frames, partner_tenant_id=PARTNER)
except WarehouseUnwritable as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_warehouse_that_cannot_grow_fails_clearly_and_keeps_its_data(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    warehouse.replace_license_facts(
        DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (25, 14)})}, partner_tenant_id=PARTNER
    )
    result = subprocess.run(
        [sys.executable, "-c", WRITER, str(warehouse.path), "4096"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 3, result.stderr[-2000:]
    assert "cannot be written" in result.stdout
    assert "the file may not grow" in result.stdout
    assert "earlier data is intact" in result.stdout
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        rows = con.execute("SELECT snapshot_date, tenant_id, enabled_units FROM license_facts")
        assert rows.fetchall() == [(DAY1, CONTOSO, 25)]
        assert con.execute(
            "SELECT count(*) FROM license_facts WHERE snapshot_date = ?", [DAY2]
        ).fetchone() == (0,)
