"""Benchmark: write one day of 10,000 tenants x 30 SKUs (300,000 rows) through the warehouse.

Compares `Warehouse.replace_license_facts` (per-tenant rows, slice checks, one frame of every
row, DELETE + INSERT in one transaction, with the primary key and CHECK constraints) against a
baseline measured in the same run: one frame of the same rows, then one bulk
`INSERT ... SELECT * FROM df` into an unconstrained table.
A second replace of the same day measures the idempotent re-run (every slice already present).
Last, a users delta that names every user of one tenant's slice of `--users` users (a
tenant-wide change: each user's row replaced), loaded as the writer loads a chunk.

    .venv/bin/python bench/warehouse_write.py [--tenants N] [--skus N] [--users N]
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from sync365_pipeline.licensing.normalize import LICENSE_FACT_COLUMNS
from sync365_pipeline.warehouse import Warehouse, dataset_frames
from sync365_pipeline.warehouse.columns import USERS
from sync365_pipeline.warehouse.rows import DatasetSlice, UserDeltaSlice
from sync365_pipeline_tests.samples import E3
from sync365_pipeline_tests.warehouse.test_user_deltas import load, user_row

PARTNER = "11111111-1111-1111-1111-111111111111"
SNAPSHOT = date(2026, 7, 1)


def tenant_rows(tenants: int, skus: int) -> dict[str, list[tuple[Any, ...]]]:
    """Per-tenant rows shaped like `license_fact_rows` output, with varied exact counts."""
    rng = random.Random(365)
    sku_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(skus)]
    synced = datetime(2026, 7, 1, 5, 0)
    rows_by_tenant = {}
    for _ in range(tenants):
        tenant = str(uuid.UUID(int=rng.getrandbits(128)))
        rows = []
        for index, sku_id in enumerate(sku_ids):
            enabled = rng.choice((0, 1, 5, 25, 300, 10_000, 1_000_000))
            consumed = rng.randint(0, enabled + 3)
            fact = {
                "snapshot_date": SNAPSHOT,
                "partner_tenant_id": PARTNER,
                "tenant_id": tenant,
                "sku_id": sku_id,
                "sku_part_number": f"SKU_{index}",
                "product_name": f"Product {index}",
                "product_name_source": "catalog",
                "capability_status": "Enabled",
                "enabled_units": enabled,
                "suspended_units": 0,
                "warning_units": 0,
                "locked_out_units": 0,
                "consumed_units": consumed,
                "available_units": enabled - consumed,
                "billing_accounts": 1,
                "source": "graph",
                "synced_at": synced,
            }
            rows.append(tuple(fact[column] for column in LICENSE_FACT_COLUMNS))
        rows_by_tenant[tenant] = rows
    return rows_by_tenant


def measure(label: str, action: Callable[[], object]) -> float:
    """Wall time of `action`, and the process's peak RSS so far (tracemalloc would slow pandas)."""
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label:<44} {seconds:7.2f} s   peak RSS so far {peak_mib:7.0f} MiB")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--skus", type=int, default=30)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()

    rows_by_tenant = tenant_rows(args.tenants, args.skus)
    rows = args.tenants * args.skus
    print(f"{args.tenants} tenants x {args.skus} SKUs = {rows} rows, duckdb {duckdb.__version__}")
    with tempfile.TemporaryDirectory() as scratch:
        baseline_file = str(Path(scratch) / "baseline.duckdb")
        enabled_total = sum(
            row[LICENSE_FACT_COLUMNS.index("enabled_units")]
            for row in chain.from_iterable(rows_by_tenant.values())
        )

        def baseline() -> None:
            all_rows = pd.DataFrame.from_records(
                list(chain.from_iterable(rows_by_tenant.values())),
                columns=list(LICENSE_FACT_COLUMNS),
            )
            con = duckdb.connect(baseline_file)
            con.register("all_rows", all_rows)
            con.execute("CREATE TABLE license_facts AS SELECT * FROM all_rows LIMIT 0")
            con.execute("INSERT INTO license_facts SELECT * FROM all_rows")
            con.close()

        warehouse = Warehouse(Path(scratch) / "sync365.duckdb")
        warehouse.migrate()
        base_s = measure("baseline: one frame, one bulk INSERT", baseline)
        first_s = measure(
            "replace_license_facts, new day",
            lambda: warehouse.replace_license_facts(
                SNAPSHOT, rows_by_tenant, partner_tenant_id=PARTNER
            ),
        )
        again_s = measure(
            "replace_license_facts, same day again",
            lambda: warehouse.replace_license_facts(
                SNAPSHOT, rows_by_tenant, partner_tenant_id=PARTNER
            ),
        )
        con = duckdb.connect(str(warehouse.path), read_only=True)
        written = con.execute("SELECT count(*), sum(enabled_units) FROM license_facts").fetchone()
        con.close()
        assert written == (rows, enabled_total), written

        tenant = next(iter(rows_by_tenant))
        user_ids = [str(uuid.UUID(int=index + 1)) for index in range(args.users)]
        full_read = [user_row(SNAPSHOT, user, E3, tenant_id=tenant) for user in user_ids]
        slices = [DatasetSlice(SNAPSHOT, PARTNER, tenant, USERS, len(full_read))]
        stage = Path(scratch) / "stage"
        load(warehouse, stage, "full", dataset_frames({USERS: full_read}, slices, ()))
        next_day = SNAPSHOT + timedelta(days=1)
        delta = dataset_frames(
            {},
            (),
            (),
            user_deltas=[UserDeltaSlice(next_day, PARTNER, tenant, tuple(user_ids))],
            user_delta_rows=[
                user_row(next_day, user, E3, tenant_id=tenant, city="York") for user in user_ids
            ],
        )
        delta_s = measure(
            f"users delta naming all {args.users} users",
            lambda: load(warehouse, stage, "delta", delta),
        )
        con = duckdb.connect(str(warehouse.path), read_only=True)
        moved = con.execute(
            "SELECT count(*) FROM user_licenses WHERE snapshot_date = ? AND city = 'York'",
            [next_day],
        ).fetchone()
        con.close()
        assert moved == (args.users,), moved
    for label, seconds in (("new day", first_s), ("same day again", again_s)):
        print(
            f"{label:<16} {rows / seconds:12,.0f} rows/s   "
            f"{seconds / base_s:5.1f}x the baseline ({rows / base_s:,.0f} rows/s)"
        )
    print(f"users delta      {args.users / delta_s:12,.0f} named users/s")


if __name__ == "__main__":
    main()
