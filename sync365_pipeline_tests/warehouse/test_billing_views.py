"""Billing-shaped answers on a warehouse with history (three syncs of the demo scenario): the
changes between any two days and since an invoice date, the facts as of a day, the monthly
summary, and the README's analyst SQL, in the analyst copy and in the DuckDB CLI 1.5; and what
paid means, the same in the report and the summary, on two syncs between which a customer signed
up for a free SKU and a trial."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sync365_pipeline.core.clock import replaying
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline_tests.history import (
    DAY1,
    DAY2,
    DAY3,
    FABRIKAM,
    NORTHWIND,
    SUMMIT,
    History,
    demo_simulated,
    sync_day,
)

README = Path(__file__).parents[2] / "README.md"
CLI = [sys.executable, "-m", "duckdb_cli", "-readonly", "-json"]  # DuckDB's CLI 1.5
CHANGE_COLUMNS = "tenant_id, sku_part_number, change, enabled_units_before, enabled_units_after"


def query(history: History, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(history.warehouse.analyst_copy_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def enabled(history: History, tenant_id: str, part_number: str, day: date) -> int:
    ((units,),) = query(
        history,
        "SELECT enabled_units FROM license_facts "
        "WHERE tenant_id = ? AND sku_part_number = ? AND snapshot_date = ?",
        [tenant_id, part_number, day],
    )
    return int(units)


def test_changes_between_two_days_compare_each_customers_facts_as_of_those_days(
    history: History,
) -> None:
    spb_before = enabled(history, NORTHWIND, "SPB", DAY1)
    defender_before = enabled(history, FABRIKAM, "MDE_SMB", DAY2)
    between = f"SELECT {CHANGE_COLUMNS} FROM license_changes_between(?, ?) ORDER BY ALL"

    assert query(history, between, [DAY1, DAY3]) == sorted(
        [
            (NORTHWIND, "SPB", "changed", spb_before, 45),
            (FABRIKAM, "MDE_SMB", "changed", defender_before, 15),
        ]
    )
    assert query(history, between, [DAY1, DAY2]) == [(NORTHWIND, "SPB", "changed", spb_before, 45)]
    # Days between snapshots take each customer's latest snapshot on or before them.
    assert query(history, between, [date(2026, 11, 10), date(2026, 11, 30)]) == [
        (FABRIKAM, "MDE_SMB", "changed", defender_before, 15)
    ]
    assert query(history, between, [DAY3, date(2026, 11, 30)]) == []


def test_before_the_first_snapshot_every_current_sku_is_added(history: History) -> None:
    added = query(
        history,
        "SELECT tenant_id, sku_id, change, enabled_units_before, from_snapshot_date "
        "FROM license_changes_between(DATE '2026-01-01', ?)",
        [DAY1],
    )
    facts = query(
        history, "SELECT tenant_id, sku_id FROM license_facts WHERE snapshot_date = ?", [DAY1]
    )

    assert len(added) == len(facts) > 20
    assert {(tenant, sku) for tenant, sku, *_ in added} == set(facts)
    assert {tuple(row[2:]) for row in added} == {("added", 0, None)}


def test_consecutive_days_agree_with_license_changes(history: History) -> None:
    """Two ways to the same answer: the macro over each pair of days, and the view."""
    for previous, day in ((DAY1, DAY2), (DAY2, DAY3)):
        from_macro = query(
            history,
            "SELECT tenant_id, sku_id, change, enabled_units_change, consumed_units_change "
            "FROM license_changes_between(?, ?) WHERE to_snapshot_date = ? ORDER BY ALL",
            [previous, day, day],
        )
        from_view = query(
            history,
            "SELECT tenant_id, sku_id, change, enabled_units_change, consumed_units_change "
            "FROM license_changes WHERE snapshot_date = ? ORDER BY ALL",
            [day],
        )
        assert from_macro == from_view != []


def test_changes_since_an_invoice_date_run_to_the_current_facts(history: History) -> None:
    since = query(history, "FROM license_changes_since(?) ORDER BY ALL", [DAY2])
    today = datetime.now(UTC).date()

    assert since == query(history, "FROM license_changes_between(?, ?) ORDER BY ALL", [DAY2, today])
    assert [(row[1], row[8]) for row in since] == [(FABRIKAM, "changed")]


def test_a_period_that_ends_before_it_starts_is_refused(history: History) -> None:
    refused = f"license_changes_between: from_date {DAY3} is after to_date {DAY1}; give the "
    for sql in (
        "FROM license_changes_between(?, ?)",
        "SELECT count(*) FROM license_changes_between(?, ?)",
    ):
        with pytest.raises(duckdb.InvalidInputException, match=re.escape(refused)):
            query(history, sql, [DAY3, DAY1])
    # Refused even where no snapshot is there to compare, and for an invoice date to come.
    with pytest.raises(duckdb.InvalidInputException, match="is after to_date 2026-01-01"):
        query(history, "FROM license_changes_between(DATE '2026-01-05', DATE '2026-01-01')")
    with pytest.raises(duckdb.InvalidInputException, match="from_date 2999-01-01 is after"):
        query(history, "FROM license_changes_since(DATE '2999-01-01')")
    assert query(history, "FROM license_changes_between(?, ?)", [DAY3, DAY3]) == []


def test_a_customer_that_failed_keeps_its_last_facts_as_of_a_later_day(history: History) -> None:
    as_of = query(
        history,
        "SELECT DISTINCT snapshot_date FROM license_facts_as_of(?) WHERE tenant_id = ?",
        [DAY3, SUMMIT],
    )
    stale = query(
        history,
        "SELECT DISTINCT to_is_stale FROM license_changes_between(DATE '2026-01-01', ?) "
        "WHERE tenant_id = ?",
        [DAY3, SUMMIT],
    )

    assert as_of == [(DAY2,)], "Graph refused it on DAY3: its DAY2 facts stand"
    assert stale == [(True,)]


def test_the_monthly_summary_holds_each_months_units_users_changes_and_access(
    history: History,
) -> None:
    rows = query(
        history,
        "SELECT tenant_id, month, snapshot_date, paid_enabled_units, licensed_users, changes, "
        "units_added, units_removed, last_status, attempts, failed_attempts "
        "FROM monthly_customer_summary WHERE tenant_id IN (?, ?, ?) ORDER BY ALL",
        [NORTHWIND, FABRIKAM, SUMMIT],
    )
    paid = {
        (tenant, day): units
        for tenant, day, units in query(
            history,
            "SELECT tenant_id, snapshot_date, sum(enabled_units) FROM license_facts "
            "WHERE NOT is_free_sku(sku_id, sku_part_number) GROUP BY ALL",
        )
    }
    users = {
        (tenant, day): count
        for tenant, day, count in query(
            history,
            "SELECT tenant_id, snapshot_date, count(DISTINCT user_id) FROM user_licenses "
            "WHERE assignment_state IS DISTINCT FROM 'Error' GROUP BY ALL",
        )
    }
    october, november = date(2026, 10, 1), date(2026, 11, 1)

    def expected(tenant: str, month: date, day: date, changes: tuple[int, int, int]) -> tuple:
        return (tenant, month, day, paid[tenant, day], users.get((tenant, day)), *changes)

    assert [row[:8] for row in rows] == sorted(
        [
            expected(NORTHWIND, october, DAY1, (0, 0, 0)),
            expected(NORTHWIND, november, DAY3, (1, 5, 0)),
            expected(FABRIKAM, october, DAY1, (0, 0, 0)),
            expected(FABRIKAM, november, DAY3, (1, 0, 3)),
            expected(SUMMIT, october, DAY1, (0, 0, 0)),
            expected(SUMMIT, november, DAY2, (0, 0, 0)),
        ]
    )
    access = {(row[0], row[1]): row[-3:] for row in rows}
    assert access[(SUMMIT, november)] == ("access_removed", 2, 1)
    assert access[(NORTHWIND, november)] == ("ok", 2, 0)


@pytest.fixture(scope="module")
def free_and_trial_added(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The demo synced on DAY1 (October) and DAY2 (November), with, between them, Northwind's
    SPB seats raised 40 -> 45 (paid), and Fabrikam signed up for Power Automate Free (10,000
    free seats) and a 3-seat Teams Essentials trial."""
    with demo_simulated(tmp_path_factory.mktemp("free_and_trial")) as (sim, demo):
        settings, warehouse = demo.settings, demo.warehouse
        with replaying(DAY1):
            sync_day(settings, warehouse, DAY1)
        sim.control.set_sku_units(NORTHWIND, "SPB", enabled=45)
        sim.control.add_sku(FABRIKAM, {"part_number": "FLOW_FREE", "enabled": 10000})
        trial = {"trial": True, "term": "P1M", "term_started_days_ago": 3, "renewals": 0}
        sim.control.add_sku(
            FABRIKAM, {"part_number": "Teams_Ess", "enabled": 3, "subscriptions": [trial]}
        )
        with replaying(DAY2):
            sync_day(settings, warehouse, DAY2)
        warehouse.publish_analyst_copy()
        yield warehouse


def november(warehouse: Warehouse, columns: str) -> dict[str, tuple[Any, ...]]:
    """Per customer, `columns` of its November row of monthly_customer_summary."""
    with duckdb.connect(str(warehouse.analyst_copy_path), read_only=True) as con:
        rows = con.execute(
            f"SELECT tenant_id, {columns} FROM monthly_customer_summary WHERE month = ?",
            [date(2026, 11, 1)],
        ).fetchall()
    return {tenant: tuple(values) for tenant, *values in rows}


def test_units_added_in_a_month_count_paid_skus_only(free_and_trial_added: Warehouse) -> None:
    summary = november(free_and_trial_added, "changes, units_added, units_removed")

    assert summary[NORTHWIND] == (1, 5, 0)
    # Both sign-ups are changes of the month, but neither adds a paid seat.
    assert summary[FABRIKAM] == (2, 0, 0)


def test_a_trial_is_not_paid_in_the_report_nor_in_the_monthly_summary(
    free_and_trial_added: Warehouse,
) -> None:
    warehouse = free_and_trial_added.readable()
    assert warehouse is not None
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        classes = dict(
            con.execute(
                "SELECT sku_part_number, sku_class FROM license_classes WHERE tenant_id = ?",
                [FABRIKAM],
            ).fetchall()
        )
    changes = warehouse.changes_since(DAY1)
    trend = warehouse.paid_trend(DAY1)
    summary = november(free_and_trial_added, "snapshot_date, paid_skus, paid_enabled_units")

    assert (classes["Teams_Ess"], classes["FLOW_FREE"]) == ("trial", "free")
    assert set(changes["tenant_id"]) == {NORTHWIND}, "the report leaves both sign-ups out"
    bought = {(row.tenant_id, row.snapshot_date.date()): row.bought for row in trend.itertuples()}
    paid_skus = sum(kind == "paid" for kind in classes.values())
    assert summary[FABRIKAM] == (DAY2, paid_skus, bought[FABRIKAM, DAY2])
    assert summary[NORTHWIND][2] == bought[NORTHWIND, DAY2]


def test_a_customer_whose_users_were_never_read_has_no_user_count(history: History) -> None:
    unknown = query(
        history,
        "SELECT m.tenant_id FROM monthly_customer_summary AS m WHERE m.licensed_users IS NULL "
        "AND m.snapshot_date IS NOT NULL ORDER BY ALL",
    )
    never_read = query(
        history,
        "SELECT DISTINCT tenant_id FROM license_snapshots WHERE (partner_tenant_id, tenant_id) "
        "NOT IN (SELECT (partner_tenant_id, tenant_id) FROM dataset_snapshots "
        "WHERE dataset = 'user_licenses') ORDER BY ALL",
    )

    assert unknown
    assert set(unknown) == set(never_read)


def duckdb_cli(history: History, sql: str) -> list[dict[str, Any]]:
    """`sql` in the DuckDB CLI 1.5 on the analyst copy (storage v1.0.0), rows as JSON."""
    ran = subprocess.run(
        [*CLI, str(history.warehouse.analyst_copy_path), "-c", sql],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout or "[]")


def test_the_macros_work_in_the_duckdb_cli_on_the_analyst_copy(history: History) -> None:
    sql = f"SELECT {CHANGE_COLUMNS} FROM license_changes_between(DATE '{DAY1}', DATE '{DAY3}')"
    rows = duckdb_cli(history, sql + " ORDER BY ALL")

    assert [tuple(row.values()) for row in rows] == query(history, sql + " ORDER BY ALL")
    assert duckdb_cli(history, "SELECT count(*) AS n FROM monthly_customer_summary") == [
        {"n": query(history, "SELECT count(*) FROM monthly_customer_summary")[0][0]}
    ]


@pytest.fixture(scope="module")
def readme_answers(history: History) -> list[list[dict[str, Any]]]:
    """Each SQL block of the README's analyst section, run as printed in the DuckDB CLI."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Answers for analysts") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 4
    return [duckdb_cli(history, block) for block in blocks]


def test_the_readme_says_what_each_customer_has_uses_and_wastes_in_paid_seats(
    history: History, readme_answers: list[list[dict[str, Any]]]
) -> None:
    seats = readme_answers[0]
    paid = query(history, "SELECT count(*) FROM license_classes WHERE sku_class = 'paid'")[0][0]
    free = {row[0] for row in query(history, "SELECT product_name FROM current_license_facts")}
    free -= {row["product_name"] for row in seats}

    assert len(seats) == paid
    assert {"Microsoft Power Automate Free", "Microsoft Teams Exploratory"} <= free
    northwind_spb = [
        row for row in seats if row["customer"] == "Northwind Traders" and row["bought"] == 45
    ]
    assert len(northwind_spb) == 1
    # The demo's 37 SPB users, on the 45 seats bought after DAY1: 8 unused.
    assert (northwind_spb[0]["used"], northwind_spb[0]["unused"]) == (37, 8)


def test_the_readme_says_what_changed_since_a_date_and_between_two(
    readme_answers: list[list[dict[str, Any]]],
) -> None:
    since, between = readme_answers[1], readme_answers[2]

    assert [(row["customer"], row["enabled_units_after"]) for row in since] == [
        ("Fabrikam Dental Group", 15),
        ("Northwind Traders", 45),
    ]
    assert [(row["customer"], row["enabled_units_change"]) for row in between] == [
        ("Fabrikam Dental Group", -3)
    ]


def test_the_readme_says_which_customers_we_cannot_see_and_since_when(
    history: History, readme_answers: list[list[dict[str, Any]]]
) -> None:
    unseen = {row["customer"]: row for row in readme_answers[3]}
    not_ok = query(history, "SELECT count(*) FROM latest_tenant_status WHERE status <> 'ok'")[0][0]

    assert len(unseen) == not_ok
    summit = unseen["Summit Pharmacy Inc"]
    assert summit["status"] == "access_removed"
    assert summit["status_since"].startswith(str(DAY3))
    assert summit["last_ok_at"].startswith(str(DAY2))
    assert (summit["facts_as_of"], summit["is_stale"]) == (str(DAY2), True)
