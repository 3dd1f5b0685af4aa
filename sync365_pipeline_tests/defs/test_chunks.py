"""The bulk fetch in chunks: the same facts however it is cut, one writer step, both executors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from sync365_pipeline.defs.assets import fetch_tenant_chunk, store_tenant_chunks
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline_tests.scenarios import HEALTHY_A, HEALTHY_B, HEALTHY_C, pipeline_scenario

from .conftest import Pipeline, PipelineFactory

FACTS = (
    "SELECT snapshot_date, partner_tenant_id, tenant_id, sku_id, sku_part_number, product_name,"
    " product_name_source, capability_status, enabled_units, suspended_units, warning_units,"
    " locked_out_units, consumed_units, available_units, billing_accounts"
    " FROM license_facts ORDER BY ALL"
)
STATUSES = "SELECT tenant_id, status, error_code FROM tenant_status ORDER BY ALL"


def fetch_steps(pipeline: Pipeline, run_id: str) -> list[str]:
    events = pipeline.instance.all_logs(run_id, dg.DagsterEventType.STEP_SUCCESS)
    return sorted(
        event.step_key
        for event in events
        if event.step_key and event.step_key.startswith("subscribed_skus.fetch_tenant_chunk")
    )


def license_sync_job() -> dg.JobDefinition:
    """Module level, so that Dagster can rebuild the job in each step's process."""
    return defs.resolve_job_def("license_sync")


def test_a_sync_in_chunks_of_one_tenant_writes_exactly_what_one_chunk_writes(
    pipeline_factory: PipelineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    monkeypatch.setenv("SYNC365_CHUNK_SIZE", "1")
    chunked = pipeline.sync()
    chunked_facts, chunked_statuses = pipeline.query(FACTS), pipeline.query(STATUSES)

    monkeypatch.setenv("SYNC365_CHUNK_SIZE", "500")
    monkeypatch.setenv("SYNC365_DUCKDB_PATH", str(tmp_path / "whole.duckdb"))
    whole = pipeline.sync()
    pipeline.warehouse = Warehouse(tmp_path / "whole.duckdb")

    assert chunked.success
    assert whole.success
    assert len(fetch_steps(pipeline, chunked.run_id)) == 3, "one step per tenant"
    assert fetch_steps(pipeline, whole.run_id) == ["subscribed_skus.fetch_tenant_chunk[default_0]"]
    assert chunked_facts, "the scenario has facts"
    assert pipeline.query(FACTS) == chunked_facts
    assert pipeline.query(STATUSES) == chunked_statuses
    staging = pipeline.warehouse.staging_dir(whole.run_id)
    assert not staging.exists(), "the staged files are removed once promoted"


def test_only_the_writer_steps_hold_the_warehouse() -> None:
    """Chunk steps run in parallel, anywhere: they must not need the warehouse at all."""
    assert fetch_tenant_chunk.required_resource_keys == {"microsoft"}
    assert store_tenant_chunks.pool == "sync365_warehouse"


def test_the_multiprocess_executor_fetches_chunks_in_processes_of_their_own(
    pipeline_factory: PipelineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    monkeypatch.setenv("SYNC365_CHUNK_SIZE", "2")
    with dg.instance_for_test() as instance:
        # Discovery in process; the chunked fetch and the writers each in a process of their own.
        assert defs.resolve_job_def("discovery").execute_in_process(instance=instance).success
        result = dg.execute_job(
            dg.reconstructable(license_sync_job),
            instance,
            run_config={
                "execution": {"config": {"multiprocess": {"max_concurrent": 2}}},
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            },
        )
        assert result.success
        starts = instance.all_logs(result.run_id, dg.DagsterEventType.STEP_START)
        pids = {event.step_key: event.dagster_event.pid for event in starts if event.dagster_event}
        cache_mode = pipeline.token_cache.stat().st_mode & 0o777

    chunk_steps = sorted(key for key in pids if "fetch_tenant_chunk" in key)
    assert len(chunk_steps) == 2, "three tenants in chunks of two"
    assert len({pids[key] for key in chunk_steps}) == 2, "each chunk in a process of its own"
    assert pipeline.query("SELECT DISTINCT tenant_id FROM license_facts ORDER BY 1") == [
        (tenant,) for tenant in sorted([HEALTHY_A, HEALTHY_B, HEALTHY_C])
    ]
    assert cache_mode == 0o600


def test_a_second_sync_within_the_tokens_lifetime_asks_for_no_token_and_no_discovery(
    pipeline_factory: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through Dagster and the chunk steps, which hand their tokens to the writer step."""
    pipeline = pipeline_factory(pipeline_scenario())
    monkeypatch.setenv("SYNC365_CHUNK_SIZE", "2")
    first = pipeline.sync()
    first_routes = pipeline.sim.control.request_counts()["by_route"]
    pipeline.sim.control.reset_request_counts()

    second = pipeline.sync()

    assert first.success
    assert second.success
    assert first_routes["identity.token"] >= 3, "the first sync redeems a token per customer"
    counts = pipeline.sim.control.request_counts()
    routes = counts["by_route"]
    assert {route for route in routes if route.startswith("identity.")} == set(), routes
    assert {HEALTHY_A, HEALTHY_B, HEALTHY_C} <= set(counts["by_tenant"]), "every tenant read"
    assert pipeline.token_cache.stat().st_mode & 0o777 == 0o600
    staged = pipeline.warehouse.staging_dir(second.run_id)
    assert not staged.exists(), "no gained-token file is left behind"


def test_a_sync_removes_what_stopped_syncs_staged_and_spares_a_live_one(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    abandoned = pipeline.warehouse.staging_dir("killed-two-days-ago")
    recent = pipeline.warehouse.staging_dir("running-in-another-dagster-home")
    for folder in (abandoned, recent):
        folder.mkdir(parents=True)
        (folder / "default_0.tokens.json").write_text("{}")
    two_days_ago = time.time() - 2 * 86400
    os.utime(abandoned, (two_days_ago, two_days_ago))

    assert pipeline.sync().success

    assert not abandoned.exists()
    assert (recent / "default_0.tokens.json").exists(), "a run this instance does not know"


def test_a_chunk_whose_every_tenant_is_ok_and_one_with_a_failure_load_together(
    pipeline_factory: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Columns that are empty in one chunk (no error code at all) keep their types."""
    pipeline = pipeline_factory(pipeline_scenario())
    monkeypatch.setenv("SYNC365_CHUNK_SIZE", "2")
    pipeline.sim.control.revoke_consent(HEALTHY_C)  # the second chunk's only tenant

    outcome = pipeline.sync()

    assert outcome.success, outcome.failure
    assert pipeline.query(STATUSES) == [
        (HEALTHY_A, "ok", None),
        (HEALTHY_B, "ok", None),
        (HEALTHY_C, "consent_revoked", "AADSTS65001"),
    ]
