"""What the CLI prints cannot be made to act on the terminal, and shows no secret, whatever a
customer's name or a stored message holds (an older warehouse may hold raw text)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from sync365_pipeline.commands.cli import main
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.warehouse import TenantStatusRow, Warehouse
from sync365_pipeline.warehouse.columns import CUSTOMER_COLUMNS
from sync365_pipeline_tests.samples import CONTOSO, PARTNER

LEAKED = "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"
# Written straight into `customers` (the normalizer would have cleaned it): what an older
# warehouse, or a bug upstream, could hold.
HOSTILE_NAME = f"Evil\x1b[2J\x1b]0;pwned\x07 Corp {LEAKED}"


def test_status_prints_a_hostile_stored_name_harmlessly_and_without_the_token(
    tmp_path: Path,
) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    warehouse.migrate()
    row = dict.fromkeys(CUSTOMER_COLUMNS)
    row.update(partner_tenant_id=PARTNER, tenant_id=CONTOSO, display_name=HOSTILE_NAME)
    row["relationship"] = "gdap"
    warehouse.upsert_customers(PARTNER, pd.DataFrame([row]), datetime(2026, 7, 1))
    warehouse.record_tenant_statuses(
        [
            TenantStatusRow(
                PARTNER,
                CONTOSO,
                datetime(2026, 7, 1),
                TenantStatus.ERROR,
                error_code="X",
                message=f"echoed Bearer {LEAKED}",
            )
        ]
    )

    result = CliRunner().invoke(
        main, ["status"], env={"SYNC365_DUCKDB_PATH": str(warehouse.path), "SYNC365_CONFIG": ""}
    )

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "\x07" not in result.output
    assert "Evil\ufffd[2J" in result.output, "the name is shown, made harmless"
    assert LEAKED not in result.output
