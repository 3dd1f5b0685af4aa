"""The per-tenant datasets beside license facts (`columns.DATASETS`: subscriptions, tenant
subscriptions, user licences): their staged frames, and their load in the writer's transaction.

A dataset's slice is (snapshot date, partner, tenant): a staged slice replaces exactly that one,
rows and `dataset_snapshots` row together, so a tenant whose fetch failed (no slice staged) keeps
its last good rows, and a retried writer replaces rather than adds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import duckdb
import pandas as pd

from sync365_pipeline.core.clock import utc_naive, utcnow
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.warehouse.columns import DATASET_COLUMNS, DATASETS
from sync365_pipeline.warehouse.file import clip
from sync365_pipeline.warehouse.rows import DatasetSlice, DatasetStatusRow

DATASET_SLICES = "dataset_slices"  # staged only: the slices a chunk replaces
STAGED_SLICES_TABLE = (
    f"CREATE TABLE {DATASET_SLICES} (snapshot_date DATE NOT NULL, "
    "partner_tenant_id VARCHAR NOT NULL, tenant_id VARCHAR NOT NULL, dataset VARCHAR NOT NULL, "
    "row_count INTEGER NOT NULL)"
)


def dataset_frames(
    rows: Mapping[str, Sequence[tuple[Any, ...]]],
    slices: Sequence[DatasetSlice],
    statuses: Iterable[DatasetStatusRow],
) -> dict[str, pd.DataFrame]:
    """{staged table: frame} of one chunk's datasets: each dataset's rows ({dataset: rows in its
    table's column order}), the slices they replace and the status rows."""
    frames = {
        dataset: pd.DataFrame.from_records(
            list(rows.get(dataset, ())), columns=list(DATASET_COLUMNS[dataset])
        )
        for dataset in DATASETS
    }
    frames[DATASET_SLICES] = pd.DataFrame([asdict(piece) for piece in slices])
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
    if path := stage.get("dataset_status"):
        con.execute(
            "DELETE FROM dataset_status AS t USING read_parquet(?) AS s "
            "WHERE t.sync_id IS NOT DISTINCT FROM s.sync_id "
            "AND t.partner_tenant_id = s.partner_tenant_id AND t.tenant_id = s.tenant_id "
            "AND t.dataset = s.dataset",
            [path],
        )
        con.execute("INSERT INTO dataset_status BY NAME SELECT * FROM read_parquet(?)", [path])
