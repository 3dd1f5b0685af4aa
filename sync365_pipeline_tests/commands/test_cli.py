"""The `sync365` command as a user runs it: a real process, configured by environment."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline_tests.conftest import HoldDuckDB
from sync365_pipeline_tests.samples import CONTOSO, DAY1, PARTNER, SPB, facts
from sync365_pipeline_tests.scenarios import HEALTHY_B, pipeline_scenario

from .processes import clean_env, run_sync365, simulator_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def configured(
    simulator_factory: Callable[[Any], SimulatorServer], tmp_path: Path
) -> tuple[SimulatorServer, dict[str, str]]:
    sim = simulator_factory(pipeline_scenario())
    return sim, simulator_env(sim, tmp_path)


def license_facts(tmp_path: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(tmp_path / "sync365.duckdb"), read_only=True) as con:
        return con.execute("SELECT * FROM license_facts ORDER BY tenant_id, sku_id").fetchall()


def test_missing_configuration_exits_2_naming_every_variable(tmp_path: Path) -> None:
    result = run_sync365(["sync"], clean_env(tmp_path), tmp_path)

    assert result.returncode == 2
    for name in ("SYNC365_CLIENT_ID", "SYNC365_CLIENT_SECRET", "SYNC365_PARTNER_TENANT_ID"):
        assert name in result.stderr
    assert "sync365 demo" in result.stderr


def test_sync_exits_0_with_failing_customers_then_1_when_the_partner_token_dies(
    configured: tuple[SimulatorServer, dict[str, str]], tmp_path: Path
) -> None:
    sim, env = configured
    sim.control.revoke_consent(HEALTHY_B)

    first = run_sync365(["sync"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "consent_revoked" in first.stdout
    assert "Beta Logistics" in first.stdout, "the failing customer is named"
    status = run_sync365(["status"], env, tmp_path)
    assert status.returncode == 0
    assert "consent_revoked" in status.stdout
    before = license_facts(tmp_path)
    assert before

    sim.control.set_partner_refresh_token_state("expired")
    (tmp_path / "token_cache.json").unlink()
    second = run_sync365(["sync"], env, tmp_path)

    assert second.returncode == 1
    assert "AADSTS700082" in second.stderr
    assert "sync365 consent" in second.stderr
    assert "No license facts were written (earlier facts are kept as they were)" in second.stderr
    assert license_facts(tmp_path) == before
    assert env["SYNC365_CLIENT_SECRET"] not in second.stdout + second.stderr
    assert "Stack Trace" not in second.stderr, "an expected failure prints no stack"

    typo = run_sync365(["sync", "--tenant", "nope", "--verbose"], env, tmp_path)
    assert typo.returncode == 1
    assert "No active customer tenant matches 'nope'" in typo.stderr
    assert "Stack Trace" in typo.stderr, "--verbose shows the stacks"


def test_unreachable_endpoint_is_a_clear_partner_level_failure(
    configured: tuple[SimulatorServer, dict[str, str]], tmp_path: Path
) -> None:
    _, env = configured
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    env["SYNC365_AUTHORITY_HOST"] = f"https://127.0.0.1:{closed_port}"

    result = run_sync365(["sync"], env, tmp_path)

    assert result.returncode == 1
    assert f"127.0.0.1:{closed_port}" in result.stderr


def test_refresh_sku_names_writes_the_table_the_pipeline_reads(tmp_path: Path) -> None:
    source = tmp_path / "microsoft.csv"
    source.write_text(
        "\ufeffProduct_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,"
        "Service_Plans_Included_Friendly_Names\n"
        '"Microsoft 365 Business Premium, renamed",SPB,cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46,'
        "EXCHANGE_S_STANDARD,9aaf7827-d63c-4b61-89c3-182f06f82e5c,Exchange Online (Plan 1)\n",
        encoding="utf-8",
    )
    result = run_sync365(
        ["refresh-sku-names", "--from", str(source)], clean_env(tmp_path), tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert "1 SKUs" in result.stdout
    written = (tmp_path / "data" / "sku_names.csv").read_text()
    assert "Microsoft 365 Business Premium, renamed" in written


def test_a_warehouse_held_by_another_process_fails_clearly_and_loses_nothing(
    configured: tuple[SimulatorServer, dict[str, str]], tmp_path: Path, hold_duckdb: HoldDuckDB
) -> None:
    _, env = configured
    earlier = Warehouse(tmp_path / "sync365.duckdb")  # what an earlier sync left
    earlier.replace_license_facts(
        DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (5, 2)})}, partner_tenant_id=PARTNER
    )
    before = license_facts(tmp_path)
    # An analyst who opened the live file instead of the copy.
    holder = hold_duckdb(tmp_path / "sync365.duckdb", read_only=True)

    result = run_sync365(["sync"], env | {"SYNC365_LOCK_TIMEOUT": "0.5"}, tmp_path)

    assert result.returncode == 1
    assert f"locked by process {holder.pid}" in result.stderr
    assert "sync365_analyst.duckdb" in result.stderr, "it says where analysts should look"
    holder.release()
    assert license_facts(tmp_path) == before
