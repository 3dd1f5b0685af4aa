"""`sync365 status`: each active customer's health by name and its access (reachable how, why
and the fix), failing and at-risk customers first, within the terminal's width; `--wide` for
every column."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync365_pipeline.commands.cli import main
from sync365_pipeline.commands.run import print_summary
from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.warehouse import TenantStatusRow, Warehouse
from sync365_pipeline_tests.access_seed import seed_access
from sync365_pipeline_tests.samples import FABRIKAM, PARTNER

FIX = " " * 17 + "fix: "  # where a fix starts, under the name
MORE = " " * 22  # where it goes on


def status(warehouse: Warehouse, columns: int, *options: str) -> str:
    env = {
        "SYNC365_DUCKDB_PATH": str(warehouse.path),
        "SYNC365_CONFIG": "",
        "COLUMNS": str(columns),
    }
    result = CliRunner().invoke(main, ["status", *options], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def access_lines(output: str) -> list[str]:
    return output[output.index("Customer access") : output.index("\n\nChecks")].splitlines()


def health_lines(output: str) -> list[str]:
    """The tenant health section: from its headline to the blank line before access."""
    return output[output.index("Tenants:") : output.index("\n\nCustomer access")].splitlines()


LONG_WHY = "Graph denied access to the tenant (Authorization_RequestDenied, HTTP 403): " * 3


def seed_with_a_long_message(warehouse: Warehouse) -> None:
    seed_access(warehouse, datetime.now(UTC))
    warehouse.record_tenant_statuses(
        [
            TenantStatusRow(
                PARTNER,
                FABRIKAM,
                datetime.now(UTC),
                TenantStatus.ACCESS_REMOVED,
                "Authorization_RequestDenied",
                message=LONG_WHY + "\nsecond line",
            )
        ]
    )


@pytest.mark.parametrize("columns", [80, 200])
def test_status_names_every_active_customer_failing_first_within_the_width(
    tmp_path: Path, columns: int
) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    seed_with_a_long_message(warehouse)

    output = status(warehouse, columns)
    lines = health_lines(output)

    # Every line but the first, which names the file (as long as its path).
    assert max(len(line) for line in output.splitlines()[1:]) <= columns
    headline = textwrap.wrap(
        "Tenants: 4 active, 2 ok, 2 need attention (1 departed left out; --wide lists them).",
        columns,
    )
    assert lines[: len(headline)] == headline
    heading, *rows = lines[len(headline) :]
    assert heading.split()[:4] == ["customer", "status", "facts", "as"]
    assert [row.split()[0] for row in rows] == ["Fabrikam", "Northwind", "Contoso", "Woodgrove"]
    assert FABRIKAM not in output, "names, not tenant ids"
    if columns == 200:  # room for why, cut to fit and on one line
        assert "why" in heading.split()
        assert "Graph denied access to the tenant" in rows[0]
        assert rows[0].endswith("\u2026")


def test_status_wide_prints_every_column_and_row_of_tenant_health(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    seed_with_a_long_message(warehouse)

    lines = health_lines(status(warehouse, 80, "--wide"))

    heading = [cell.strip() for cell in lines[1].strip("|").split("|")]
    assert heading == list(warehouse.tenant_health().columns)
    assert len(lines) == 2 + 1 + 5, "headline, heading, rule, and all five customers"
    assert any("Tailwind" in line for line in lines), "the departed customer too"
    assert any(LONG_WHY.strip() in line for line in lines), "messages uncut"


def test_status_lists_each_customers_access_failing_first_wrapped_to_100_columns(
    tmp_path: Path,
) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    now = datetime.now(UTC)
    seed_access(warehouse, now)
    ends = f"{now + timedelta(days=9, hours=1):%Y-%m-%d}"
    granted = f"{now - timedelta(hours=2):%Y-%m-%d}"

    lines = access_lines(status(warehouse, 100))

    assert lines == [
        "Customer access (last sync): 2 reachable via Graph, 1 via Partner Center fallback, 1 not "
        "reachable.",
        "  NO             Northwind: no app consent: granting it failed",
        f"{FIX}Check that the partner account is an Admin Agent in Partner Center and that",
        f"{MORE}the customer still has a reseller or GDAP relationship with the partner, or",
        f"{MORE}have the customer's Global Administrator consent to the app; then rerun.",
        "  yes, fallback  Fabrikam: no licence-reading GDAP role (has Exchange Administrator)",
        f"{FIX}Add Directory Readers or Global Reader to the relationship's access assignment",
        f"{MORE}in Partner Center (Customers > Admin relationships); the pipeline cannot grant",
        f"{MORE}roles.",
        f"  yes, Graph     Woodgrove Bank: GDAP ends in 9 days ({ends}) without auto-extend",
        f"{FIX}Extend the relationship or turn on auto-extend in Partner Center (Customers >",
        f"{MORE}Admin relationships); after its end the sync loses the customer.",
        f"  yes, Graph     Contoso: app consent granted automatically on {granted}",
    ]
    assert "Tailwind" not in "\n".join(lines), "a departed customer is not listed"


def test_a_narrow_terminal_gets_lines_no_wider_than_it(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    seed_access(warehouse, datetime.now(UTC))

    lines = access_lines(status(warehouse, 60))

    assert max(map(len, lines)) <= 60
    assert "  NO             Northwind: no app consent: granting it" in lines


def test_before_any_audit_status_says_so(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    warehouse.migrate()

    assert access_lines(status(warehouse, 100)) == [
        "Customer access: not audited yet (the next sync records it)."
    ]


def test_the_sync_summary_says_how_many_landed_and_who_by_consent_or_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    seed_access(warehouse, datetime.now(UTC))

    print_summary(warehouse)

    output = capsys.readouterr().out
    landed = output[output.index("3 of") :].splitlines()[:3]
    assert landed == [
        "3 of 4 customers landed (2 via Graph, 1 via the Partner Center fallback).",
        "Reached once the sync granted the app's consent: Contoso.",
        "Reached through the Partner Center fallback: Fabrikam.",
    ]


def test_the_sync_summary_names_partners_by_account_and_customers_by_name_within_the_width(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    seed_with_a_long_message(warehouse)
    account = AccountSettings(
        name="contoso-partner",
        tenant_id=PARTNER,
        client_id="0c7e9d9a-6a53-4b1e-9f3e-8b1c2d3e4f50",
        client_secret="summary-test-secret",
        token_cache=tmp_path / "token_cache.json",
    )
    monkeypatch.setenv("COLUMNS", "80")

    print_summary(warehouse, [account])

    output = capsys.readouterr().out
    by_status = output[: output.index("\n\n", 2)]
    assert by_status.splitlines()[2].split()[:2] == ["account", "status"]
    assert "contoso-partner" in by_status
    assert PARTNER not in by_status, "the account's name, not its tenant id"
    assert max(map(len, by_status.splitlines())) <= 80
    attention = output[output.index("Customers that need attention:") :].splitlines()[1:]
    assert [line.split()[0] for line in attention] == ["customer", "Fabrikam", "Northwind"]
    assert max(map(len, output.splitlines())) <= 80
