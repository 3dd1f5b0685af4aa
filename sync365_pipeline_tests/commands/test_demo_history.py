"""`sync365 demo --days N`: past days replayed against the simulator give every history view
something to show, each change dated the day it happened; bad values change nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sync365_pipeline.commands.history import CEDAR_HARBOR, FABRIKAM, NORTHWIND, SUMMIT, TAILSPIN
from sync365_pipeline.simulator.subscriptions import add_months

from .processes import clean_env, run_sync365
from .test_demo import CONTOSO, query

pytestmark = pytest.mark.e2e


def test_three_days_give_each_history_view_its_changes(tmp_path: Path) -> None:
    result = run_sync365(["demo", "--days", "3"], clean_env(tmp_path), tmp_path)

    assert result.returncode == 0, result.stderr
    warehouse = tmp_path / "data" / "demo" / "sync365.duckdb"
    days = [
        row[0]
        for row in query(
            warehouse, "SELECT DISTINCT snapshot_date FROM license_snapshots ORDER BY 1"
        )
    ]
    first, yesterday, today = days
    assert (yesterday - first, today - yesterday) == (timedelta(days=1), timedelta(days=1))
    day_lines = [line for line in result.stdout.splitlines() if line.startswith(str(first)[:4])]
    assert day_lines[:2] == [
        f"{first}: synced; no change",
        f"{yesterday}: synced; Northwind Traders +4 SPB seats; Tailspin Logistics -5 "
        "EMSPREMIUM seats; Fabrikam Dental buys Copilot; Cedar Harbor's Microsoft 365 Apps "
        "renews; Summit Pharmacy's GDAP relationship ends",
    ]
    assert "The history, newest first" in result.stdout

    changes = query(
        warehouse,
        "SELECT snapshot_date, tenant_id, sku_part_number, change, enabled_units_change, "
        "consumed_units_change FROM license_changes WHERE partner_tenant_id = ? ORDER BY ALL",
        [CONTOSO.tenant_id],
    )
    assert sorted(changes) == sorted(
        [
            (yesterday, NORTHWIND, "SPB", "changed", 4, 3),
            (yesterday, TAILSPIN, "EMSPREMIUM", "changed", -5, 0),
            (yesterday, FABRIKAM, "Microsoft_365_Copilot", "added", 2, 1),
        ]
    )
    # Fabrikam's Copilot, bought yesterday: its term starts the day it was bought.
    copilot = query(
        warehouse,
        "SELECT snapshot_date, CAST(creation_date AS DATE), CAST(effective_start_date AS DATE) "
        "FROM subscriptions WHERE tenant_id = ? AND offer_name LIKE '%Copilot%' ORDER BY 1",
        [FABRIKAM],
    )
    assert copilot == [(yesterday, yesterday, yesterday), (today, yesterday, yesterday)]

    # Summit lost its access yesterday and has it back today, in its statuses and its flags.
    statuses = query(
        warehouse,
        "SELECT CAST(checked_at AS DATE), status FROM tenant_status WHERE tenant_id = ? "
        "ORDER BY checked_at",
        [SUMMIT],
    )
    assert statuses == [(first, "ok"), (yesterday, "access_removed"), (today, "ok")]
    flags = query(
        warehouse,
        "SELECT kind, CAST(raised_at AS DATE), CAST(cleared_at AS DATE) FROM consent_flags "
        "WHERE tenant_id = ? ORDER BY kind",
        [SUMMIT],
    )
    assert flags == [("access_lost", yesterday, today), ("gdap_expiring", yesterday, today)]
    health = query(
        warehouse,
        "SELECT status, CAST(status_since AS DATE), facts_as_of, is_stale FROM tenant_health "
        "WHERE tenant_id = ?",
        [SUMMIT],
    )
    assert health == [("ok", today, today, False)]

    # Cedar Harbor's annual term ended the day before yesterday and renewed yesterday.
    ends = query(
        warehouse,
        "SELECT snapshot_date, commitment_end_date FROM subscriptions WHERE tenant_id = ? "
        "AND offer_name = 'Microsoft 365 Apps for Business' ORDER BY 1",
        [CEDAR_HARBOR],
    )
    renewed_until = add_months(yesterday, 12) - timedelta(days=1)
    assert ends == [(first, first), (yesterday, renewed_until), (today, renewed_until)]

    # Every dated dataset has its three days; each day's statuses are that day's.
    datasets = query(
        warehouse,
        "SELECT dataset, count(DISTINCT snapshot_date) FROM dataset_snapshots GROUP BY 1",
    )
    assert dict(datasets) == {"subscriptions": 3, "tenant_subscriptions": 3, "user_licenses": 3}
    checked_days = query(
        warehouse, "SELECT DISTINCT CAST(checked_at AS DATE) FROM tenant_status ORDER BY 1"
    )
    assert checked_days == [(first,), (yesterday,), (today,)]
    seats = query(
        warehouse,
        "SELECT snapshot_date, licensed_users FROM licensed_user_counts WHERE tenant_id = ? "
        "AND sku_id = (SELECT sku_id FROM license_facts WHERE tenant_id = ? "
        "AND sku_part_number = 'SPB' LIMIT 1) ORDER BY 1",
        [NORTHWIND, NORTHWIND],
    )
    assert seats == [(first, 34), (yesterday, 37), (today, 37)]


@pytest.mark.parametrize("days", ["0", "-3", "three", "2.5", "100000"])
def test_a_bad_days_value_is_one_line_and_deletes_nothing(tmp_path: Path, days: str) -> None:
    marker = tmp_path / "data" / "demo" / "earlier-demo.txt"
    marker.parent.mkdir(parents=True)
    marker.write_text("from an earlier demo")

    result = run_sync365(["demo", "--days", days], clean_env(tmp_path), tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"--days: give a whole number of days from 1 to 90, not {days!r}"
    ]
    assert marker.read_text() == "from an earlier demo"
    assert sorted(marker.parent.iterdir()) == [marker]
