"""Benchmark: one `license_sync` run over N tenants against N one-tenant runs (fan-out).

The design says a sync of N tenants is one run, because Dagster's per-run
overhead would otherwise dominate. This measures both ways of syncing the same N tenants with the
real job, executed in process on a sqlite-backed instance (`instance_for_test`: every event is
persisted, as under `dagster dev`), against the simulator (its own process) with no added latency,
so what remains is the pipeline's own cost:

- baseline: one run over every tenant (the daily sync);
- fan-out: one run per tenant (config `tenants: [id]`), as N UI reruns would be.

A discovery run registers the tenants first and a one-tenant warm-up run is excluded. A launched
run (`dagster dev`: a subprocess per run) costs seconds more each; see dagster-notes.md section 3.

    .venv/bin/python bench/run_overhead.py [--tenants 50]

About 1 minute with the defaults on a 2-core machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from sync_scale import Simulator, configure_pipeline, simulator_process, write_scenario

from sync365_pipeline.core.settings import load_run_settings
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.jobs import selection_config
from sync365_pipeline.licensing.selection import TenantSelection
from sync365_pipeline.warehouse import Warehouse

# Step and progress events stay in the event log; the console shows only problems.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def one_tenant(tenant_id: str) -> dict[str, object]:
    """The run config of a `license_sync` run over one tenant, as a UI rerun of it."""
    return {**RUN_CONFIG, **selection_config(TenantSelection((tenant_id,)))}


@dataclass(frozen=True)
class Measurement:
    """One way of syncing every tenant: wall time, HTTP requests, time in each step."""

    label: str
    runs: int
    seconds: float
    requests: int
    step_seconds: dict[str, float]
    last_run_steps: dict[str, float]


def measure(
    label: str, simulator: Simulator, instance: dg.DagsterInstance, action: Callable[[], list[str]]
) -> Measurement:
    """Time `action` (which returns the ids of the runs it made) and sum its steps' durations."""
    simulator.control.reset_request_counts()
    started = time.perf_counter()
    run_ids = action()
    seconds = time.perf_counter() - started
    totals: dict[str, float] = {}
    steps: dict[str, float] = {}
    for run_id in run_ids:
        steps = {
            step.step_key: (step.end_time or 0.0) - (step.start_time or 0.0)
            for step in instance.get_run_step_stats(run_id)
        }
        for key, step_seconds in steps.items():
            totals[key] = totals.get(key, 0.0) + step_seconds
    requests = simulator.control.request_counts()["total"]
    return Measurement(label, len(run_ids), seconds, requests, totals, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sync365-bench-") as scratch:
        directory = Path(scratch)
        scenario = write_scenario(directory, args.tenants, latency_ms=0, jitter_ms=0, fault_rate=0)
        with (
            simulator_process(scenario, directory) as simulator,
            dg.instance_for_test() as instance,
        ):
            configure_pipeline(simulator, directory)
            discovery = defs.resolve_job_def("discovery").execute_in_process(
                instance=instance, run_config=RUN_CONFIG
            )
            assert discovery.success
            tenant_ids = Warehouse.from_settings(load_run_settings()).active_tenants()
            job = defs.resolve_job_def("license_sync")

            def one_run() -> list[str]:
                result = job.execute_in_process(instance=instance, run_config=RUN_CONFIG)
                assert result.success
                return [result.run_id]

            def fan_out() -> list[str]:
                run_ids = []
                for tenant_id in tenant_ids:
                    result = job.execute_in_process(
                        instance=instance, run_config=one_tenant(tenant_id)
                    )
                    assert result.success
                    run_ids.append(result.run_id)
                return run_ids

            job.execute_in_process(
                instance=instance, run_config=one_tenant(tenant_ids[0])
            )  # warm-up: imports, catalog and DuckDB schema caches
            baseline = measure("one run over every tenant", simulator, instance, one_run)
            fanned = measure("one run per tenant (fan-out)", simulator, instance, fan_out)
    report(len(tenant_ids), baseline, fanned)


def report(tenants: int, baseline: Measurement, fanned: Measurement) -> None:
    print(f"{tenants} tenants, simulator with no added latency, sqlite-backed Dagster instance")
    print(
        f"  {'mode':<30} {'runs':>4} {'total s':>8} {'ms/tenant':>10} {'requests':>9}"
        f" {'in steps s':>11} {'outside s':>10}"
    )
    for row in (baseline, fanned):
        in_steps = sum(row.step_seconds.values())
        print(
            f"  {row.label:<30} {row.runs:4d} {row.seconds:8.2f} "
            f"{row.seconds / tenants * 1000:10.1f} {row.requests:9d} {in_steps:11.2f} "
            f"{row.seconds - in_steps:10.2f}"
        )
    print(f"  baseline: one run; fan-out takes {fanned.seconds / baseline.seconds:.1f}x its time")
    print("\n  step totals (s)              one run   fan-out   fan-out's last run")
    for step in fanned.step_seconds:
        print(
            f"    {step:<26} {baseline.step_seconds.get(step, 0.0):8.2f} "
            f"{fanned.step_seconds[step]:9.2f} {fanned.last_run_steps.get(step, 0.0):12.3f}"
        )


if __name__ == "__main__":
    main()
