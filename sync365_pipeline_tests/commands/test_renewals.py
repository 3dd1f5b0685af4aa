"""`sync365 demo` ends with the renewal actions it found, and `sync365 renewals` prints them as a
table that fits the terminal (real processes, the demo scenario)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .processes import clean_env, run_sync365

pytestmark = pytest.mark.e2e

WIDTH = 100


def test_the_demo_ends_with_its_renewal_actions_and_renewals_prints_them(tmp_path: Path) -> None:
    env = clean_env(tmp_path) | {"COLUMNS": str(WIDTH)}
    demo = run_sync365(["demo", "--days", "1"], env, tmp_path)
    assert demo.returncode == 0, demo.stderr

    tail = demo.stdout[demo.stdout.rindex("Renewal actions found") :].splitlines()
    header, *actions = tail[1:]
    assert "act by" in header
    assert all(len(line) <= WIDTH for line in tail)
    customers = [line.split()[1] for line in actions]
    assert customers == ["Fabrikam", "Maple", "Fabrikam", "Bluebird"], "soonest first"
    assert not any("monthly" in line and "True" in line for line in actions), "no rollovers"

    demo_dir = tmp_path / "data" / "demo"
    warehouse = {
        **env,
        "SYNC365_DUCKDB_PATH": str(demo_dir / "sync365.duckdb"),
        "SYNC365_TOKEN_CACHE": str(demo_dir / "token_cache.json"),
        "SYNC365_PARTNER_TENANT_ID": "43cd9b05-1504-44ab-8239-326ded6819da",
    }
    listed = run_sync365(["renewals"], warehouse, tmp_path)
    with_monthly = run_sync365(["renewals", "--monthly"], warehouse, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [header, *actions]
    assert len(with_monthly.stdout.splitlines()) > len(listed.stdout.splitlines())
