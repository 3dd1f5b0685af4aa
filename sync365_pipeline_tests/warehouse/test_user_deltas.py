"""The writer's users delta (`datasets._apply_user_deltas`) on a real DuckDB file: today's slice
is the latest one without the users the round named, plus the changed users' rows; a changed
row without an assignment state (the delta query does not track them) keeps the previous
slice's state, group and error, while one with a state replaces all three. The delta links stay
out of the analyst copy."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from sync365_pipeline.warehouse import Warehouse, dataset_frames, write_stage
from sync365_pipeline.warehouse.columns import USER_LICENSE_COLUMNS, USERS
from sync365_pipeline.warehouse.rows import DatasetSlice, UserDeltaLink, UserDeltaSlice
from sync365_pipeline_tests.samples import CONTOSO, DAY1, DAY2, E3, FABRIKAM, PARTNER, SPB

GROUP = "9a0f3c1e-5b7d-4e2a-8c6f-1d3b5a7c9e0f"
KEPT = "00000000-0000-4000-8000-000000000001"  # by no means named by the round
STATELESS = "00000000-0000-4000-8000-000000000002"  # changed; its row comes without states
RESTATED = "00000000-0000-4000-8000-000000000003"  # changed; its row brings a state
REMOVED = "00000000-0000-4000-8000-000000000004"
SIGNED_IN = datetime(2026, 6, 20, 8, 0)
DELTA_TOKEN = "contoso-sync-state-4f1c"
LINK = f"https://graph.microsoft.com/v1.0/users/delta?$deltatoken={DELTA_TOKEN}"


def user_row(day: date, user_id: str, sku_id: str, **values: Any) -> tuple[Any, ...]:
    """A `user_licenses` row of CONTOSO, in column order."""
    row = {
        "snapshot_date": day,
        "partner_tenant_id": PARTNER,
        "tenant_id": CONTOSO,
        "user_id": user_id,
        "sku_id": sku_id,
        "user_principal_name": f"{user_id[-1]}@contoso.com",
        "display_name": f"User {user_id[-1]}",
        "account_enabled": True,
        "user_type": "Member",
        "assigned_by_group": None,
        "assignment_state": None,
        "assignment_error": None,
        "last_sign_in": None,
        "department": None,
        "office_location": None,
        "city": None,
        "synced_at": datetime(day.year, day.month, day.day, 6, 0),
        **values,
    }
    return tuple(row[column] for column in USER_LICENSE_COLUMNS)


def load(warehouse: Warehouse, directory: Path, chunk: str, datasets: dict[str, Any]) -> None:
    """Stage one chunk holding only these dataset frames, and load it as the writer does."""
    files = write_stage(
        directory,
        chunk,
        statuses=(),
        raw_payloads=(),
        facts_by_tenant={},
        partner_tenant_id=PARTNER,
        datasets=datasets,
    )
    warehouse.load_staged_fetches([files])


def written_on(
    warehouse: Warehouse, day: date, columns: str
) -> tuple[list[tuple[Any, ...]], list[tuple[str, int]]]:
    """The `user_licenses` rows of `day` (these columns, sorted), and the day's users slices'
    row counts by tenant (`dataset_snapshots`)."""
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        rows = con.execute(
            f"SELECT {columns} FROM user_licenses WHERE snapshot_date = ? ORDER BY ALL",
            [day],
        ).fetchall()
        counted = con.execute(
            "SELECT tenant_id, row_count FROM dataset_snapshots WHERE snapshot_date = ? "
            "AND dataset = ? ORDER BY ALL",
            [day, USERS],
        ).fetchall()
    return rows, counted


def test_a_delta_row_without_a_state_keeps_the_previous_state_group_and_error(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    failed = {"assigned_by_group": GROUP, "assignment_state": "Error"}
    day1 = [
        user_row(DAY1, KEPT, E3, assignment_state="Active", last_sign_in=SIGNED_IN),
        user_row(DAY1, STATELESS, E3, **failed, assignment_error="CountViolation"),
        user_row(DAY1, STATELESS, SPB, assigned_by_group=GROUP, assignment_state="Active"),
        user_row(DAY1, RESTATED, E3, **failed, assignment_error="CountViolation"),
        user_row(DAY1, REMOVED, E3, assignment_state="Active"),
    ]
    slices = [DatasetSlice(DAY1, PARTNER, CONTOSO, USERS, len(day1))]
    load(warehouse, tmp_path, "day1", dataset_frames({USERS: day1}, slices, ()))

    moved = {"city": "London", "synced_at": datetime(2026, 7, 2, 6, 0)}
    changed = [
        user_row(DAY2, STATELESS, E3, **moved),
        user_row(DAY2, RESTATED, E3, **moved, assignment_state="Active"),
    ]
    link_time = datetime(2026, 7, 2, 6, 0, tzinfo=UTC)
    delta = dataset_frames(
        {},
        (),
        (),
        user_deltas=[UserDeltaSlice(DAY2, PARTNER, CONTOSO, (STATELESS, RESTATED, REMOVED))],
        user_delta_rows=changed,
        user_links=[UserDeltaLink(PARTNER, CONTOSO, LINK, link_time, link_time)],
    )
    load(warehouse, tmp_path, "day2", delta)

    today, counted = written_on(
        warehouse,
        DAY2,
        "user_id, sku_id, city, assigned_by_group, assignment_state, assignment_error, "
        "last_sign_in",
    )
    assert today == [
        (KEPT, E3, None, None, "Active", None, SIGNED_IN),
        (STATELESS, E3, "London", GROUP, "Error", "CountViolation", None),
        (RESTATED, E3, "London", None, "Active", None, None),
    ], "the stateless row keeps DAY1's state, group and error; SPB left with the round's rows"
    assert counted == [(CONTOSO, 3)]


def test_a_delta_naming_every_user_leaves_only_its_rows_and_only_in_its_tenant(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """A tenant-wide change (every user of CONTOSO named: one changed, the others removed) beside
    FABRIKAM's delta in the same chunk: the named users go from their own tenant's slice only
    (FABRIKAM holds a user of the same id, unnamed in its round, and keeps it)."""
    contoso = [user_row(DAY1, user_id, E3) for user_id in (KEPT, STATELESS, RESTATED, REMOVED)]
    fabrikam = [user_row(DAY1, user_id, SPB, tenant_id=FABRIKAM) for user_id in (KEPT, REMOVED)]
    slices = [
        DatasetSlice(DAY1, PARTNER, CONTOSO, USERS, len(contoso)),
        DatasetSlice(DAY1, PARTNER, FABRIKAM, USERS, len(fabrikam)),
    ]
    load(warehouse, tmp_path, "day1", dataset_frames({USERS: contoso + fabrikam}, slices, ()))

    every_user = (KEPT, STATELESS, RESTATED, REMOVED)
    delta = dataset_frames(
        {},
        (),
        (),
        user_deltas=[
            UserDeltaSlice(DAY2, PARTNER, CONTOSO, every_user),
            UserDeltaSlice(DAY2, PARTNER, FABRIKAM, (REMOVED,)),
        ],
        user_delta_rows=[user_row(DAY2, RESTATED, E3, city="London")],
    )
    load(warehouse, tmp_path, "day2", delta)

    today, counted = written_on(warehouse, DAY2, "tenant_id, user_id, sku_id, city")
    assert today == sorted([(CONTOSO, RESTATED, E3, "London"), (FABRIKAM, KEPT, SPB, None)])
    assert counted == sorted([(CONTOSO, 1), (FABRIKAM, 1)])


def test_the_analyst_copy_leaves_the_delta_links_out(warehouse: Warehouse, tmp_path: Path) -> None:
    rows = [user_row(DAY1, KEPT, E3, assignment_state="Active")]
    link_time = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
    full_read = dataset_frames(
        {USERS: rows},
        [DatasetSlice(DAY1, PARTNER, CONTOSO, USERS, len(rows))],
        (),
        user_links=[UserDeltaLink(PARTNER, CONTOSO, LINK, link_time, link_time)],
    )
    load(warehouse, tmp_path, "day1", full_read)

    copy = warehouse.publish_analyst_copy()

    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        assert con.execute("SELECT delta_link FROM user_delta_links").fetchall() == [(LINK,)]
    with duckdb.connect(str(copy), read_only=True) as con:
        tables = {
            name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        assert con.execute("SELECT count(*) FROM user_licenses").fetchall() == [(1,)]
    assert USERS in tables
    assert "user_delta_links" not in tables
    assert DELTA_TOKEN.encode() not in copy.read_bytes(), "no trace of the link in the file"
