"""Running a sync from the command line: Dagster's own executions, then a summary for people."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sync365_pipeline.core.settings import (
    DATA_DIR,
    AccountSettings,
    ConfigError,
    load_accounts,
    load_run_settings,
)
from sync365_pipeline.warehouse import Warehouse

DAGSTER_YAML = """\
# Written by sync365. Runs that write the warehouse share one concurrency slot, because DuckDB
# allows one writing process per file.
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def ensure_dagster_home() -> Path:
    """Default DAGSTER_HOME to data/dagster_home so runs, partitions and cursors persist."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str((DATA_DIR / "dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


def run_sync() -> int:
    """Run the whole graph through Dagster, then print the per-status summary.

    Returns 0 when every account's sign-in worked, however many customers failed; 1 when an
    account could not sign in (the others are still synced); 2 when the configuration is bad.
    """
    # Imported here: loading Dagster costs a second, which `--help` should not pay.
    import dagster as dg

    from sync365_pipeline.defs.definitions import defs
    from sync365_pipeline.defs.execution import run_full_sync

    try:
        accounts = load_accounts()
        warehouse = Warehouse.from_settings(load_run_settings())
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        return 2
    home = ensure_dagster_home()
    names = ", ".join(f"{a.name} ({a.kind} {a.tenant_id})" for a in accounts)
    click.echo(f"Syncing {names}; Dagster home: {home}")
    with dg.DagsterInstance.get() as instance:
        outcome = run_full_sync(defs, instance)
    if not outcome.success:
        click.echo(
            f"\nSync failed; license facts were left as they were.\n\n{outcome.failure}", err=True
        )
        return 1
    print_summary(warehouse)
    return report_failed_accounts(warehouse, accounts)


def print_summary(warehouse: Warehouse) -> None:
    click.echo("\nTenants by status (latest sync):")
    click.echo(warehouse.status_summary().to_markdown(index=False))
    failing = warehouse.tenant_health().query("active and status != 'ok'")
    if len(failing):
        click.echo("\nCustomers that need attention:")
        columns = ["display_name", "tenant_id", "status", "error_code"]
        click.echo(failing[columns].to_markdown(index=False))


def report_failed_accounts(warehouse: Warehouse, accounts: list[AccountSettings]) -> int:
    """1 if an account's latest sign-in failed (its remedy printed), else 0."""
    latest = warehouse.latest_partner_statuses()
    failed = latest[
        latest["partner_tenant_id"].isin([a.tenant_id for a in accounts])
        & (latest["status"] != "ok")
    ]
    for row in failed.itertuples():
        click.echo(
            f"\nAccount {row.partner_tenant_id} could not sign in "
            f"({row.status}, {row.error_code}): {row.message}",
            err=True,
        )
    return 1 if len(failed) else 0
