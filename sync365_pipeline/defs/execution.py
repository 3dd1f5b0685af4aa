"""Running the asset graph from code (the CLI's `sync`), through real Dagster executions.

A sync from the command line may be killed at any moment (SIGKILL, a full disk, `docker stop`
past its grace period). It then leaves its Dagster runs STARTED and its slot in the warehouse
pool taken, which would make every later sync wait for ever. So: one CLI sync at a time per
Dagster home (`exclusive_sync`, an OS file lock that dies with its process), and the sync that
gets the lock marks the runs its dead predecessors left as failed and frees their pool slots
(`recover_abandoned_runs`) before it starts.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.defs.assets import STOPPED, WAREHOUSE_POOL
from sync365_pipeline.defs.jobs import selection_config
from sync365_pipeline.licensing.selection import EVERY_TENANT, TenantSelection


def cli_run_config(*, verbose: bool = False, quiet: bool = False) -> dict[str, Any]:
    """The console of a CLI sync: our progress lines (INFO) and failures without Dagster's stack
    traces; verbose adds the stacks and Dagster's step events (DEBUG), quiet keeps only warnings
    and errors (the demo's replayed days, one line each)."""
    level = "DEBUG" if verbose else "WARNING" if quiet else "INFO"
    return {"loggers": {"cli_console": {"config": {"log_level": level, "verbose": verbose}}}}


LAUNCHER_TAG = "sync365/launcher"
CLI_TAGS = {LAUNCHER_TAG: "cli"}
SYNC_LOCK_FILE = "sync365-sync.lock"
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@contextmanager
def exclusive_sync(home: Path, on_wait: Callable[[str], None]) -> Iterator[None]:
    """Hold this Dagster home's sync lock for the block, saying what it waits for if taken.

    The lock is `flock`: the kernel releases it when its holder dies, however it dies, so a
    killed sync never blocks the next one. It is taken before Dagster's storage is opened, so two
    first syncs on a fresh home never create its schema at the same time.
    """
    home.mkdir(parents=True, exist_ok=True)
    with (home / SYNC_LOCK_FILE).open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            on_wait(f"Waiting for the sync already running in {home} ({holder}) to finish...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"PID {os.getpid()}, started {utcnow():%Y-%m-%d %H:%M:%S} UTC")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def recover_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark the CLI runs a dead sync left unfinished as failed and free every pool slot held by a
    run that is over; returns the run ids recovered. Call it only under `exclusive_sync`, when no
    other CLI sync of this home can be alive."""
    recovered = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED, tags=CLI_TAGS)):
        instance.report_run_failed(
            run,
            "The sync365 process running this sync ended before it finished (killed or "
            "stopped); the next sync marked it failed and freed its warehouse slot.",
        )
        recovered.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
    return recovered


def warehouse_holders(instance: dg.DagsterInstance) -> list[str]:
    """Runs that hold the warehouse pool's slot right now (e.g. a `dagster dev` run)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    info = storage.get_concurrency_info(WAREHOUSE_POOL)
    return sorted(info.active_run_ids)


@dataclass(frozen=True)
class SyncRun:
    """How a sync ended: `failure` is the operator-facing message when it did not."""

    run_id: str
    failure: str | None
    interrupted: bool = False  # stopped by SIGINT or SIGTERM

    @property
    def success(self) -> bool:
        return self.failure is None


def run_full_sync(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: TenantSelection = EVERY_TENANT,
    *,
    verbose: bool = False,
    quiet: bool = False,
) -> SyncRun:
    """The whole sync in one run, as the schedule does; or, for a narrower `selection`, the
    license sync of just those tenants (no sign-in or discovery step: the customers known)."""
    console = cli_run_config(verbose=verbose, quiet=quiet)
    if selection.everything:
        job, run_config = "full_sync", console
    else:
        job = "license_sync"
        run_config = {**console, **selection_config(selection)}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config, tags=CLI_TAGS
    )
    failure = None if result.success else _failure_message(result)
    return SyncRun(result.run_id, failure, _interrupted(result))


def _interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """Whether the run was stopped by SIGINT/SIGTERM: inside a step the asset fails with
    `STOPPED` (which Dagster may wrap), between steps Dagster fails the run with its
    interruption."""
    for event in result.all_events:
        data = event.event_specific_data
        failure = getattr(data, "user_failure_data", None)
        if failure is not None and failure.description == STOPPED:
            return True
        error = getattr(data, "error", None)
        while error is not None:
            if error.cls_name == "DagsterExecutionInterruptedError" or STOPPED in error.message:
                return True
            error = error.cause
    return False


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    """What stopped the run: the blocking checks that failed (what they found and what to do),
    else the description of the first failed step (a `dg.Failure`'s text, else the error)."""
    blocked = [
        check
        for check in result.get_asset_check_evaluations()
        if not check.passed and check.blocking
    ]
    if blocked:
        return "\n\n".join(_blocking_failure(check) for check in blocked)
    for event in result.all_events:
        if event.event_type != dg.DagsterEventType.STEP_FAILURE:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return data.user_failure_data.description
        if data.error is not None:
            # Dagster wraps user errors; the cause carries our own actionable message.
            error = data.error.cause or data.error
            return error.message.strip()
    return "The run failed; see the Dagster event log for details."


def _blocking_failure(check: dg.AssetCheckEvaluation) -> str:
    remedy = check.metadata.get("remedy")
    return (
        f"Check {check.check_name} of {check.asset_key.to_user_string()} failed, so the facts "
        f"were not published: {check.description}"
        + (f"\n\nWhat to do: {remedy.value}" if remedy else "")
    )
