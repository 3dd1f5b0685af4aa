"""Staged rows: what one chunk of tenants fetched, as Parquet files the one writer step loads.

Chunk steps may run in other processes (Dagster's multiprocess executor) or on other machines
(Kubernetes, Celery) than the writer, and DuckDB admits one writer per file. So a chunk writes its
rows to files of its own, through an in-memory DuckDB holding the warehouse's tables, and the
writer loads them with `INSERT ... SELECT`, one transaction per chunk: the rows never pass through
Python again, and the writer's memory does not grow with the number of tenants. A file is
written under a temporary name and renamed, so a killed chunk leaves no half file that looks
whole.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from sync365_pipeline.warehouse.datasets import STAGED_TABLES
from sync365_pipeline.warehouse.rows import CustomerAccessRow, RawPayload, TenantStatusRow
from sync365_pipeline.warehouse.schema import migrate
from sync365_pipeline.warehouse.writes import (
    customer_access_records,
    raw_payload_records,
    stack_slices,
    tenant_status_records,
)


def write_stage(
    directory: Path,
    chunk: str,
    *,
    statuses: Sequence[TenantStatusRow],
    raw_payloads: Sequence[RawPayload],
    facts_by_tenant: Mapping[str, Sequence[tuple[Any, ...]]],
    partner_tenant_id: str,
    access: Sequence[CustomerAccessRow] = (),
    datasets: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, str]:
    """Stage one chunk of one partner: its tenants' status rows, access rows, raw payloads and
    facts (`facts_by_tenant` holds the fact rows of each tenant whose facts are to replace
    today's slice of that partner and tenant, none for zero SKUs), checked as
    `replace_license_facts` checks them, and its datasets' frames (`datasets.dataset_frames`).
    Returns {table: path} for non-empty tables."""
    frames = {
        **(datasets or {}),
        "tenant_status": pd.DataFrame(tenant_status_records(statuses)),
        "customer_access": pd.DataFrame(customer_access_records(access)),
        "raw_subscribed_skus": pd.DataFrame(raw_payload_records(raw_payloads)),
    }
    if facts_by_tenant:
        frames["license_facts"], frames["license_slices"] = stack_slices(
            facts_by_tenant, partner_tenant_id=partner_tenant_id
        )
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    with duckdb.connect() as con:
        # The warehouse's own tables, in memory: each file gets their column types (a column
        # that is all NULL in one chunk is still VARCHAR) and their constraints are checked here.
        migrate(con, Path(":memory:"))
        con.execute(
            "CREATE TABLE license_slices (partner_tenant_id VARCHAR NOT NULL, "
            "tenant_id VARCHAR NOT NULL, sku_count INTEGER NOT NULL)"
        )
        con.execute(STAGED_TABLES)
        for table, frame in frames.items():
            if frame.empty:
                continue
            path = directory / f"{chunk}.{table}.parquet"
            partial = path.with_name(f".{path.name}.partial")
            con.register("staged", frame)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM staged")  # noqa: S608 (fixed)
            con.unregister("staged")
            con.execute(f"COPY {table} TO '{_literal(partial)}' (FORMAT parquet, COMPRESSION zstd)")
            os.replace(partial, path)
            paths[table] = str(path)
    return paths


def staged_files(directory: Path) -> list[dict[str, str]]:
    """Every chunk's {table: path} in a staging folder (none if it does not exist)."""
    by_chunk: dict[str, dict[str, str]] = {}
    for path in sorted(directory.glob("*.parquet")):
        chunk, table, _ = path.name.rsplit(".", 2)
        by_chunk.setdefault(chunk, {})[table] = str(path)
    return list(by_chunk.values())


def remove_stage(directory: Path) -> None:
    """Remove a run's staging folder once its rows are in the warehouse (or it is abandoned)."""
    shutil.rmtree(directory, ignore_errors=True)


def remove_abandoned_stages(root: Path, alive: Callable[[str, Path], bool]) -> list[str]:
    """Remove the staging folders under `root` of syncs that are over (`alive(sync_id, folder)`
    false): a run killed between its chunks and its writer leaves rows and gained tokens."""
    removed = []
    for folder in sorted(root.glob("*")) if root.is_dir() else []:
        if folder.is_dir() and not alive(folder.name, folder):
            remove_stage(folder)
            removed.append(folder.name)
    return removed


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")
