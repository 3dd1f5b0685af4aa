"""Running the asset graph from code (the CLI's `sync`), through real Dagster executions."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from sync365_pipeline.defs.partitions import all_tenants_range_tags, tenant_partitions

# Our progress lines are INFO; Dagster's own step events are DEBUG and would drown them.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass(frozen=True)
class SyncRun:
    """How a full sync ended: `failure` is the operator-facing message when it did not."""

    discovery_run_id: str
    license_run_id: str | None
    failure: str | None

    @property
    def success(self) -> bool:
        return self.failure is None


def run_full_sync(defs: dg.Definitions, instance: dg.DagsterInstance) -> SyncRun:
    """Discovery, then the license sync of every registered tenant in one run (as the schedule)."""
    discovery = defs.resolve_job_def("discovery").execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG
    )
    if not discovery.success:
        return SyncRun(discovery.run_id, None, _failure_message(discovery))
    tenant_ids = instance.get_dynamic_partitions(tenant_partitions.name)
    if not tenant_ids:
        return SyncRun(discovery.run_id, None, None)
    licenses = defs.resolve_job_def("license_sync").execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config=QUIET_RUN_CONFIG,
        tags=all_tenants_range_tags(tenant_ids),
    )
    failure = None if licenses.success else _failure_message(licenses)
    return SyncRun(discovery.run_id, licenses.run_id, failure)


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The description of the first failed step: a `dg.Failure`'s text, else the error."""
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
