"""A sync stopped at the worst moment (fetching, its warehouse slot taken) never wedges the next
one, and two syncs started together take turns, saying so. (SIGKILL at any moment, and the
cleanup after it, is the kill loop's: test_kill_loop.py.)"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline_tests.scenarios import HEALTHY_A, HEALTHY_B, HEALTHY_C, pipeline_scenario

from .processes import SYNC365, clean_env, run_sync365

pytestmark = pytest.mark.e2e

HANG_S = 120  # only a hang comes near this; every wait below ends on an event
SLOW_GRAPH = {"type": "latency", "ms": 1500, "service": "graph"}


@pytest.fixture
def slow(
    simulator_factory: Callable[[Any], SimulatorServer], tmp_path: Path
) -> tuple[SimulatorServer, dict[str, str]]:
    """A simulator whose customers' Graph answers take seconds, so a sync sits in its fetch."""
    scenario = pipeline_scenario()
    for customer in scenario["customers"]:
        customer["faults"] = [SLOW_GRAPH]
    sim = simulator_factory(scenario)
    env = clean_env(tmp_path) | sim.environment()
    env["SYNC365_TOKEN_CACHE"] = str(tmp_path / "token_cache.json")
    env["SYNC365_DUCKDB_PATH"] = str(tmp_path / "sync365.duckdb")
    return sim, env


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


def test_sigterm_stops_a_fetching_sync_cleanly_and_the_next_sync_completes(slow, tmp_path):
    sim, env = slow
    process = start_sync(env, tmp_path)
    wait_until_fetching(sim, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=HANG_S)

    assert process.returncode == 130, stderr
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("Sync stopped before it finished. No license facts were written")
    for customer in pipeline_scenario()["customers"]:
        sim.control.clear_faults(customer["tenant_id"])
    after = run_sync365(["sync"], env, tmp_path)
    assert after.returncode == 0, after.stderr
    assert "Marked" not in after.stdout, "a stopped sync leaves nothing to recover"
    assert fact_tenants(tmp_path) == {HEALTHY_A, HEALTHY_B, HEALTHY_C}


def test_two_syncs_started_together_take_turns_and_the_second_says_why(slow, tmp_path):
    sim, env = slow
    first = start_sync(env, tmp_path)
    wait_until_fetching(sim, first)
    second = start_sync(env, tmp_path)
    _, first_err = first.communicate(timeout=HANG_S)
    second_out, second_err = second.communicate(timeout=HANG_S)

    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_err
    assert "Waiting for the sync already running" in second_err
    assert "Marked" not in second_out
    assert fact_tenants(tmp_path) == {HEALTHY_A, HEALTHY_B, HEALTHY_C}
