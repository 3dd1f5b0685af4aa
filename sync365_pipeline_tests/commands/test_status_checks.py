"""`sync365 status`'s Checks section: the latest result of each data-quality check, failing ones
first, read from the live warehouse, so a blocked sync (which published no analyst copy) shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from click.testing import CliRunner

from sync365_pipeline.commands.cli import main
from sync365_pipeline.warehouse import CheckResultRow, Warehouse

NOW = datetime(2026, 12, 1, 5, 3, tzinfo=UTC)


def result(
    check: str, passed: bool, severity: str, summary: str, **kwargs: object
) -> CheckResultRow:
    return CheckResultRow(
        sync_id=str(kwargs.get("sync_id", "blocked-run")),
        asset=str(kwargs.get("asset", "subscribed_skus")),
        check_name=check,
        passed=passed,
        severity=severity,
        blocking=severity == "ERROR",
        offending=0 if passed else 1,
        summary=summary,
        remedy=None if passed else str(kwargs.get("remedy", "Fix it.")),
        checked_at=NOW,
    )


def checks_lines(warehouse: Warehouse) -> list[str]:
    env = {"SYNC365_DUCKDB_PATH": str(warehouse.path), "SYNC365_CONFIG": "", "COLUMNS": "80"}
    output = CliRunner().invoke(main, ["status"], env=env)
    assert output.exit_code == 0, output.output
    return output.output[output.output.index("Checks") :].splitlines()


def test_status_shows_a_blocked_syncs_failure_that_the_analyst_copy_never_got(
    tmp_path: Path,
) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    passed = result("facts_unique_keys", True, "ERROR", "All 7 staged fact keys pass.")
    yesterday = replace(passed, sync_id="good", checked_at=NOW - timedelta(days=1))
    warehouse.record_check_results([yesterday])
    warehouse.publish_analyst_copy()  # the good run's copy; the blocked run publishes none
    warehouse.record_check_results(
        [
            passed,
            result(
                "facts_available_units",
                False,
                "ERROR",
                "1 of 7 staged facts have available_units other than enabled_units - "
                "consumed_units: Alpha Dental.",
                remedy="The chunks' files were not promoted; rerun the affected tenants.",
            ),
            result(
                "skus_named",
                False,
                "WARN",
                "1 of 7 current SKUs have no product name: Beta.",
                asset="license_facts",
                remedy="Run `sync365 refresh-sku-names`.",
            ),
        ]
    )

    assert checks_lines(warehouse) == [
        "Checks (latest 2026-12-01 05:03 UTC): 2 of 3 failing.",
        "  FAILED  facts_available_units (subscribed_skus, blocking): 1 of 7 staged facts",
        "          have available_units other than enabled_units - consumed_units: Alpha",
        "          Dental.",
        "          what to do: The chunks' files were not promoted; rerun the affected",
        "                      tenants.",
        "  warning skus_named (license_facts): 1 of 7 current SKUs have no product name:",
        "          Beta.",
        "          what to do: Run `sync365 refresh-sku-names`.",
        "  ok      facts_unique_keys (subscribed_skus): All 7 staged fact keys pass.",
    ]


def test_status_before_any_check_says_none_were_recorded(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    warehouse.migrate()
    assert checks_lines(warehouse) == ["Checks: none recorded yet (each sync records them)."]


def test_status_marks_a_check_the_latest_sync_skipped_with_when_it_last_ran(
    tmp_path: Path,
) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    good = [
        result("facts_available_units", True, "ERROR", "All 7 staged facts pass."),
        result("skus_named", True, "WARN", "All 7 current SKUs pass.", asset="license_facts"),
    ]
    warehouse.record_check_results(
        [replace(row, sync_id="good", checked_at=NOW - timedelta(days=1)) for row in good]
    )
    # The blocked run: its blocking check failed, so skus_named (after the facts) did not run.
    warehouse.record_check_results(
        [result("facts_available_units", False, "ERROR", "1 of 7 staged facts are off.")]
    )

    assert checks_lines(warehouse) == [
        "Checks (latest 2026-12-01 05:03 UTC): 1 of 2 failing, 1 not run in the latest",
        "  sync.",
        "  FAILED  facts_available_units (subscribed_skus, blocking): 1 of 7 staged facts",
        "          are off.",
        "          what to do: Fix it.",
        "  ok      skus_named (license_facts): All 7 current SKUs pass.",
        "          not run in the latest sync: last evaluated 2026-11-30 05:03 UTC",
    ]


def test_status_reads_checks_from_a_file_an_older_release_wrote(tmp_path: Path) -> None:
    """An analyst copy published before `in_latest_sync` existed (status reads it while a sync
    holds the live file): its checks show, unmarked, instead of a crash."""
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    warehouse.record_check_results([result("skus_named", True, "WARN", "All 7 SKUs pass.")])
    with duckdb.connect(str(warehouse.path)) as con:
        con.execute(
            "CREATE TABLE older_results AS "
            "SELECT * EXCLUDE (in_latest_sync) FROM latest_check_results"
        )
        con.execute("DROP VIEW latest_check_results")
        con.execute("CREATE VIEW latest_check_results AS SELECT * FROM older_results")

    assert checks_lines(warehouse) == [
        "Checks (latest 2026-12-01 05:03 UTC): 0 of 1 failing.",
        "  ok      skus_named (subscribed_skus): All 7 SKUs pass.",
    ]
