"""`sync365` run as a user runs it: a real process, with an environment of its own; and what a
test waits for and reads back while and after it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from sync365_pipeline.simulator import SimulatorServer

SYNC365 = [sys.executable, "-m", "sync365_pipeline.commands.cli"]
HANG_S = 120  # only a hang comes near this; every wait below ends on an event
# Customers' Graph answers take seconds, so a sync sits in its fetch.
SLOW_GRAPH = {"type": "latency", "ms": 1500, "service": "graph"}


def clean_env(tmp_path: Path) -> dict[str, str]:
    """This shell's environment without any SYNC365_* or DAGSTER_* variable; DAGSTER_HOME in
    `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC365_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    return env


def simulator_env(sim: SimulatorServer, tmp_path: Path) -> dict[str, str]:
    """`clean_env` configured for the simulator, with the token cache and the warehouse in
    `tmp_path`."""
    return clean_env(tmp_path) | {
        **sim.environment(),
        "SYNC365_TOKEN_CACHE": str(tmp_path / "token_cache.json"),
        "SYNC365_DUCKDB_PATH": str(tmp_path / "sync365.duckdb"),
    }


def run_sync365(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SYNC365, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def start_sync(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SYNC365, "sync"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_fetching(sim: SimulatorServer, process: subprocess.Popen[str]) -> None:
    """Return once the license run asks Graph for a customer's SKUs (its slot is taken)."""
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        routes = sim.control.request_counts()["by_route"]
        if any("subscribedSkus" in route for route in routes):
            return
        time.sleep(0.05)
    pytest.fail("the sync never reached the fetch")


def fact_tenants(tmp_path: Path) -> set[str]:
    with duckdb.connect(str(tmp_path / "sync365.duckdb"), read_only=True) as con:
        return {row[0] for row in con.execute("SELECT tenant_id FROM license_facts").fetchall()}
