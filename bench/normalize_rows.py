"""Benchmark: normalize one tenant's SKUs into fact rows, against a pandas frame per tenant.

Each tenant holds 30 SKUs rendered by the simulator as Graph `subscribedSkus` and Partner Center
`subscribedskus` objects (service plans included), so every product is named by Partner Center.
Measured in the same run, best of `--repeats`, per tenant:

- rows: `license_fact_rows` (validation, sums, names, one tuple per SKU), the path the pipeline
  takes now;
- baseline: one pandas frame per tenant built from those rows (int64 counts, datetime64[us]
  `synced_at`), what the frame path paid on top of the same validation;
- one frame of every tenant's rows, as `Warehouse.replace_license_facts` builds it now, divided
  by the number of tenants.

    .venv/bin/python bench/normalize_rows.py [--tenants N] [--skus N] [--repeats N]
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from itertools import chain
from typing import Any

import pandas as pd

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.licensing.normalize import (
    LICENSE_FACT_COLUMNS,
    NAME_SOURCE_PARTNER_CENTER,
    license_fact_rows,
)
from sync365_pipeline.simulator.catalog import load_catalog
from sync365_pipeline.simulator.payloads import graph_subscribed_sku, partner_center_subscribed_sku
from sync365_pipeline.simulator.scenario import SkuAssignment
from sync365_pipeline.warehouse.columns import UNIT_COLUMNS

PARTNER = "11111111-1111-1111-1111-111111111111"
SNAPSHOT = date(2026, 7, 1)
SYNCED_AT = datetime(2026, 7, 1, 5, 0, tzinfo=UTC)
Payloads = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def tenant_payloads(tenants: int, skus: int) -> dict[str, Payloads]:
    """{tenant: (Graph SKUs, Partner Center SKUs)}, `skus` catalog products each, varied counts."""
    rng = random.Random(365)
    simulator_catalog = load_catalog()
    products = rng.sample(simulator_catalog.products, skus)
    payloads = {}
    for _ in range(tenants):
        tenant = str(uuid.UUID(int=rng.getrandbits(128)))
        graph, partner_center = [], []
        for product in products:
            enabled = rng.choice((0, 1, 5, 25, 300, 10_000))
            sku = SkuAssignment(
                sku_id=product.sku_id,
                enabled=enabled,
                consumed=rng.randint(0, enabled + 3),
                warning=rng.choice((0, 0, 0, 2)),
            )
            graph.append(graph_subscribed_sku(tenant, "Contoso", sku, simulator_catalog))
            partner_center.append(partner_center_subscribed_sku(sku, simulator_catalog))
        payloads[tenant] = (graph, partner_center)
    return payloads


def normalize_all(payloads: dict[str, Payloads], catalog: SkuCatalog) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for tenant, (graph, partner_center) in payloads.items():
        result = license_fact_rows(
            partner_tenant_id=PARTNER,
            tenant_id=tenant,
            snapshot_date=SNAPSHOT,
            synced_at=SYNCED_AT,
            graph_skus=graph,
            partner_center_skus=partner_center,
            catalog=catalog,
        )
        rows.append(result.rows)
    return rows


def fact_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Rows as a frame typed as the warehouse table (what the frame path produced per tenant)."""
    frame = pd.DataFrame(rows, columns=list(LICENSE_FACT_COLUMNS))
    for column in (*UNIT_COLUMNS, "billing_accounts"):
        frame[column] = frame[column].astype("int64")
    frame["synced_at"] = frame["synced_at"].astype("datetime64[us]")
    return frame


def best_seconds(action: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--skus", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    payloads = tenant_payloads(args.tenants, args.skus)
    catalog = SkuCatalog.load(None)
    rows_by_tenant = normalize_all(payloads, catalog)
    every_row = list(chain.from_iterable(rows_by_tenant))
    assert len(every_row) == args.tenants * args.skus, len(every_row)
    sources = {row[LICENSE_FACT_COLUMNS.index("product_name_source")] for row in every_row}
    assert sources == {NAME_SOURCE_PARTNER_CENTER}, sources

    rows_s = best_seconds(lambda: normalize_all(payloads, catalog), args.repeats)
    per_tenant_s = best_seconds(lambda: [fact_frame(rows) for rows in rows_by_tenant], args.repeats)
    one_frame_s = best_seconds(lambda: fact_frame(every_row), args.repeats)

    def ms(seconds: float) -> float:
        return seconds / args.tenants * 1000

    print(
        f"{args.tenants} tenants x {args.skus} SKUs (Graph + Partner Center names), "
        f"pandas {pd.__version__}, best of {args.repeats}"
    )
    for label, seconds in (
        ("rows: license_fact_rows", rows_s),
        ("baseline: one pandas frame per tenant from its rows", per_tenant_s),
        ("one frame of every tenant's rows, per tenant", one_frame_s),
    ):
        print(f"{label:<52} {ms(seconds):8.3f} ms per tenant")
    print(f"frame per tenant / rows: {per_tenant_s / rows_s:.1f}x")
    print(
        f"frame path (rows + frame per tenant) / rows path (rows + share of one frame): "
        f"{(rows_s + per_tenant_s) / (rows_s + one_frame_s):.1f}x"
    )


if __name__ == "__main__":
    main()
