"""The data-quality checks in real syncs against the simulator: every check runs in the daily
run, each evaluation lands in `check_results`, and a blocking failure stops the facts step, so the
earlier analyst copy and facts stay as they were."""

from __future__ import annotations

from typing import Any

import dagster as dg
import duckdb
import pytest

from sync365_pipeline.commands.checks import checks_section
from sync365_pipeline.defs.checks import QUALITY_CHECKS
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.licensing import chunks
from sync365_pipeline_tests.scenarios import pipeline_scenario

from .conftest import PipelineFactory

BLOCKING = {"facts_unique_keys", "facts_available_units", "facts_non_negative"}
# The checks after the facts step, which a blocked run skips.
AFTER_FACTS = {"tenants_synced", "facts_fresh", "skus_named", "tenants_reached"}
NOT_RUN = "not run in the latest sync: last evaluated "


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {check.check_name: check for check in result.get_asset_check_evaluations()}


def with_tampered_facts(fetch: Any) -> Any:
    """`chunks.fetch_chunk` whose staged facts say one seat more is available than enabled minus
    consumed: what a chunk of another build, or a damaged file, would hand to the writer."""

    def fetch_chunk(*args: Any, **kwargs: Any) -> chunks.StagedChunk:
        staged = fetch(*args, **kwargs)
        path = staged.files["license_facts"]
        with duckdb.connect() as con:
            frame = con.execute("SELECT * FROM read_parquet(?)", [path]).df()
            frame.loc[0, "available_units"] += 1
            con.execute(f"COPY frame TO '{path}' (FORMAT parquet)")
        return staged

    return fetch_chunk


def marked_not_run(section: str) -> set[str]:
    """The checks `sync365 status`'s Checks section marks as not run in the latest sync."""
    marked, check = set(), ""
    for line in section.splitlines()[1:]:
        if not line.startswith(" " * 10):
            check = line.split()[1]
        elif line.strip().startswith(NOT_RUN):
            marked.add(check)
    return marked


def test_every_check_runs_in_the_daily_sync_and_a_blocking_failure_keeps_the_good_copy(
    pipeline_factory: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    good = defs.resolve_job_def("full_sync").execute_in_process(instance=pipeline.instance)

    assert good.success
    checks = evaluations(good)
    assert {key.name for check in QUALITY_CHECKS for key in check.check_keys} <= set(checks)
    assert all(checks[name].passed for name in BLOCKING | {"tenants_reached", "facts_fresh"})
    assert {name for name, check in checks.items() if check.blocking} == BLOCKING
    assert {name for name, check in checks.items() if check.severity.value == "ERROR"} == BLOCKING
    recorded = pipeline.query(
        "SELECT check_name, passed, blocking FROM check_results WHERE sync_id = ?", [good.run_id]
    )
    assert {name for name, _, _ in recorded} == set(checks)
    assert {name for name, _, blocking in recorded if blocking} == BLOCKING
    good_section = checks_section(pipeline.warehouse, 100)
    assert marked_not_run(good_section) == set(), "every latest result is from this run"
    assert "not run" not in good_section
    copy = pipeline.warehouse.analyst_copy_path
    copy_before = copy.read_bytes()
    facts_before = pipeline.query("SELECT * FROM license_facts ORDER BY ALL")

    monkeypatch.setattr(chunks, "fetch_chunk", with_tampered_facts(chunks.fetch_chunk))
    blocked = pipeline.sync()  # as `sync365 sync` runs it

    assert blocked.failure is not None
    assert blocked.failure.startswith(
        "Check facts_available_units of subscribed_skus failed, so the facts were not "
        "published: 1 of 7 staged facts have available_units other than enabled_units - "
        "consumed_units: Alpha Dental."
    )
    assert "What to do: The chunks' files were not promoted" in blocked.failure
    latest = pipeline.instance.get_latest_materialization_event(dg.AssetKey("license_facts"))
    assert latest is not None
    assert latest.run_id == good.run_id, "the blocking check stopped the facts step"
    assert copy.read_bytes() == copy_before, "the earlier analyst copy is untouched"
    assert pipeline.query("SELECT * FROM license_facts ORDER BY ALL") == facts_before
    assert pipeline.query(
        "SELECT check_name, passed, offending, remedy IS NOT NULL FROM check_results "
        "WHERE sync_id = ? AND blocking ORDER BY check_name",
        [blocked.run_id],
    ) == [
        ("facts_available_units", False, 1, True),
        ("facts_non_negative", True, 0, False),
        ("facts_unique_keys", True, 0, False),
    ]
    skipped = pipeline.query(
        "SELECT check_name, sync_id FROM latest_check_results WHERE NOT in_latest_sync"
    )
    assert set(skipped) == {(name, good.run_id) for name in AFTER_FACTS}
    section = checks_section(pipeline.warehouse, 100)
    assert section.splitlines()[0].endswith(f", {len(AFTER_FACTS)} not run in the latest sync.")
    assert marked_not_run(section) == AFTER_FACTS
    stale = pipeline.query("SELECT bool_and(is_stale) FROM tenant_health WHERE active")
    assert stale == [(True,)], "statuses newer than the facts: nothing reads as fresh"
