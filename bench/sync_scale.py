"""Benchmark: the whole sync (real Dagster runs, real DuckDB) against a simulated MSP at scale.

The simulator runs as its own process (its event loop must not share this process's GIL) with a
generated scenario: `--tenants` customers (seed 365, 1% with broken access, 10% GDAP-only) and
Microsoft-like latency on every request (50 ms +/- 20 ms by default). This process is the
pipeline: `run_full_sync` (one `full_sync` run over every tenant) on a
sqlite-backed Dagster instance, as `dagster dev` would persist it. It prints wall time per run
and per step, tenants/s, HTTP requests made (the simulator's count), peak RSS and rows written.

Baselines measured in the same run, on a subset of tenants (`--subset`), calling
`tenants.fetch_tenants` (what the `subscribed_skus` step calls) with fresh clients:
- the sequential fetch (`SYNC365_MAX_WORKERS=1`) extrapolated to every tenant;
- the latency floor: ceil(tenants / workers) x (requests per tenant) x (mean latency).
The same subset is then fetched with other pool sizes (`--workers`) to show what the pool buys.

    .venv/bin/python bench/sync_scale.py [--tenants 1000] [--latency-ms 50] [--jitter-ms 20]
        [--subset 128] [--workers 1,8,16,32] [--max-workers 16]

About 1.5 minutes with the defaults on a 2-core machine; `--tenants 10000` takes about 10.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import yaml

import sync365_pipeline.simulator
from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.execution import run_full_sync
from sync365_pipeline.licensing.tenants import fetch_tenants
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.simulator import SimulatorClient

SCALE_SCENARIO = Path(sync365_pipeline.simulator.__file__).parent / "scenarios" / "scale.yaml"
EXPORT_LINES = 8  # the simulator's `export SYNC365_...=...` lines (see simulator/cli.py)


@dataclass
class Simulator:
    """A simulator process: its `SYNC365_*` settings and a control client."""

    process: subprocess.Popen[str]
    environment: dict[str, str]
    control: SimulatorClient


def write_scenario(
    directory: Path, tenants: int, latency_ms: int, jitter_ms: int, fault_rate: float = 0.01
) -> Path:
    """The bundled `scale` scenario resized to `tenants` customers, with added latency."""
    scenario = yaml.safe_load(SCALE_SCENARIO.read_text(encoding="utf-8"))
    scenario["name"] = f"bench-{tenants}"
    scenario["generate"].update(count=tenants, fault_rate=fault_rate)
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


def configure_pipeline(simulator: Simulator, directory: Path) -> Path:
    """Point the pipeline at the simulator, as a user would (environment), state in `directory`.

    Returns the warehouse path."""
    duckdb_path = directory / "sync365.duckdb"
    os.environ.update(simulator.environment)
    os.environ["SYNC365_TOKEN_CACHE"] = str(directory / "token_cache.json")
    os.environ["SYNC365_DUCKDB_PATH"] = str(duckdb_path)
    return duckdb_path


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB (Linux)."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    current_kib = next(int(line.split()[1]) for line in status.splitlines() if line[:6] == "VmRSS:")
    return current_kib / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_seconds(instance: dg.DagsterInstance, run_id: str) -> tuple[float, dict[str, float]]:
    """A run's duration and each step's, from the records Dagster keeps."""
    stats = instance.get_run_stats(run_id)
    steps = {
        step.step_key: (step.end_time or 0.0) - (step.start_time or 0.0)
        for step in instance.get_run_step_stats(run_id)
    }
    return (stats.end_time or 0.0) - (stats.start_time or 0.0), steps


@dataclass(frozen=True)
class FetchPoint:
    workers: int
    seconds: float
    cpu_seconds: float
    requests: int
    max_in_flight: int


def timed_fetch(control: SimulatorClient, tenant_ids: list[str], workers: int) -> FetchPoint:
    """`tenants.fetch_tenants` over `tenant_ids` with a fresh client (no access token cached, as at
    the start of every run); the partner's own sign-in is done before the clock starts."""
    os.environ["SYNC365_MAX_WORKERS"] = str(workers)
    with MicrosoftCloud.from_settings(AccountSettings.from_env()) as cloud:
        cloud.tokens.partner_center_token()
        control.reset_request_counts()
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        fetches = fetch_tenants(cloud, tenant_ids, max_workers=workers)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
    assert len(fetches) == len(tenant_ids)
    counts = control.request_counts()
    return FetchPoint(workers, seconds, cpu, counts["total"], counts["max_in_flight"])


def show(label: str, value: str) -> None:
    print(f"  {label:<36} {value}")


def full_sync(simulator: Simulator, duckdb_path: Path, args: argparse.Namespace) -> float:
    """Run and report the whole sync; returns the seconds of its `subscribed_skus` step."""
    os.environ["SYNC365_MAX_WORKERS"] = str(args.max_workers)
    control = simulator.control
    control.reset_request_counts()
    rss_before, _ = rss_mib()
    cpu_before = cpu_seconds()
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = run_full_sync(defs, instance)
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        _, peak = rss_mib()
        if not result.success:
            raise SystemExit(f"the sync failed: {result.failure}")
        license_s, license_steps = run_seconds(instance, result.run_id)
        events = len(instance.all_logs(result.run_id))
    counts = control.request_counts()
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        rows, ok, tenants = con.execute(
            "SELECT (SELECT count(*) FROM license_facts),"
            " (SELECT count(*) FROM tenant_status WHERE status = 'ok'),"
            " (SELECT count(*) FROM customers WHERE active)"
        ).fetchone() or (0, 0, 0)

    print(f"\nFull sync: run_full_sync, {tenants} tenants, max_workers {args.max_workers}")
    show("total wall time", f"{wall:8.2f} s    {tenants / wall:6.1f} tenants/s")
    show("full_sync run", f"{license_s:8.2f} s    {tenants / license_s:6.1f} tenants/s")
    for step, seconds in license_steps.items():
        show(f"  step {step}", f"{seconds:8.2f} s")
    show("outside the run", f"{wall - license_s:8.2f} s    (run creation)")
    show("full_sync events stored", f"{events:8d}      {events / tenants:.1f} per tenant")
    show("CPU time (pipeline)", f"{cpu:8.2f} s    {cpu / wall:.0%} of one core")
    show("peak RSS (pipeline)", f"{peak:8.0f} MiB  {rss_before:.0f} MiB before the runs")
    show("rows written", f"{rows:8d}      {ok} tenants ok")
    show("HTTP requests", f"{counts['total']:8d}      by status {counts['by_status']}")
    show("max requests in flight", f"{counts['max_in_flight']:8d}")
    for route, count in sorted(counts["by_route"].items(), key=lambda item: -item[1]):
        show(f"  {route}", f"{count:8d}")
    return license_steps.get("subscribed_skus", license_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000, help="customers, up to 10,000")
    parser.add_argument("--latency-ms", type=int, default=50, help="added to every request")
    parser.add_argument("--jitter-ms", type=int, default=20, help="uniform +/- on the latency")
    parser.add_argument("--subset", type=int, default=128, help="tenants for the baselines")
    parser.add_argument("--workers", default="1,8,16,32", help="pool sizes over the subset")
    parser.add_argument("--max-workers", type=int, default=16, help="pool of the full sync")
    args = parser.parse_args()
    sweep = sorted({int(workers) for workers in args.workers.split(",")} | {1})

    with tempfile.TemporaryDirectory(prefix="sync365-bench-") as scratch:
        directory = Path(scratch)
        scenario = write_scenario(directory, args.tenants, args.latency_ms, args.jitter_ms)
        with simulator_process(scenario, directory) as simulator:
            duckdb_path = configure_pipeline(simulator, directory)
            print(
                f"simulator: {args.tenants} tenants, latency {args.latency_ms} ms "
                f"+/- {args.jitter_ms} ms, separate process; {os.cpu_count()} CPUs"
            )
            fetch_s = full_sync(simulator, duckdb_path, args)
            with duckdb.connect(str(duckdb_path), read_only=True) as con:
                tenant_ids = [
                    row[0]
                    for row in con.execute(
                        "SELECT tenant_id FROM customers WHERE active ORDER BY tenant_id LIMIT ?",
                        [args.subset],
                    ).fetchall()
                ]
            points = [timed_fetch(simulator.control, tenant_ids, workers) for workers in sweep]
    report_baselines(args, fetch_s, len(tenant_ids), points)


def report_baselines(
    args: argparse.Namespace,
    fetch_s: float,
    subset: int,
    points: list[FetchPoint],
) -> None:
    """The pool sweep over the subset, and the full sync's fetch step against both baselines."""
    latency_s = args.latency_ms / 1000
    sequential = next(point for point in points if point.workers == 1)
    per_tenant = sequential.requests / subset
    print(f"\nFetch of {subset} tenants (fetch_tenants), {per_tenant:.2f} requests per tenant")
    print("  workers   wall s  tenants/s  vs 1 worker  latency floor s  vs floor  CPU s  in flight")
    for point in points:
        floor = math.ceil(subset / point.workers) * per_tenant * latency_s
        print(
            f"  {point.workers:7d} {point.seconds:8.2f} {subset / point.seconds:10.1f} "
            f"{sequential.seconds / point.seconds:11.1f}x {floor:16.2f} "
            f"{point.seconds / floor if floor else math.nan:8.2f}x {point.cpu_seconds:6.2f} "
            f"{point.max_in_flight:10d}"
        )
    extrapolated = sequential.seconds / subset * args.tenants
    floor = math.ceil(args.tenants / args.max_workers) * per_tenant * latency_s
    print(
        f"\nFull sync's subscribed_skus step ({args.tenants} tenants, {args.max_workers} workers)"
    )
    print(f"  measured                           {fetch_s:8.2f} s")
    print(
        f"  baseline: sequential, extrapolated {extrapolated:8.2f} s   "
        f"speed-up {extrapolated / fetch_s:5.1f}x"
    )
    if floor:
        print(
            f"  baseline: latency floor            {floor:8.2f} s   "
            f"measured / floor {fetch_s / floor:5.2f}x"
        )


if __name__ == "__main__":
    main()
