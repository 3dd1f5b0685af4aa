"""The `sync365` command: sync, demo, status, and the simulator."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from sync365_pipeline.catalog import (
    MICROSOFT_CSV_URL,
    TABLE_FILE_NAME,
    CatalogError,
    refresh_sku_names,
)
from sync365_pipeline.config import (
    DATA_DIR,
    ConfigError,
    Settings,
    load_accounts,
)
from sync365_pipeline.devserver import dev
from sync365_pipeline.simulator.cli import simulator
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


@click.group()
def main() -> None:
    """sync365: Microsoft 365 license facts for Microsoft partners, in DuckDB."""


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

    from sync365_pipeline.definitions import defs
    from sync365_pipeline.defs.execution import run_full_sync

    try:
        accounts = load_accounts()
        warehouse = Warehouse.from_env()
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


def report_failed_accounts(warehouse: Warehouse, accounts: list[Settings]) -> int:
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


@main.command()
def sync() -> None:
    """Sync every customer tenant once (SYNC365_* variables or the SYNC365_CONFIG file)."""
    sys.exit(run_sync())


@main.command()
@click.option("--account", "account_name", help="The partner account, when there are several.")
@click.option("--no-sync", is_flag=True, help="Do not run the initial sync afterwards.")
def consent(account_name: str | None, no_sync: bool) -> None:
    """Grant Partner Center consent once (device code sign-in, with MFA), then sync."""
    from sync365_pipeline.consent_flow import ConsentError, DeviceCode, grant_consent
    from sync365_pipeline.consent_flow import partner_account as choose
    from sync365_pipeline.microsoft import MicrosoftError

    try:
        settings = choose(load_accounts(), account_name)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)

    def show(code: DeviceCode) -> None:
        click.echo(
            f"Account {settings.name}: sign in as the partner's sync account, with MFA.\n"
            f"  1. Open {code.verification_uri}\n"
            f"  2. Enter the code {code.user_code}\n"
            f"Waiting for the sign-in (the code expires at {code.expires_at:%H:%M} UTC)..."
        )

    try:
        granted = grant_consent(settings, show)
    except (ConsentError, MicrosoftError) as exc:
        click.echo(f"\nConsent failed: {exc}", err=True)
        sys.exit(1)
    amr = ", ".join(granted.facts.amr)
    click.echo(
        f"\nConsent granted by {granted.facts.account} with MFA (amr: {amr}); the refresh token "
        f"is stored in {granted.token_cache_path} (mode 0600)."
    )
    if no_sync:
        click.echo("Initial sync skipped (--no-sync): run `sync365 sync` when ready.")
        return
    click.echo("Running the initial sync...")
    sys.exit(run_sync())


@main.command()
def doctor() -> None:
    """Pre-flight checks, each with its fix; exits 1 when any fails."""
    from sync365_pipeline.doctor import failed, render, run_doctor

    sections = run_doctor()
    click.echo(render(sections))
    sys.exit(1 if failed(sections) else 0)


@main.command()
def status() -> None:
    """Per-tenant health from the warehouse (its analyst copy, so a running sync is not blocked)."""
    try:
        live = Warehouse.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    path = live.analyst_copy_path if live.analyst_copy_path.exists() else live.path
    if not path.exists():
        raise click.ClickException(f"No warehouse at {live.path} yet: run `sync365 sync` first.")
    health = Warehouse(path).tenant_health()
    click.echo(f"From {path}:")
    click.echo(health.to_markdown(index=False) if len(health) else "No tenants synced yet.")


@main.command("refresh-sku-names")
@click.option(
    "--from",
    "source",
    default=MICROSOFT_CSV_URL,
    show_default="Microsoft's published CSV",
    help="Microsoft's 'Product names and service plan identifiers' CSV: a file or https URL.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DATA_DIR / TABLE_FILE_NAME,
    show_default=True,
    help="Where to write the table; the pipeline reads data/sku_names.csv before its own.",
)
def refresh_sku_names_command(source: str, output: Path) -> None:
    """Refresh the friendly product names from Microsoft's SKU CSV."""
    try:
        report = refresh_sku_names(source, output)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{report.target}: {report.total} SKUs "
        f"({report.new} new, {report.changed} renamed, {report.removed} no longer listed)"
    )


@main.command()
@click.option("--scenario", default="demo", show_default=True, help="Simulator scenario.")
def demo(scenario: str) -> None:
    """Run the pipeline end to end against the built-in Microsoft cloud simulator."""
    from sync365_pipeline.simulator import SimulatorServer, load_scenario

    demo_dir = (DATA_DIR / "demo").resolve()
    shutil.rmtree(demo_dir, ignore_errors=True)  # every demo starts from a fresh simulator state
    demo_dir.mkdir(parents=True)
    os.environ["DAGSTER_HOME"] = str(demo_dir / "dagster_home")
    with SimulatorServer(load_scenario(scenario), ca_path=demo_dir / "simulator-ca.pem") as sim:
        click.echo(f"Microsoft cloud simulator ({scenario}) listening on {sim.url}")
        os.environ.update(sim.environment())
        os.environ["SYNC365_TOKEN_CACHE"] = str(demo_dir / "token_cache.json")
        os.environ["SYNC365_DUCKDB_PATH"] = str(demo_dir / "sync365.duckdb")
        code = run_sync()
    if code == 0:
        show_demo_result(demo_dir)
    sys.exit(code)


def show_demo_result(demo_dir: Path) -> None:
    warehouse = Warehouse(demo_dir / "sync365.duckdb")
    click.echo("\nLicenses per customer (current facts):")
    click.echo(warehouse.licenses_per_customer().to_markdown(index=False))
    dagster_home = demo_dir / "dagster_home"
    click.echo(
        "\nWhere to look next:\n"
        f"  - Analysts: duckdb {warehouse.analyst_copy_path}\n"
        "      views: current_license_facts, unused_licenses, tenant_health, license_changes\n"
        f"  - This demo's runs in the Dagster UI: DAGSTER_HOME={dagster_home} "
        ".venv/bin/dagster dev -w workspace.yaml"
    )


main.add_command(simulator)
main.add_command(dev)

if __name__ == "__main__":
    main()
