"""The daily schedule starts one run of the whole sync; the jobs that rerun some tenants."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.execution import run_full_sync
from sync365_pipeline.defs.jobs import daily_sync_schedule
from sync365_pipeline_tests.scenarios import (
    HEALTHY_A,
    HEALTHY_B,
    HEALTHY_C,
    outside_partner_center,
    pipeline_scenario,
)

from .conftest import PipelineFactory


def test_definitions_load_with_the_seven_assets_schedule_and_sensors() -> None:
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()} == {
        "partner_token",
        "customers",
        "subscribed_skus",
        "subscriptions",
        "tenant_subscriptions",
        "user_licenses",
        "license_facts",
    }
    assert repository.has_schedule_def("daily_sync")
    assert repository.has_sensor_def("consent_sensor")
    assert {job.name for job in repository.get_all_jobs()} >= {
        "full_sync",
        "discovery",
        "license_sync",
        "rerun_failed_tenants",
    }
    assert repository.has_sensor_def("refresh_token_sensor")


def test_schedule_requests_the_whole_sync_every_day() -> None:
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 11, 27, 5, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        )
        result = daily_sync_schedule.evaluate_tick(context)
    (request,) = result.run_requests or []
    assert daily_sync_schedule.job_name == "full_sync"
    assert daily_sync_schedule.cron_schedule == "0 5 * * *"
    assert request.partition_key is None


def test_the_daily_run_covers_every_tenant_and_the_rerun_job_exactly_the_failed_ones(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(outside_partner_center(pipeline_scenario(), HEALTHY_B))
    pipeline.sim.control.revoke_consent(HEALTHY_B)
    daily = defs.resolve_job_def("full_sync").execute_in_process(instance=pipeline.instance)
    assert daily.success
    assert pipeline.query("SELECT count(DISTINCT tenant_id) FROM tenant_status") == [(3,)]
    assert tenants_synced(daily).passed is False

    pipeline.sim.control.restore_consent(HEALTHY_B)
    before = pipeline.sim.control.request_counts()["by_tenant"]
    rerun = defs.resolve_job_def("rerun_failed_tenants").execute_in_process(
        instance=pipeline.instance
    )

    assert rerun.success
    after = pipeline.sim.control.request_counts()["by_tenant"]
    asked = {tenant for tenant in after if after[tenant] != before.get(tenant)}
    assert HEALTHY_B in asked
    assert asked.isdisjoint({HEALTHY_A, HEALTHY_C}), "only the failed tenant is fetched again"
    assert tenants_synced(rerun).passed, "every tenant is ok again"
    attempts = pipeline.query(
        "SELECT tenant_id, count(*) FROM tenant_status GROUP BY ALL ORDER BY ALL"
    )
    assert dict(attempts) == {HEALTHY_A: 1, HEALTHY_B: 2, HEALTHY_C: 1}


def tenants_synced(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "tenants_synced"]
    return check


def test_unconfigured_pipeline_fails_at_once_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if name.startswith("SYNC365_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SYNC365_DUCKDB_PATH", str(tmp_path / "sync365.duckdb"))
    with dg.instance_for_test() as instance:
        outcome = run_full_sync(defs, instance)
        events = instance.all_logs(outcome.run_id)

    assert not outcome.success
    assert "SYNC365_CLIENT_ID is not set" in (outcome.failure or "")
    restarts = [e for e in events if e.dagster_event and e.dagster_event.is_step_up_for_retry]
    assert restarts == [], "a configuration problem is not retried"
