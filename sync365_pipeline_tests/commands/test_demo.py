"""`sync365 demo` as a user runs it: two partner accounts sharing a customer, and bad input."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sync365_pipeline.simulator import load_scenario

from .processes import clean_env, run_sync365

pytestmark = pytest.mark.e2e

CONTOSO = load_scenario("demo").partner
RELECLOUD = load_scenario("demo-acquired").partner
TAILSPIN = "17712324-64a7-4045-946f-b4f030aa97c8"  # in both scenarios


def query(path: Path, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, parameters).fetchall()


def test_demo_keeps_the_shared_customer_apart_per_partner(tmp_path: Path) -> None:
    result = run_sync365(["demo", "--days", "1"], clean_env(tmp_path), tmp_path)

    assert result.returncode == 0, result.stderr
    shared_line = (
        "Shared customer Tailspin Logistics Ltd, per partner account: Contoso Cloud Partners: via "
        "Graph; Relecloud IT Services: not reachable (consent_revoked, AADSTS65001)."
    )
    assert shared_line in result.stdout
    warehouse = tmp_path / "data" / "demo" / "sync365.duckdb"
    of_tailspin = " WHERE tenant_id = ?"
    statuses = query(
        warehouse,
        "SELECT partner_tenant_id, status, error_code FROM latest_tenant_status" + of_tailspin,
        [TAILSPIN],
    )
    assert set(statuses) == {
        (CONTOSO.tenant_id, "ok", None),
        (RELECLOUD.tenant_id, "consent_revoked", "AADSTS65001"),
    }
    access = query(
        warehouse,
        "SELECT partner_tenant_id, cpv_consent FROM customer_access" + of_tailspin,
        [TAILSPIN],
    )
    assert dict(access) == {CONTOSO.tenant_id: "not_needed", RELECLOUD.tenant_id: "already_granted"}
    facts = query(
        warehouse,
        "SELECT partner_tenant_id, sum(enabled_units) FROM current_license_facts"
        " WHERE tenant_id = ? GROUP BY 1",
        [TAILSPIN],
    )
    assert facts == [(CONTOSO.tenant_id, 173)], "Relecloud's loss lands no facts of its own"
    accounts_file = (tmp_path / "data" / "demo" / "sync365.toml").read_text()
    for secret in (CONTOSO.client_secret, RELECLOUD.client_secret, RELECLOUD.refresh_token):
        assert secret not in accounts_file + result.stdout + result.stderr


def test_one_scenario_runs_one_partner(tmp_path: Path) -> None:
    result = run_sync365(
        ["demo", "--scenario", "demo-acquired", "--days", "1"], clean_env(tmp_path), tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert "Shared customer" not in result.stdout
    partners = query(
        tmp_path / "data" / "demo" / "sync365.duckdb",
        "SELECT DISTINCT partner_tenant_id FROM latest_tenant_status",
    )
    assert partners == [(RELECLOUD.tenant_id,)]


def test_unknown_scenario_is_one_line_and_deletes_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "data" / "demo" / "earlier-demo.txt"
    marker.parent.mkdir(parents=True)
    marker.write_text("from an earlier demo")

    result = run_sync365(["demo", "--scenario", "nope"], clean_env(tmp_path), tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "--scenario: scenario 'nope' is neither a bundled scenario "
        "(demo, demo-acquired, scale) nor a readable file"
    ]
    assert marker.read_text() == "from an earlier demo"
    assert sorted(marker.parent.iterdir()) == [marker]
