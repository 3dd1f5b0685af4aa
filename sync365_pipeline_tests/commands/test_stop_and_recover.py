"""A sync stopped at the worst moment (fetching, its warehouse slot taken) never wedges the next
one, and two syncs started together take turns, saying so. (SIGKILL at any moment, and the
cleanup after it, is the kill loop's: test_kill_loop.py.)"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline_tests.scenarios import HEALTHY_A, HEALTHY_B, HEALTHY_C, pipeline_scenario

from .processes import (
    HANG_S,
    SLOW_GRAPH,
    fact_tenants,
    run_sync365,
    simulator_env,
    start_sync,
    wait_until_fetching,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def slow(
    simulator_factory: Callable[[Any], SimulatorServer], tmp_path: Path
) -> tuple[SimulatorServer, dict[str, str]]:
    """A simulator whose customers' Graph answers take seconds, so a sync sits in its fetch."""
    scenario = pipeline_scenario()
    for customer in scenario["customers"]:
        customer["faults"] = [SLOW_GRAPH]
    sim = simulator_factory(scenario)
    return sim, simulator_env(sim, tmp_path)


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
