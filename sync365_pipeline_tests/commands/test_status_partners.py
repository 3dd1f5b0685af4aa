"""`sync365 status` shows a partner column when the active customers come through several
partners, and only then: a partner whose customers all departed does not add it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from sync365_pipeline.commands.cli import main
from sync365_pipeline.commands.status import PARTNER_ID_WIDTH
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.normalize import customers_frame
from sync365_pipeline.warehouse import TenantStatusRow, Warehouse
from sync365_pipeline_tests.samples import CONTOSO, FABRIKAM, NORTHWIND, OTHER_PARTNER, PARTNER

AT = datetime(2026, 7, 1, 5)
LATER = datetime(2026, 7, 2, 5)


def synced(warehouse: Warehouse, partner: str, tenants: list[str], at: datetime) -> None:
    """`partner`'s customer list is `tenants` at `at` (the others depart), each synced ok."""
    listing = customers_frame(partner, [], [], [{"customerId": t} for t in tenants]).frame
    warehouse.upsert_customers(partner, listing, at)
    warehouse.record_tenant_statuses(
        [TenantStatusRow(partner, tenant, at, TenantStatus.OK) for tenant in tenants]
    )


def status_lines(warehouse: Warehouse) -> list[str]:
    result = CliRunner().invoke(
        main,
        ["status"],
        env={"SYNC365_DUCKDB_PATH": str(warehouse.path), "SYNC365_CONFIG": "", "COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def header_and_rows(lines: list[str], tenants: list[str]) -> tuple[str, list[str]]:
    """The health table's header line and the lines of `tenants`' rows."""
    header = next(line for line in lines if "customer" in line and "status" in line)
    return header, [line for line in lines if any(tenant in line for tenant in tenants)]


def test_two_partners_with_active_customers_get_a_partner_column(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    warehouse.migrate()
    synced(warehouse, PARTNER, [CONTOSO, FABRIKAM], AT)
    synced(warehouse, OTHER_PARTNER, [NORTHWIND], AT)

    header, rows = header_and_rows(status_lines(warehouse), [CONTOSO, FABRIKAM, NORTHWIND])

    assert "partner" in header
    assert len(rows) == 3
    for partner, tenant in ((PARTNER, CONTOSO), (PARTNER, FABRIKAM), (OTHER_PARTNER, NORTHWIND)):
        (row,) = [line for line in rows if tenant in line]
        assert partner[:PARTNER_ID_WIDTH] in row


def test_a_partner_whose_customers_all_departed_adds_no_partner_column(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    warehouse.migrate()
    synced(warehouse, PARTNER, [CONTOSO, FABRIKAM], AT)
    synced(warehouse, OTHER_PARTNER, [NORTHWIND], AT)
    synced(warehouse, OTHER_PARTNER, [], LATER)  # Northwind departs

    lines = status_lines(warehouse)
    header, rows = header_and_rows(lines, [CONTOSO, FABRIKAM, NORTHWIND])

    assert "partner" not in header
    assert len(rows) == 2, "the departed customer is left out"
    assert not any(PARTNER[:PARTNER_ID_WIDTH] in row for row in rows)
    assert any("1 departed left out" in line for line in lines)
