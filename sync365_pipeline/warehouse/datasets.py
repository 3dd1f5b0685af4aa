"""The per-tenant datasets beside license facts (`columns.DATASETS`: subscriptions, tenant
subscriptions, user licences): their staged frames, and their load in the writer's transaction.

A dataset's slice is (snapshot date, partner, tenant): a staged slice replaces exactly that one,
rows and `dataset_snapshots` row together, so a tenant whose fetch failed (no slice staged) keeps
its last good rows, and a retried writer replaces rather than adds.

User licences may also come as a delta (`UserDeltaSlice`): the writer makes today's slice from
the customer's latest one, without the users the delta round named, with the changed users' new
rows (which keep the previous sign-in, and assignment states when the round gave none), in the
same transaction as the customer's new delta link (`user_delta_links`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import duckdb
import pandas as pd

from sync365_pipeline.core.clock import utc_naive, utcnow
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.warehouse.columns import (
    DATASET_COLUMNS,
    DATASETS,
    USER_LICENSE_COLUMNS,
    USERS,
)
from sync365_pipeline.warehouse.file import clip
from sync365_pipeline.warehouse.rows import (
    DatasetSlice,
    DatasetStatusRow,
    UserDeltaLink,
    UserDeltaSlice,
)

DATASET_SLICES = "dataset_slices"  # staged only: the slices a chunk replaces
USER_DELTA_SLICES = "user_delta_slices"  # staged only: the users slices a delta makes
USER_DELTA_ROWS = "user_delta_rows"  # staged only: the delta's changed users' rows
STAGED_TABLES = (
    f"CREATE TABLE {DATASET_SLICES} (snapshot_date DATE NOT NULL, "
    "partner_tenant_id VARCHAR NOT NULL, tenant_id VARCHAR NOT NULL, dataset VARCHAR NOT NULL, "
    "row_count INTEGER NOT NULL);"
    f"CREATE TABLE {USER_DELTA_SLICES} (snapshot_date DATE NOT NULL, "
    "partner_tenant_id VARCHAR NOT NULL, tenant_id VARCHAR NOT NULL, "
    "named_users VARCHAR[] NOT NULL);"
    f"CREATE TABLE {USER_DELTA_ROWS} AS FROM {USERS} LIMIT 0;"
)


def dataset_frames(
    rows: Mapping[str, Sequence[tuple[Any, ...]]],
    slices: Sequence[DatasetSlice],
    statuses: Iterable[DatasetStatusRow],
    *,
    user_deltas: Sequence[UserDeltaSlice] = (),
    user_delta_rows: Sequence[tuple[Any, ...]] = (),
    user_links: Sequence[UserDeltaLink] = (),
) -> dict[str, pd.DataFrame]:
    """{staged table: frame} of one chunk's datasets: each dataset's rows ({dataset: rows in its
    table's column order}), the slices they replace and the status rows; the users slices made
    by a delta, their changed users' rows, and the delta links to keep."""
    frames = {
        dataset: pd.DataFrame.from_records(
            list(rows.get(dataset, ())), columns=list(DATASET_COLUMNS[dataset])
        )
        for dataset in DATASETS
    }
    frames[DATASET_SLICES] = pd.DataFrame([asdict(piece) for piece in slices])
    frames[USER_DELTA_SLICES] = pd.DataFrame(
        [{**asdict(piece), "named_users": list(piece.named_users)} for piece in user_deltas]
    )
    frames[USER_DELTA_ROWS] = pd.DataFrame.from_records(
        list(user_delta_rows), columns=list(USER_LICENSE_COLUMNS)
    )
    frames["user_delta_links"] = pd.DataFrame(
        [
            {
                **asdict(link),
                "obtained_at": utc_naive(link.obtained_at),
                "full_read_at": utc_naive(link.full_read_at),
            }
            for link in user_links
        ]
    )
    frames["dataset_status"] = pd.DataFrame(
        [
            {
                **vars(row),
                "status": TenantStatus(row.status).value,
                "checked_at": utc_naive(row.checked_at),
                "message": clip(row.message),
            }
            for row in statuses
        ]
    )
    return frames


def load_staged_datasets(con: duckdb.DuckDBPyConnection, stage: Mapping[str, str]) -> None:
    """Inside the writer's transaction: replace the slices one chunk staged (rows and their
    `dataset_snapshots` rows) and add its dataset statuses (a chunk loaded again replaces its
    own)."""
    if slices := stage.get(DATASET_SLICES):
        con.read_parquet(slices).create_view("incoming_dataset_slices")
        for dataset in DATASETS:
            con.execute(
                f"DELETE FROM {dataset} AS t USING incoming_dataset_slices AS s "  # noqa: S608
                "WHERE s.dataset = ? AND t.snapshot_date = s.snapshot_date "
                "AND t.partner_tenant_id = s.partner_tenant_id AND t.tenant_id = s.tenant_id",
                [dataset],
            )
            if path := stage.get(dataset):
                con.execute(
                    f"INSERT INTO {dataset} BY NAME SELECT * FROM read_parquet(?)",  # noqa: S608
                    [path],
                )
        con.execute(
            "INSERT OR REPLACE INTO dataset_snapshots BY NAME "
            "SELECT *, ? AS written_at FROM incoming_dataset_slices",
            [utc_naive(utcnow())],
        )
        con.execute("DROP VIEW incoming_dataset_slices")
    if deltas := stage.get(USER_DELTA_SLICES):
        _apply_user_deltas(con, deltas, stage.get(USER_DELTA_ROWS))
    _replace_user_delta_links(con, stage)
    if path := stage.get("dataset_status"):
        con.execute(
            "DELETE FROM dataset_status AS t USING read_parquet(?) AS s "
            "WHERE t.sync_id IS NOT DISTINCT FROM s.sync_id "
            "AND t.partner_tenant_id = s.partner_tenant_id AND t.tenant_id = s.tenant_id "
            "AND t.dataset = s.dataset",
            [path],
        )
        con.execute("INSERT INTO dataset_status BY NAME SELECT * FROM read_parquet(?)", [path])


def _apply_user_deltas(
    con: duckdb.DuckDBPyConnection, deltas: str, changed_rows: str | None
) -> None:
    """Make each staged delta's users slice: the customer's latest slice (the one its delta link
    continues) without the users the round named, plus the changed users' rows, each keeping
    the user's previous sign-in and, where the round gave no assignment state, the previous
    state of that licence."""
    con.read_parquet(deltas).create_view("incoming_user_deltas")
    if changed_rows:
        con.read_parquet(changed_rows).create_view("incoming_user_delta_rows")
    else:
        con.execute(f"CREATE TEMP VIEW incoming_user_delta_rows AS FROM {USERS} LIMIT 0")
    # The named users as rows, so the previous slice loses them by an anti join (linear), not
    # by a list lookup per row (quadratic after a tenant-wide change).
    con.execute(
        """
        CREATE TEMP TABLE named_delta_users AS
        SELECT snapshot_date AS new_date, partner_tenant_id, tenant_id,
            unnest(named_users) AS user_id
        FROM incoming_user_deltas
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE previous_user_licenses AS
        SELECT u.*, d.snapshot_date AS new_date
        FROM incoming_user_deltas AS d
        JOIN current_dataset_slices AS c
            ON c.dataset = 'user_licenses' AND c.partner_tenant_id = d.partner_tenant_id
            AND c.tenant_id = d.tenant_id
        JOIN user_licenses AS u
            ON u.partner_tenant_id = c.partner_tenant_id AND u.tenant_id = c.tenant_id
            AND u.snapshot_date = c.snapshot_date
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE merged_user_licenses AS
        SELECT * EXCLUDE (new_date) REPLACE (new_date AS snapshot_date)
        FROM previous_user_licenses
        ANTI JOIN named_delta_users USING (new_date, partner_tenant_id, tenant_id, user_id)
        UNION ALL BY NAME
        SELECT n.* REPLACE (
            coalesce(n.last_sign_in, s.last_sign_in) AS last_sign_in,
            if(n.assignment_state IS NULL, p.assigned_by_group, n.assigned_by_group)
                AS assigned_by_group,
            coalesce(n.assignment_state, p.assignment_state) AS assignment_state,
            if(n.assignment_state IS NULL, p.assignment_error, n.assignment_error)
                AS assignment_error
        )
        FROM incoming_user_delta_rows AS n
        LEFT JOIN (
            SELECT partner_tenant_id, tenant_id, user_id, max(last_sign_in) AS last_sign_in
            FROM previous_user_licenses GROUP BY ALL
        ) AS s USING (partner_tenant_id, tenant_id, user_id)
        LEFT JOIN previous_user_licenses AS p USING (partner_tenant_id, tenant_id, user_id, sku_id)
        """
    )
    con.execute(
        "DELETE FROM user_licenses AS t USING incoming_user_deltas AS d "
        "WHERE t.snapshot_date = d.snapshot_date AND t.partner_tenant_id = d.partner_tenant_id "
        "AND t.tenant_id = d.tenant_id"
    )
    con.execute("INSERT INTO user_licenses BY NAME FROM merged_user_licenses")
    con.execute(
        """
        INSERT OR REPLACE INTO dataset_snapshots BY NAME
        SELECT d.snapshot_date, d.partner_tenant_id, d.tenant_id, 'user_licenses' AS dataset,
            (SELECT count(*) FROM merged_user_licenses AS m
             WHERE m.partner_tenant_id = d.partner_tenant_id AND m.tenant_id = d.tenant_id)
                AS row_count,
            ? AS written_at
        FROM incoming_user_deltas AS d
        """,
        [utc_naive(utcnow())],
    )
    for table in ("named_delta_users", "previous_user_licenses", "merged_user_licenses"):
        con.execute(f"DROP TABLE {table}")
    for view in ("incoming_user_deltas", "incoming_user_delta_rows"):
        con.execute(f"DROP VIEW {view}")


def _replace_user_delta_links(con: duckdb.DuckDBPyConnection, stage: Mapping[str, str]) -> None:
    """Every customer whose users slice this chunk wrote (whole or by delta) keeps exactly the
    delta link the chunk staged for it, or none (a full read that got no link: the next sync
    reads every user again)."""
    written = [
        (table, path) for table in (DATASET_SLICES, USER_DELTA_SLICES) if (path := stage.get(table))
    ]
    if not written:
        return
    sources = " UNION ALL ".join(
        "SELECT partner_tenant_id, tenant_id FROM read_parquet(?)"  # noqa: S608 (fixed text)
        + (" WHERE dataset = 'user_licenses'" if table == DATASET_SLICES else "")
        for table, _ in written
    )
    con.execute(
        f"DELETE FROM user_delta_links AS t USING ({sources}) AS w "  # noqa: S608 (fixed text)
        "WHERE t.partner_tenant_id = w.partner_tenant_id AND t.tenant_id = w.tenant_id",
        [path for _, path in written],
    )
    if path := stage.get("user_delta_links"):
        con.execute("INSERT INTO user_delta_links BY NAME SELECT * FROM read_parquet(?)", [path])
