"""The daily schedule starts discovery; its success starts one license run over all tenants."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.execution import run_full_sync
from sync365_pipeline.defs.jobs import daily_sync_schedule
from sync365_pipeline.defs.sensors import license_sync_after_discovery
from sync365_pipeline_tests.scenarios import HEALTHY_A, HEALTHY_B, HEALTHY_C, pipeline_scenario

from .conftest import PipelineFactory


def test_definitions_load_with_the_four_assets_schedule_and_sensors() -> None:
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()} == {
        "partner_token",
        "customers",
        "subscribed_skus",
        "license_facts",
    }
    assert repository.has_schedule_def("daily_sync")
    assert repository.has_sensor_def("consent_sensor")
    assert repository.has_sensor_def("license_sync_after_discovery")
    assert repository.has_sensor_def("refresh_token_sensor")


def test_schedule_requests_discovery_every_day() -> None:
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 11, 27, 5, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        )
        result = daily_sync_schedule.evaluate_tick(context)
    (request,) = result.run_requests or []
    assert daily_sync_schedule.job_name == "discovery"
    assert daily_sync_schedule.cron_schedule == "0 5 * * *"
    assert request.partition_key is None


def test_successful_discovery_starts_one_license_run_over_every_tenant(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    discovery = defs.resolve_job_def("discovery").execute_in_process(instance=pipeline.instance)
    assert discovery.success
    success_event = next(
        event
        for event in discovery.all_events
        if event.event_type == dg.DagsterEventType.RUN_SUCCESS
    )
    run = pipeline.instance.get_run_by_id(discovery.run_id)
    assert run is not None

    context = dg.build_run_status_sensor_context(
        sensor_name=license_sync_after_discovery.name,
        dagster_instance=pipeline.instance,
        dagster_run=run,
        dagster_event=success_event,
    )
    request = license_sync_after_discovery(context)

    assert isinstance(request, dg.RunRequest)
    tenants = pipeline.instance.get_dynamic_partitions("tenants")
    assert set(tenants) == {HEALTHY_A, HEALTHY_B, HEALTHY_C}
    assert request.tags["dagster/asset_partition_range_start"] == tenants[0]
    assert request.tags["dagster/asset_partition_range_end"] == tenants[-1]
    licenses = defs.resolve_job_def("license_sync").execute_in_process(
        instance=pipeline.instance, tags=request.tags
    )
    assert licenses.success
    assert pipeline.query("SELECT count(DISTINCT tenant_id) FROM license_facts") == [(3,)]


def test_unconfigured_pipeline_fails_at_once_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if name.startswith("SYNC365_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SYNC365_DUCKDB_PATH", str(tmp_path / "sync365.duckdb"))
    with dg.instance_for_test() as instance:
        outcome = run_full_sync(defs, instance)
        events = instance.all_logs(outcome.discovery_run_id)

    assert not outcome.success
    assert "SYNC365_CLIENT_ID is not set" in (outcome.failure or "")
    restarts = [e for e in events if e.dagster_event and e.dagster_event.is_step_up_for_retry]
    assert restarts == [], "a configuration problem is not retried"
