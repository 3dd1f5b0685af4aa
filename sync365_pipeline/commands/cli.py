"""The `sync365` command: sync, demo, status, and the simulator."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from sync365_pipeline.catalog import (
    MICROSOFT_CSV_URL,
    TABLE_FILE_NAME,
    CatalogError,
    refresh_sku_names,
)
from sync365_pipeline.commands.access import access_section, terminal_width
from sync365_pipeline.commands.checks import checks_section
from sync365_pipeline.commands.demo import demo
from sync365_pipeline.commands.dev import dev
from sync365_pipeline.commands.renewals import configured_warehouse, readable_warehouse, renewals
from sync365_pipeline.commands.run import run_sync, show
from sync365_pipeline.commands.sql import sql
from sync365_pipeline.commands.status import health_section
from sync365_pipeline.core.redaction import redact_every_log_record
from sync365_pipeline.core.settings import DATA_DIR, ConfigError, load_accounts
from sync365_pipeline.licensing.selection import TenantSelection


class LazyGroup(click.Group):
    """Loads a subcommand's module only when that subcommand runs or its help is shown.

    The simulator (aiohttp, trustme) is a heavy import that `sync365 sync` must never pay.
    """

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    lazy={
        "simulator": "sync365_pipeline.simulator.cli:simulator",
        "export": "sync365_pipeline.commands.export:export",
        "report": "sync365_pipeline.commands.report:report",
    },
)
def main() -> None:
    """sync365: Microsoft 365 license facts for Microsoft partners, in DuckDB."""
    redact_every_log_record()


@main.command()
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    metavar="NAME",
    help="Sync only this tenant (id, customer name or default domain); repeatable.",
)
@click.option(
    "--failed", is_flag=True, help="Sync only the tenants whose latest attempt did not succeed."
)
@click.option(
    "--verbose", is_flag=True, help="Show Dagster's step events and the stack of any failure."
)
def sync(tenants: tuple[str, ...], failed: bool, verbose: bool) -> None:
    """Sync every customer tenant once (SYNC365_* variables or the SYNC365_CONFIG file).

    With --tenant or --failed, fetch just those tenants again, without the sign-in and
    discovery steps; the other tenants keep their facts.
    """
    sys.exit(run_sync(TenantSelection(tenants, failed), verbose=verbose))


@main.command()
@click.option("--account", "account_name", help="The partner account, when there are several.")
@click.option("--no-sync", is_flag=True, help="Do not run the initial sync afterwards.")
def consent(account_name: str | None, no_sync: bool) -> None:
    """Grant Partner Center consent once (device code sign-in, with MFA), then sync."""
    from sync365_pipeline.microsoft import MicrosoftError
    from sync365_pipeline.microsoft.device_consent import ConsentError, DeviceCode, grant_consent
    from sync365_pipeline.microsoft.device_consent import partner_account as choose

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
        show(f"\nConsent failed: {exc}", err=True)
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
    from sync365_pipeline.commands.doctor import failed, render, run_doctor

    sections = run_doctor()
    show(render(sections))
    sys.exit(1 if failed(sections) else 0)


@main.command()
@click.option("--wide", is_flag=True, help="Every row and column of tenant_health, however wide.")
def status(wide: bool) -> None:
    """Per-tenant health from the warehouse (its analyst copy, so a running sync is not blocked),
    fitted to the terminal."""
    live = configured_warehouse()
    readable = readable_warehouse(live)
    width = terminal_width()
    click.echo(f"From {readable.path}:")
    show(health_section(readable, width, wide=wide))
    show(f"\n{access_section(readable, width)}")
    show(f"\n{checks_section(live, width)}")


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


main.add_command(demo)
main.add_command(dev)
main.add_command(sql)
main.add_command(renewals)

if __name__ == "__main__":
    main()
