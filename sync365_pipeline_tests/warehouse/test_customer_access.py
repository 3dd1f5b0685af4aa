"""`latest_customer_access()`: the newest access row of each active customer, with its name, its
latest status and where its current facts came from, on a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline_tests.access_seed import WOODGROVE, seed_access
from sync365_pipeline_tests.samples import CONTOSO, FABRIKAM, NORTHWIND


def test_latest_access_row_per_active_customer_with_status_and_facts_source(
    warehouse: Warehouse,
) -> None:
    seed_access(warehouse, datetime.now(UTC))

    frame = warehouse.latest_customer_access()

    columns = [
        "tenant_id",
        "customer",
        "cpv_consent",
        "status",
        "error_code",
        "facts_source",
        "facts_from_latest_attempt",
    ]
    shown = frame[columns].astype(object).where(frame[columns].notna(), None)
    assert [tuple(row) for row in shown.itertuples(index=False)] == [
        (CONTOSO, "Contoso", "granted", "ok", None, "graph", True),
        (
            FABRIKAM,
            "Fabrikam",
            "not_needed",
            "access_removed",
            "Authorization_RequestDenied",
            "partner_center",
            True,
        ),
        (NORTHWIND, "Northwind", "failed", "consent_revoked", "AADSTS90099", "graph", False),
        (WOODGROVE, "Woodgrove Bank", "not_needed", "ok", None, "graph", True),
    ]
    woodgrove = frame.set_index("tenant_id").loc[WOODGROVE]
    assert sorted(woodgrove["gdap_roles"]) == sorted(
        ["f2ef992c-3afb-46b9-b7cf-a126ee74c451", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"]
    )
    assert not woodgrove["auto_extend"]


def test_a_file_from_before_the_access_table_reads_as_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "old_analyst_copy.duckdb"
    duckdb.connect(str(path)).close()

    assert Warehouse(path).latest_customer_access().empty
