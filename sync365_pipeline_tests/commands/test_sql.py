"""`sync365 sql`: the analyst copy of a demo sync, opened in the DuckDB CLI the set-up installs
(duckdb-cli 1.5, which cannot read DuckDB 2's own storage format), answers what Python reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sync365_pipeline.simulator import SimulatorServer

from .processes import clean_env, run_sync365, simulator_env

pytestmark = pytest.mark.e2e

FACTS = (
    "SELECT tenant_id, sku_id, enabled_units, consumed_units, synced_at::VARCHAR AS synced_at "
    "FROM current_license_facts ORDER BY ALL"
)
ABOUT = (
    "SELECT (SELECT library_version FROM pragma_version()) AS cli_version, "
    "(SELECT comment FROM duckdb_tables() WHERE table_name = 'license_facts') AS facts_comment, "
    "(SELECT count(*) FROM duckdb_columns() WHERE comment IS NOT NULL) AS commented_columns, "
    "(SELECT count(*) FROM tenant_health) AS customers"
)


def test_the_analyst_copy_of_a_demo_sync_opens_in_the_duckdb_cli(
    simulator_factory: Callable[[Any], SimulatorServer], tmp_path: Path
) -> None:
    env = simulator_env(simulator_factory("demo"), tmp_path)
    synced = run_sync365(["sync"], env, tmp_path)
    assert synced.returncode == 0, synced.stderr
    with duckdb.connect(str(tmp_path / "sync365_analyst.duckdb"), read_only=True) as con:
        facts = con.execute(FACTS).fetchall()
        comment, commented, customers = con.execute(ABOUT).fetchone()[1:]  # type: ignore[index]

    answer = run_sync365(["sql", "-json", "-c", FACTS], env, tmp_path)
    about = run_sync365(["sql", "-json", "-c", ABOUT], env, tmp_path)

    assert answer.returncode == 0, answer.stderr
    assert len(facts) > 10, "the demo's customers have facts"
    assert [tuple(row.values()) for row in json.loads(answer.stdout)] == facts
    assert about.returncode == 0, about.stderr
    [cli] = json.loads(about.stdout)
    assert cli["cli_version"].startswith("v1.5."), "the CLI of the `analyst` extra"
    assert cli["facts_comment"] == comment
    assert comment.startswith("The license facts")
    assert cli["commented_columns"] == commented
    assert cli["customers"] == customers


def test_sql_before_any_sync_says_so_in_one_line(tmp_path: Path) -> None:
    env = clean_env(tmp_path) | {"SYNC365_DUCKDB_PATH": str(tmp_path / "sync365.duckdb")}

    result = run_sync365(["sql", "-c", "SELECT 1"], env, tmp_path)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: No analyst copy at {tmp_path / 'sync365_analyst.duckdb'} yet: "
        "run `sync365 sync` first."
    ]
