"""SIGKILL at seeded random moments of real syncs (fetching, writing statuses, Dagster's
bookkeeping, writing facts, publishing the analyst copy): after every kill the warehouse, the
analyst copy and the token cache are valid and each tenant's facts are the old set or the new
set; then one sync completes by itself and leaves no half-written file behind."""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline_tests.scenarios import HEALTHY_A, HEALTHY_B, pipeline_scenario

from .processes import SYNC365, clean_env, run_sync365

pytestmark = pytest.mark.e2e

KILLS = 25
SEED = 365
HANG_S = 120
Facts = dict[str, frozenset[tuple[str, int, int]]]


def facts_by_tenant(path: Path) -> Facts:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT tenant_id, sku_id, enabled_units, consumed_units FROM license_facts"
        ).fetchall()
    result: dict[str, set[tuple[str, int, int]]] = {}
    for tenant, sku, enabled, consumed in rows:
        result.setdefault(tenant, set()).add((sku, enabled, consumed))
    return {tenant: frozenset(skus) for tenant, skus in result.items()}


def killed_sync(env: dict[str, str], cwd: Path, after_s: float | None) -> tuple[str, float]:
    """Start `sync365 sync`, wait until it prints that it syncs, then SIGKILL it `after_s` later
    (None: let it finish); returns what it printed and how long it ran after that first line."""
    log = cwd / "sync.out"
    with log.open("w") as out:
        process = subprocess.Popen([*SYNC365, "sync"], env=env, cwd=cwd, stdout=out, stderr=out)
        deadline = time.monotonic() + HANG_S
        while "Syncing" not in log.read_text() and process.poll() is None:
            assert time.monotonic() < deadline, "the sync never started"
            time.sleep(0.02)
        started = time.monotonic()
        if after_s is not None:
            time.sleep(after_s)
            process.kill()
        process.wait(timeout=HANG_S)
    return log.read_text(), time.monotonic() - started


def test_seeded_kills_never_corrupt_or_wedge(
    simulator_factory: Callable[[Any], SimulatorServer], tmp_path: Path
) -> None:
    sim = simulator_factory(pipeline_scenario(HEALTHY_A, HEALTHY_B))
    env = clean_env(tmp_path) | sim.environment()
    env["SYNC365_TOKEN_CACHE"] = str(tmp_path / "token_cache.json")
    env["SYNC365_DUCKDB_PATH"] = str(tmp_path / "sync365.duckdb")
    warehouse = tmp_path / "sync365.duckdb"
    analyst_copy = tmp_path / "sync365_analyst.duckdb"

    printed, _ = killed_sync(env, tmp_path, after_s=None)  # creates the warehouse and storage
    printed, sync_s = killed_sync(env, tmp_path, after_s=None)  # how long a sync takes
    assert "Tenants by status" in printed, printed
    old = facts_by_tenant(warehouse)
    for customer in pipeline_scenario(HEALTHY_A, HEALTHY_B)["customers"]:
        for sku in sim.control.expected_subscribed_skus(customer["tenant_id"]):
            sim.control.set_sku_units(customer["tenant_id"], sku["skuId"], consumed=1)
    rng = random.Random(SEED)
    recovered = new_facts = 0

    for kill in range(KILLS):
        # Anywhere from the first line to the end of a whole sync: fetching,
        # statuses, Dagster's bookkeeping, facts, the analyst copy.
        printed, _ = killed_sync(env, tmp_path, after_s=rng.uniform(0.0, sync_s))
        recovered += "Marked" in printed
        now = facts_by_tenant(warehouse)
        new_facts += sum(skus != old[tenant] for tenant, skus in now.items())
        assert set(now) == set(old), f"kill {kill}: a tenant's facts vanished"
        for tenant, skus in now.items():
            assert skus in (old[tenant], frozenset((s, e, 1) for s, e, _ in old[tenant])), (
                f"kill {kill}: tenant {tenant} holds a mix of old and new facts"
            )
        if analyst_copy.exists():
            facts_by_tenant(analyst_copy)  # opens: published whole or not at all
        cache = json.loads((tmp_path / "token_cache.json").read_text())
        assert cache["RefreshToken"], f"kill {kill}: the refresh token is gone"

    last = run_sync365(["sync"], env, tmp_path)
    assert last.returncode == 0, last.stderr
    final = facts_by_tenant(warehouse)
    assert all(consumed == 1 for skus in final.values() for _, _, consumed in skus)
    assert list(tmp_path.glob(".*.tmp")) == [], "a killed publisher's temporary copy was left"
    assert recovered > 0, "no kill left a run behind: the seeds never hit a run"
    print(
        f"{KILLS} kills over {sync_s:.1f} s syncs: {recovered} later syncs cleaned up a killed "
        f"one's runs; {new_facts} of {KILLS * len(old)} tenant checks found the new facts"
    )
