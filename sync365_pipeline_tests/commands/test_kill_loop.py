"""SIGKILL at seeded random moments of real syncs, from process start-up to the exit: after
every kill the warehouse, the analyst copy and the token cache are valid and each tenant's facts
are the old set or the new set; then one sync completes by itself and leaves no half-written
file behind. Each kill's phase is read from what it left (output, rows, files), and the kills
must have covered start-up, fetching, writing and publishing."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pytest

from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline.warehouse.connection import restore_interrupted_checkpoint
from sync365_pipeline_tests.scenarios import HEALTHY_A, HEALTHY_B, pipeline_scenario

from .processes import SYNC365, clean_env, run_sync365

pytestmark = pytest.mark.e2e

# `make soak` runs the loop with many more kills than `make test`'s.
KILLS = int(os.environ.get("KILL_LOOP_KILLS", "14"))
SEED = 365
HANG_S = 120
Facts = dict[str, frozenset[tuple[str, int, int]]]


def facts_by_tenant(path: Path) -> Facts:
    """Read as the pipeline reads: a checkpoint the kill cut short is undone first."""
    restore_interrupted_checkpoint(path)
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT tenant_id, sku_id, enabled_units, consumed_units FROM license_facts"
        ).fetchall()
    result: dict[str, set[tuple[str, int, int]]] = {}
    for tenant, sku, enabled, consumed in rows:
        result.setdefault(tenant, set()).add((sku, enabled, consumed))
    return {tenant: frozenset(skus) for tenant, skus in result.items()}


def opened_after_kill(path: Path, what: str) -> Facts:
    """The facts of the warehouse a kill left; if DuckDB refuses the file, keep a copy of it and
    its WAL beside the test's files and say whether a read-write open (what the next sync does:
    it replays the WAL) still reads it, so a failure tells a torn file from a reader's problem."""
    try:
        return facts_by_tenant(path)
    except duckdb.Error as exc:
        kept = path.with_name("after-failed-open")
        kept.mkdir(exist_ok=True)
        for name in (path.name, f"{path.name}.wal"):
            if (path.parent / name).exists():
                shutil.copy2(path.parent / name, kept / name)
        try:
            duckdb.connect(str(path)).close()
            reopened = "a read-write open succeeds"
        except duckdb.Error as again:
            reopened = f"a read-write open fails too ({again})"
        raise AssertionError(
            f"{what}: DuckDB refused the warehouse ({exc}); {reopened}; "
            f"the files are kept in {kept}"
        ) from exc


def license_run_writes(path: Path) -> tuple[Any, ...]:
    """Changes when a license run writes: its raw payloads (replaced), then its statuses."""
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute(
            "SELECT (SELECT count(*) FROM tenant_status), "
            "(SELECT max(fetched_at) FROM raw_subscribed_skus)"
        ).fetchone()
    return tuple(row or ())


def file_version(*paths: Path) -> tuple[tuple[int, int] | None, ...]:
    """Changes when a file is written or replaced (the analyst copy is published by a rename)."""
    return tuple(_version(path) for path in paths)


def _version(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:  # not there, or removed while we looked (a checkpointed WAL)
        return None
    return status.st_ino, status.st_mtime_ns


@dataclass(frozen=True)
class Kill:
    """When to SIGKILL a sync: `delay_s` after its start, after it printed its first line, after
    its first write to the warehouse once every tenant was fetched, or as soon as it starts
    writing the analyst copy."""

    after: Literal["start", "first line", "written", "publishing"]
    delay_s: float = 0.0


@dataclass(frozen=True)
class Ended:
    printed: str
    pid: int
    first_line_s: float | None  # from the start to the "Syncing" line (None: never printed)
    run_s: float  # from the start to the end
    wrote_after_fetching: bool  # the warehouse changed after every tenant was fetched


FETCHED_ALL = re.compile(r"fetched (\d+)/\1 tenants")


def killed_sync(env: dict[str, str], cwd: Path, kill: Kill | None) -> Ended:
    """Run `sync365 sync` and SIGKILL it as `kill` says (None: let it finish), watching its
    output and the warehouse files while it runs."""
    log = cwd / "sync.out"
    warehouse_files = [cwd / "sync365.duckdb", cwd / "sync365.duckdb.wal"]
    with log.open("w") as out:
        process = subprocess.Popen([*SYNC365, "sync"], env=env, cwd=cwd, stdout=out, stderr=out)
        started = time.monotonic()
        publishing = cwd / f".sync365_analyst.duckdb.{process.pid}.tmp"
        first_line_s = before_writes = kill_at = None
        wrote = False
        if kill is not None and kill.after == "start":
            kill_at = started + kill.delay_s
        while process.poll() is None:
            now = time.monotonic()
            assert now - started < HANG_S, "the sync hangs"
            if kill_at is not None and now >= kill_at:
                process.kill()
                break
            if kill is not None and kill.after == "publishing":
                kill_at = now if publishing.exists() else None
                time.sleep(0.002)  # the copy takes a few tens of milliseconds
                continue
            printed = log.read_text()
            if first_line_s is None and "Syncing" in printed:
                first_line_s = now - started
            if before_writes is None and FETCHED_ALL.search(printed):
                before_writes = file_version(*warehouse_files)
            wrote = wrote or (
                before_writes is not None and file_version(*warehouse_files) != before_writes
            )
            triggered = kill is not None and (
                (kill.after == "first line" and first_line_s is not None)
                or (kill.after == "written" and wrote)
            )
            if kill is not None and triggered and kill_at is None:
                kill_at = now + kill.delay_s
            time.sleep(0.01)
        process.wait(timeout=HANG_S)
    return Ended(log.read_text(), process.pid, first_line_s, time.monotonic() - started, wrote)


def phase_of(ended: Ended, cwd: Path, writes_before: object, copy_before: object) -> str:
    """Where the sync was when it died, from what it printed and left behind."""
    if "Syncing" not in ended.printed:
        return "start-up"  # imports, configuration, the sync lock: nothing printed yet
    if file_version(cwd / "sync365_analyst.duckdb") != copy_before:
        return "finishing"  # published: the summary, the exit
    if (cwd / f".sync365_analyst.duckdb.{ended.pid}.tmp").exists():
        return "publishing"
    if ended.wrote_after_fetching or license_run_writes(cwd / "sync365.duckdb") != writes_before:
        return "writing"  # raw payloads, statuses, Dagster's bookkeeping, the facts
    return "fetching"  # sign-in, discovery, the tenants' SKUs


def kill_plan(rng: random.Random, start_up_s: float, sync_s: float) -> list[Kill]:
    """KILLS seeded kills: a quarter during start-up, a fifth while writing, some while
    publishing (short windows a uniform draw would rarely hit), the rest anywhere in a sync."""
    plan = [Kill("start", rng.uniform(0.0, 0.8 * start_up_s)) for _ in range(KILLS // 4)]
    plan += [Kill("written", rng.uniform(0.0, 0.3)) for _ in range(KILLS // 5)]
    plan += [Kill("publishing") for _ in range(max(2, KILLS // 8))]
    plan += [Kill("first line", rng.uniform(0.0, sync_s)) for _ in range(KILLS - len(plan))]
    rng.shuffle(plan)
    return plan


# 14 real syncs and their kills: about 90 s on a quiet 2-core machine, four times that beside
# the rest of the suite; the suite's 300 s per test would cut it short without a hang to blame.
@pytest.mark.timeout(60 * KILLS)
def test_seeded_kills_never_corrupt_or_wedge(
    simulator_factory: Callable[[Any], SimulatorServer], tmp_path: Path
) -> None:
    sim = simulator_factory(pipeline_scenario(HEALTHY_A, HEALTHY_B))
    env = clean_env(tmp_path) | sim.environment()
    env["SYNC365_TOKEN_CACHE"] = str(tmp_path / "token_cache.json")
    env["SYNC365_DUCKDB_PATH"] = str(tmp_path / "sync365.duckdb")
    warehouse = tmp_path / "sync365.duckdb"
    analyst_copy = tmp_path / "sync365_analyst.duckdb"

    killed_sync(env, tmp_path, None)  # creates the warehouse and Dagster's storage
    warm = killed_sync(env, tmp_path, None)  # how long start-up and a sync take
    assert "Tenants by status" in warm.printed, warm.printed
    assert warm.first_line_s is not None
    start_up_s, sync_s = warm.first_line_s, warm.run_s - warm.first_line_s
    old = facts_by_tenant(warehouse)
    for customer in pipeline_scenario(HEALTHY_A, HEALTHY_B)["customers"]:
        for sku in sim.control.expected_subscribed_skus(customer["tenant_id"]):
            sim.control.set_sku_units(customer["tenant_id"], sku["skuId"], consumed=1)
    recovered = new_facts = 0
    phases: Counter[str] = Counter()

    for index, kill in enumerate(kill_plan(random.Random(SEED), start_up_s, sync_s)):
        writes_before = license_run_writes(warehouse)
        copy_before = file_version(analyst_copy)
        ended = killed_sync(env, tmp_path, kill)
        phase = phase_of(ended, tmp_path, writes_before, copy_before)
        phases[phase] += 1
        recovered += "Marked" in ended.printed
        now = opened_after_kill(warehouse, f"kill {index} ({kill}, {phase})")
        new_facts += sum(skus != old[tenant] for tenant, skus in now.items())
        assert set(now) == set(old), f"kill {index} ({kill}): a tenant's facts vanished"
        for tenant, skus in now.items():
            assert skus in (old[tenant], frozenset((s, e, 1) for s, e, _ in old[tenant])), (
                f"kill {index} ({kill}): tenant {tenant} holds a mix of old and new facts"
            )
        if analyst_copy.exists():
            facts_by_tenant(analyst_copy)  # opens: published whole or not at all
        cache = json.loads((tmp_path / "token_cache.json").read_text())
        assert cache["RefreshToken"], f"kill {index} ({kill}): the refresh token is gone"

    assert {"start-up", "fetching", "writing", "publishing"} <= set(phases), phases
    last = run_sync365(["sync"], env, tmp_path)
    assert last.returncode == 0, last.stderr
    final = facts_by_tenant(warehouse)
    assert all(consumed == 1 for skus in final.values() for _, _, consumed in skus)
    assert list(tmp_path.glob(".*.tmp")) == [], "a killed publisher's temporary copy was left"
    assert recovered > 0, "no kill left a run behind: the seeds never hit a run"
    print(
        f"{KILLS} kills over {start_up_s:.1f} s start-ups and {sync_s:.1f} s syncs, by phase "
        f"{dict(phases)}: {recovered} later syncs cleaned up a killed one's runs; {new_facts} "
        f"of {KILLS * len(old)} tenant checks found the new facts"
    )
