"""Benchmark: the whole sync (one real `full_sync` Dagster run, real DuckDB) at scale, against the
latency floor, the sequential way and one Dagster run per tenant, measured in the same invocation.

The simulator runs as its own process (its event loop must not share the pipeline's GIL) with a
generated scenario: `--tenants` customers (seed 365, 1% with broken access, 10% GDAP-only) and
Microsoft-like latency on every request (50 ms +/- 20 ms by default). This process is the
pipeline, on a Dagster instance whose storage is sqlite (`instance_for_test`: every event
persisted, as under `dagster dev`) or a throwaway real Postgres server (`--storage postgres`, the
server the deployment tests start). Measured, each cold measurement from a fresh token cache:

- our sync: `run_full_sync` (`--executor in_process`, the CLI's way) or `dg.execute_job` with the
  multiprocess executor; wall time includes run creation;
- the floor: requests per tenant on the critical path (token, SKU and subscription routes, the
  simulator's counts) x mean latency x ceil(tenants / concurrency), concurrency = workers x
  parallel chunk steps;
- the sequential way: `tenants.fetch_tenants` (what a chunk step calls) with one worker over a
  sample, scaled linearly: a lower bound of a sequential sync (no Dagster, no writes);
- one Dagster run per tenant: `license_sync` runs in process, one tenant each, over a sample,
  scaled linearly;
- the second day: the same sync again within the tokens' lifetime, the first day's snapshots
  dated a day earlier, after about 1 % of each tenant's licensed users changed (`change_users`:
  a third added, a third removed, the rest changed; at least one change in each tenant with
  users), so the users come by the delta query; its requests by route, and the users'
  requests, bytes (the simulator's response bodies), wall time against its floor and sampled
  peak memory beside the first day's.

Dagster's share is the part of the sync's wall time when none of our step bodies was running;
a body runs from its step's last input event (`STEP_INPUT`, else `STEP_START`) to its first
`STEP_OUTPUT` (else its end), from the stored event timestamps; overlapping steps (multiprocess)
count once. Peak RSS: this process (`ru_maxrss`), the largest step subprocess
(`RUSAGE_CHILDREN`) and the largest sum of both sampled every 0.5 s. The last line is one JSON
object of the figures.

    PYTHONPATH=. .venv/bin/python bench/sync_scale.py [--tenants 1000] [--latency-ms 50]
        [--storage sqlite|postgres] [--executor in_process|multiprocess]

About 1.5 minutes with the defaults on a 2-core machine, 2.5 with `--executor multiprocess`;
`--tenants 10000` about 6.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import yaml

import sync365_pipeline.simulator
from sync365_pipeline.core.settings import AccountSettings, load_run_settings
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.execution import cli_run_config, run_full_sync
from sync365_pipeline.defs.jobs import selection_config
from sync365_pipeline.licensing.selection import TenantSelection
from sync365_pipeline.licensing.tenants import fetch_tenants
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.simulator import SimulatorClient
from sync365_pipeline.warehouse import Warehouse

SCALE_SCENARIO = Path(sync365_pipeline.simulator.__file__).parent / "scenarios" / "scale.yaml"
EXPORT_LINES = 8  # the simulator's `export SYNC365_...=...` lines (see simulator/cli.py)
# A tenant's token, discovery and its Graph worker's reads (SKUs, then its subscriptions and
# its licensed users).
CRITICAL_ROUTES = (
    "identity.",
    "graph.subscribedSkus",
    "graph.directorySubscriptions",
    "graph.users",  # and graph.usersDelta
)
USERS_ROUTES = ("graph.users", "graph.usersDelta")
USERS_CHANGED_SHARE = 0.01  # of each tenant's licensed users, on the second day
BODY_ENDS = (
    dg.DagsterEventType.STEP_OUTPUT,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
)
RSS_SAMPLE_S = 0.5
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Simulator:
    """A simulator process: its `SYNC365_*` settings and a control client."""

    process: subprocess.Popen[str]
    environment: dict[str, str]
    control: SimulatorClient


def write_scenario(directory: Path, tenants: int, latency_ms: int, jitter_ms: int) -> Path:
    """The bundled `scale` scenario resized to `tenants` customers, with added latency."""
    scenario = yaml.safe_load(SCALE_SCENARIO.read_text(encoding="utf-8"))
    scenario["name"] = f"bench-{tenants}"
    scenario["generate"].update(count=tenants, fault_rate=0.01)
    scenario["settings"].update(latency_ms=latency_ms, latency_jitter_ms=jitter_ms)
    path = directory / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    return path


@contextmanager
def simulator_process(scenario: Path, directory: Path) -> Iterator[Simulator]:
    """`python -m sync365_pipeline.simulator` in its own process, stopped (SIGTERM) on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sync365_pipeline.simulator", "--scenario", str(scenario),
         "--port", "0", "--ca-path", str(directory / "simulator-ca.pem")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        environment = {}
        for _ in range(EXPORT_LINES):
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the simulator exited ({process.wait()}) before listening")
            name, _, value = shlex.split(line)[1].partition("=")
            environment[name] = value
        control = SimulatorClient(
            environment["SYNC365_AUTHORITY_HOST"], environment["SYNC365_CA_BUNDLE"]
        )
        try:
            yield Simulator(process, environment, control)
        finally:
            control.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def dagster_instance(storage: str) -> Iterator[dg.DagsterInstance]:
    """A throwaway Dagster instance on sqlite, or on a Postgres server started for it (with the
    batching switches docs/deployment.md recommends)."""
    if storage == "sqlite":
        with dg.instance_for_test() as instance:
            yield instance
        return
    # Imported here: only --storage postgres needs the `postgres` extra and a server.
    from sync365_pipeline_tests.deployment.postgres import PostgresServer, find_postgres_bin

    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries (apt-get install postgresql)")
    server = PostgresServer(bin_dir).start()
    try:
        server.create_database("dagster")
        os.environ["DAGSTER_EVENT_BATCH_SIZE"] = "1000"
        os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "true"
        overrides = {"storage": {"postgres": {"postgres_url": server.url("dagster")}}}
        with dg.instance_for_test(overrides=overrides) as instance:
            yield instance
    finally:
        server.stop()


def fresh_token_cache(directory: Path) -> None:
    """Point the pipeline (and the step processes it starts) at a new, empty token cache."""
    os.environ["SYNC365_TOKEN_CACHE"] = str(directory / f"token_cache-{uuid.uuid4().hex}.json")


class PeakMemory:
    """The RSS of this process plus its descendants (the simulator's tree excepted), sampled in
    a thread while the block runs: (timestamp, MB) pairs."""

    def __init__(self, excluded_pid: int) -> None:
        self.excluded_pid = excluded_pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.samples.append((time.time(), self._tree_rss_mb()))
            if self._stop.wait(RSS_SAMPLE_S):
                return

    def _tree_rss_mb(self) -> float:
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()
            except OSError:  # the process ended meanwhile
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        tree, frontier = {os.getpid()}, [os.getpid()]
        while frontier:
            parent = frontier.pop()
            for pid, ppid in parents.items():
                if ppid == parent and pid != self.excluded_pid and pid not in tree:
                    tree.add(pid)
                    frontier.append(pid)
        total = 0.0
        for pid in tree:
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_MB
            except OSError:
                continue
        return total


def cpu_seconds() -> float:
    """CPU of this process and of its waited-for children (the step processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class SyncFigures:
    """One measured sync."""

    run_id: str
    wall_s: float
    cpu_s: float | None  # None: the step processes were not our children (forkserver)
    events: int
    routes: dict[str, int]
    bytes_by_route: dict[str, int]
    steps: dict[str, float]  # seconds in each step body
    in_bodies_s: float  # wall time when at least one step body ran
    sampled_peak_mb: float
    step_peaks_mb: dict[str, float]  # the largest sample taken while each step body ran
    load_average: tuple[float, float, float]
    failure: str | None = None
    tenants: int = 0

    @property
    def requests(self) -> int:
        return sum(self.routes.values())

    @property
    def dagster_share(self) -> float:
        return max(0.0, self.wall_s - self.in_bodies_s) / self.wall_s


def step_bodies(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step body's (start, end) timestamps, from the events the run stored."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        key, kind = record.step_key, record.dagster_event_type
        if key is None or kind is None:
            continue
        if kind in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_INPUT):
            starts[key] = record.timestamp  # the last input event is the last one
        elif kind in BODY_ENDS:
            ends.setdefault(key, record.timestamp)  # the first output, else the step's end
    return {key: (start, ends[key]) for key, start in starts.items() if ends.get(key, 0) >= start}


def covered_seconds(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of `intervals`."""
    total, reached = 0.0, -math.inf
    for start, end in sorted(intervals):
        if end > reached:
            total += end - max(start, reached)
            reached = end
    return total


def full_sync_job() -> dg.JobDefinition:
    """Module level, so that Dagster can rebuild the job in each step's process."""
    return defs.resolve_job_def("full_sync")


def launch_sync(instance: dg.DagsterInstance, args: argparse.Namespace) -> tuple[str, str | None]:
    """One `full_sync` run; returns its run id and its failure, if any."""
    if args.executor == "in_process":
        run = run_full_sync(defs, instance)
        return run.run_id, run.failure
    multiprocess: dict[str, Any] = {"max_concurrent": args.max_concurrent}
    if args.start_method == "forkserver":  # step processes forked from one that imported us
        preload = {"preload_modules": ["sync365_pipeline.defs.definitions"]}
        multiprocess["start_method"] = {"forkserver": preload}
    run_config = {**cli_run_config(), "execution": {"config": {"multiprocess": multiprocess}}}
    result = dg.execute_job(dg.reconstructable(full_sync_job), instance, run_config=run_config)
    return result.run_id, None if result.success else "the run failed (see its events)"


def steps_are_children(args: argparse.Namespace) -> bool:
    """Whether every step process is this process's child, which `RUSAGE_CHILDREN` counts once
    it is waited for; under forkserver they are the fork server's children."""
    return not (args.executor == "multiprocess" and args.start_method == "forkserver")


def measure_sync(
    simulator: Simulator, instance: dg.DagsterInstance, args: argparse.Namespace
) -> SyncFigures:
    """Run one sync and gather its figures."""
    simulator.control.reset_request_counts()
    cpu_before = cpu_seconds()
    with PeakMemory(simulator.process.pid) as memory:
        started = time.perf_counter()
        run_id, failure = launch_sync(instance, args)
        wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    counts = simulator.control.request_counts()
    bodies = step_bodies(instance, run_id)
    return SyncFigures(
        run_id=run_id,
        wall_s=wall,
        cpu_s=cpu if steps_are_children(args) else None,
        events=len(instance.all_logs(run_id)),
        routes=counts["by_route"],
        bytes_by_route=counts["bytes_by_route"],
        steps={key: end - start for key, (start, end) in bodies.items()},
        in_bodies_s=covered_seconds(list(bodies.values())),
        sampled_peak_mb=max((mb for _, mb in memory.samples), default=0.0),
        step_peaks_mb={
            key: max((mb for at, mb in memory.samples if start <= at <= end), default=0.0)
            for key, (start, end) in bodies.items()
        },
        load_average=os.getloadavg(),
        failure=failure,
    )


def a_day_earlier(warehouse: Warehouse) -> None:
    """Date every snapshot of the first sync a day earlier, so the second sync writes the next
    day's slices (as a daily sync does) rather than replacing the same day's."""
    with duckdb.connect(str(warehouse.path)) as con:
        dated = con.execute(
            "SELECT table_name FROM duckdb_columns() WHERE column_name = 'snapshot_date' "
            "AND NOT internal AND schema_name = 'main' "
            "AND table_name IN (SELECT table_name FROM duckdb_tables())"
        ).fetchall()
        for (table,) in dated:
            con.execute(f"UPDATE {table} SET snapshot_date = snapshot_date - 1")  # noqa: S608


def change_users(simulator: Simulator, warehouse: Warehouse) -> int:
    """A day's changes in every tenant with users: `USERS_CHANGED_SHARE` of its licensed users
    (at least one), a third added, a third removed, the rest changed. Returns the changes."""
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        licensed_by_tenant = con.execute(
            "SELECT tenant_id, count(DISTINCT user_id) FROM current_user_licenses GROUP BY ALL"
        ).fetchall()
    total = 0
    for tenant_id, licensed in licensed_by_tenant:
        changes = max(1, round(licensed * USERS_CHANGED_SHARE))
        added = removed = changes // 3
        simulator.control.change_users(
            tenant_id, added=added, removed=removed, changed=changes - added - removed
        )
        total += changes
    return total


def sequential_seconds(tenant_ids: list[str], directory: Path) -> float:
    """Seconds `fetch_tenants` takes over `tenant_ids` with one worker, from a fresh token cache;
    the partner's own sign-in is done before the clock starts."""
    fresh_token_cache(directory)
    settings = AccountSettings.from_env()
    with MicrosoftCloud.from_settings(settings, saves_tokens=False) as cloud:
        cloud.tokens.partner_center_token()
        started = time.perf_counter()
        fetched = fetch_tenants(cloud, tenant_ids, max_workers=1, users=settings.users)
        seconds = time.perf_counter() - started
    assert len(fetched) == len(tenant_ids)
    return seconds


def run_per_tenant_seconds(
    instance: dg.DagsterInstance, tenant_ids: list[str], directory: Path
) -> float:
    """Seconds that one in-process `license_sync` run per tenant takes over `tenant_ids`, from a
    fresh token cache."""
    fresh_token_cache(directory)
    job = defs.resolve_job_def("license_sync")
    started = time.perf_counter()
    for tenant_id in tenant_ids:
        run_config = {**cli_run_config(), **selection_config(TenantSelection((tenant_id,)))}
        result = job.execute_in_process(instance=instance, run_config=run_config)
        assert result.success, tenant_id
    return time.perf_counter() - started


def show(label: str, value: str) -> None:
    print(f"  {label:<44} {value}")


def per_tenant_routes(figures: SyncFigures, tenants: int) -> dict[str, float]:
    return {
        route: round(count / tenants, 3)
        for route, count in sorted(figures.routes.items(), key=lambda item: -item[1])
    }


def report_sync(label: str, figures: SyncFigures, tenants: int) -> None:
    print(f"\n{label}: run {figures.run_id}")
    show("wall time (run creation included)", f"{figures.wall_s:8.2f} s  "
         f"{tenants / figures.wall_s:7.1f} tenants/s")  # fmt: skip
    for step, seconds in sorted(figures.steps.items(), key=lambda item: -item[1])[:8]:
        show(f"  body of {step}", f"{seconds:8.2f} s")
    show("Dagster's own share of the wall time", f"{figures.dagster_share:8.1%}   "
         f"({figures.wall_s - figures.in_bodies_s:.2f} s outside our step bodies)")  # fmt: skip
    if figures.cpu_s is None:
        show("CPU (pipeline and step processes)", "not measured: forkserver's step processes")
    else:
        show("CPU (pipeline and step processes)", f"{figures.cpu_s:8.2f} s  "
             f"{figures.cpu_s / tenants * 1000:7.2f} ms per tenant")  # fmt: skip
    show("Dagster events stored", f"{figures.events:8d}    "
         f"{figures.events / tenants:.3f} per tenant")  # fmt: skip
    show("HTTP requests", f"{figures.requests:8d}    {figures.requests / tenants:.3f} per tenant")
    for route, count in sorted(figures.routes.items(), key=lambda item: -item[1]):
        show(f"  {route}", f"{count:8d}    {count / tenants:.3f} per tenant")
    show(
        "load average (1, 5, 15 min) at its end", " ".join(f"{x:.2f}" for x in figures.load_average)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000, help="customers, up to 10,000")
    parser.add_argument("--latency-ms", type=int, default=50, help="added to every request")
    parser.add_argument("--jitter-ms", type=int, default=20, help="uniform +/- on the latency")
    parser.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--executor", choices=("in_process", "multiprocess"), default="in_process")
    parser.add_argument("--max-concurrent", type=int, default=2, help="multiprocess steps at once")
    parser.add_argument(
        "--start-method",
        choices=("spawn", "forkserver"),
        default="spawn",
        help="multiprocess: Dagster's default (spawn), or forkserver preloading our definitions",
    )
    parser.add_argument("--sequential-sample", type=int, default=48, help="tenants, 1 worker")
    parser.add_argument("--run-per-tenant-sample", type=int, default=16, help="one run each")
    args = parser.parse_args()

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sync365-bench-") as scratch:
        directory = Path(scratch)
        scenario = write_scenario(directory, args.tenants, args.latency_ms, args.jitter_ms)
        with (
            simulator_process(scenario, directory) as simulator,
            dagster_instance(args.storage) as instance,
        ):
            os.environ.update(simulator.environment)
            os.environ["SYNC365_DUCKDB_PATH"] = str(directory / "sync365.duckdb")
            fresh_token_cache(directory)
            settings = load_run_settings()
            print(
                f"{args.tenants} tenants, latency {args.latency_ms} +/- {args.jitter_ms} ms "
                f"(simulator in its own process), {args.storage} storage, {args.executor} "
                f"executor ({args.start_method} if multiprocess), {settings.max_workers} workers "
                f"per chunk of {settings.chunk_size}; "
                f"{os.cpu_count()} CPUs, load average at start "
                + " ".join(f"{x:.2f}" for x in load_start),
                flush=True,
            )
            cold = measure_sync(simulator, instance, args)
            peak_self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            peak_child_mb = (
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
                if args.executor == "multiprocess" and steps_are_children(args)
                else None
            )
            if cold.failure:
                raise SystemExit(f"the sync failed: {cold.failure}")
            warehouse = Warehouse.from_settings(settings)
            changed_users = change_users(simulator, warehouse)
            a_day_earlier(warehouse)
            warm = measure_sync(simulator, instance, args)
            tenant_ids = warehouse.active_tenants()
            tenants = len(tenant_ids)
            sequential = sequential_seconds(tenant_ids[: args.sequential_sample], directory)
            per_tenant_runs = run_per_tenant_seconds(
                instance, tenant_ids[: args.run_per_tenant_sample], directory
            )
    concurrency = settings.max_workers * (
        1 if args.executor == "in_process" else min(args.max_concurrent, chunks_of(cold))
    )
    summary = report(
        args, tenants, cold, warm, concurrency,
        sequential_s=sequential / min(args.sequential_sample, tenants) * tenants,
        run_per_tenant_s=per_tenant_runs / min(args.run_per_tenant_sample, tenants) * tenants,
        peak_self_mb=peak_self_mb, peak_child_mb=peak_child_mb, changed_users=changed_users,
    )  # fmt: skip
    print(json.dumps(summary))


def chunks_of(figures: SyncFigures) -> int:
    return sum(1 for step in figures.steps if "fetch_tenant_chunk" in step) or 1


def report(
    args: argparse.Namespace,
    tenants: int,
    cold: SyncFigures,
    warm: SyncFigures,
    concurrency: int,
    *,
    sequential_s: float,
    run_per_tenant_s: float,
    peak_self_mb: float,
    peak_child_mb: float | None,
    changed_users: int,
) -> dict[str, Any]:
    """Print the figures side by side; return the summary the last line shows."""
    critical, floor = floor_of(cold, tenants, args.latency_ms, concurrency)
    report_sync("Cold sync (fresh token cache)", cold, tenants)
    peak_mb = max(peak_self_mb, cold.sampled_peak_mb)
    show("peak RSS: pipeline process (ru_maxrss)", f"{peak_self_mb:8.0f} MB")
    step_peak = "       - (none of ours)" if peak_child_mb is None else f"{peak_child_mb:8.0f} MB"
    show("peak RSS: largest step process (RUSAGE_CHILDREN)", step_peak)
    show("peak RSS: pipeline + step processes, sampled", f"{cold.sampled_peak_mb:8.0f} MB")
    for step, mb in sorted(cold.step_peaks_mb.items(), key=lambda item: -item[1])[:4]:
        show(f"  sampled while {step} ran", f"{mb:8.0f} MB")
    report_sync(f"Second day (same token cache, {changed_users} users changed)", warm, tenants)
    identity = sum(count for route, count in warm.routes.items() if route.startswith("identity."))
    show("identity requests (expected 0)", f"{identity:8d}")
    days = {
        "first": users_figures(cold, tenants, args.latency_ms, concurrency),
        "second": users_figures(warm, tenants, args.latency_ms, concurrency),
    }
    print(f"\nUsers, first day (full reads) and second day (delta, {changed_users} changed)")
    print(f"  {'day':<8} {'requests':>9} {'MB':>9} {'wall s':>8} {'floor s':>8} {'peak MB':>8}")
    for day, figures in days.items():
        print(
            f"  {day:<8} {figures['users_requests']:9d} {figures['users_mb']:9.2f} "
            f"{figures['wall_s']:8.2f} {figures['floor_s']:8.2f} "
            f"{figures['peak_rss_sampled_mb']:8d}"
        )
    ratios = {
        key: round(days["second"][key] / days["first"][key], 3)
        for key in ("users_requests", "users_mb", "wall_s", "peak_rss_sampled_mb")
        if days["first"][key]
    }
    print("  second day / first day: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))

    print(f"\nSide by side ({tenants} tenants, {args.latency_ms} ms mean latency)")
    print(f"  {'way':<58} {'seconds':>9} {'ours is':>10}")
    rows = [
        (f"our sync ({args.executor}, {args.storage})", cold.wall_s, ""),
        (f"floor: {critical:.3f} req x {args.latency_ms} ms x ceil({tenants}/{concurrency})",
         floor, f"{cold.wall_s / floor:.2f}x it"),
        ("sequential way (1 worker, sample scaled)", sequential_s,
         f"{sequential_s / cold.wall_s:.1f}x faster"),
        ("one Dagster run per tenant (in process, sample scaled)", run_per_tenant_s,
         f"{run_per_tenant_s / cold.wall_s:.1f}x faster"),
    ]  # fmt: skip
    for way, seconds, ratio in rows:
        print(f"  {way:<58} {seconds:9.2f} {ratio:>10}")
    return {
        "tenants": tenants,
        "storage": args.storage,
        "executor": args.executor,
        "start_method": args.start_method if args.executor == "multiprocess" else None,
        "latency_ms": args.latency_ms,
        "wall_s": round(cold.wall_s, 2),
        "floor_s": round(floor, 2),
        "vs_floor": round(cold.wall_s / floor, 2),
        "sequential_s": round(sequential_s, 1),
        "vs_sequential": round(sequential_s / cold.wall_s, 1),
        "run_per_tenant_s": round(run_per_tenant_s, 1),
        "vs_run_per_tenant": round(run_per_tenant_s / cold.wall_s, 1),
        "peak_rss_mb": round(peak_mb),
        "peak_rss_step_process_mb": None if peak_child_mb is None else round(peak_child_mb),
        "peak_rss_sampled_mb": round(cold.sampled_peak_mb),
        "requests_per_tenant": round(cold.requests / tenants, 3),
        "requests_per_tenant_by_route": per_tenant_routes(cold, tenants),
        "warm_requests_by_route": warm.routes,
        "warm_wall_s": round(warm.wall_s, 2),
        "users_changed_second_day": changed_users,
        "users_by_day": days,
        "users_second_day_ratio": ratios,
        "events_per_tenant": round(cold.events / tenants, 3),
        "dagster_share": round(cold.dagster_share, 3),
        "cpu_ms_per_tenant": None if cold.cpu_s is None else round(cold.cpu_s / tenants * 1000, 2),
        "load_average": [round(x, 2) for x in cold.load_average],
    }


def floor_of(
    figures: SyncFigures, tenants: int, latency_ms: int, concurrency: int
) -> tuple[float, float]:
    """(critical-path requests per tenant, the floor in seconds) of one sync."""
    critical = (
        sum(count for route, count in figures.routes.items() if route.startswith(CRITICAL_ROUTES))
        / tenants
    )
    return critical, critical * latency_ms / 1000 * math.ceil(tenants / concurrency)


def users_figures(
    figures: SyncFigures, tenants: int, latency_ms: int, concurrency: int
) -> dict[str, Any]:
    """One day's users cost: requests and response bytes of the users routes, and the sync's
    wall time, floor and sampled peak memory."""
    return {
        "users_requests": sum(figures.routes.get(route, 0) for route in USERS_ROUTES),
        "users_mb": round(
            sum(figures.bytes_by_route.get(route, 0) for route in USERS_ROUTES) / 1e6, 2
        ),
        "wall_s": round(figures.wall_s, 2),
        "floor_s": round(floor_of(figures, tenants, latency_ms, concurrency)[1], 2),
        "peak_rss_sampled_mb": round(figures.sampled_peak_mb),
    }


if __name__ == "__main__":
    main()
