"""Running a sync from the command line: Dagster's own executions, then a summary for people."""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import FrameType

import click

from sync365_pipeline.commands.access import landed_section, terminal_width
from sync365_pipeline.commands.tables import fitted_table
from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.core.redaction import redact
from sync365_pipeline.core.settings import (
    DATA_DIR,
    AccountSettings,
    ConfigError,
    Secret,
    load_accounts,
    load_run_settings,
)
from sync365_pipeline.core.text import printable
from sync365_pipeline.licensing.accounts import account_names
from sync365_pipeline.licensing.consent_flags import evaluate_flags
from sync365_pipeline.licensing.notify import WebhookNotifier, change_lines
from sync365_pipeline.licensing.selection import EVERY_TENANT, TenantSelection
from sync365_pipeline.warehouse import Warehouse, WarehouseLocked

INTERRUPTED = 130  # the shell's code for a command stopped by a signal
# The sync summary's tables, most needed column first: tenants per account and status, and the
# customers that need attention.
SUMMARY_COLUMNS = {
    "account": "account",
    "status": "status",
    "tenants": "tenants",
    "stale_tenants": "stale",
    "oldest_since": "oldest since (UTC)",
}
ATTENTION_COLUMNS = {
    "customer": "customer",
    "status": "status",
    "error_code": "error",
    "tenant_id": "tenant id",
}

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
    """Default DAGSTER_HOME to data/dagster_home so runs and sensor cursors persist.

    `dagster.yaml` is written whole or not at all (a temporary file renamed into place), so a
    second process starting at the same moment never reads half of it.
    """
    home = Path(os.environ.setdefault("DAGSTER_HOME", str((DATA_DIR / "dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        temporary = config.with_name(f".dagster.yaml.{os.getpid()}.tmp")
        temporary.write_text(DAGSTER_YAML)
        os.replace(temporary, config)
    return home


def run_sync(selection: TenantSelection = EVERY_TENANT, *, verbose: bool = False) -> int:
    """Run the whole graph through Dagster (or the license sync of `selection`), then print the
    per-status summary.

    Returns 0 when every account's sign-in worked, however many customers failed; 1 when an
    account could not sign in (the others are still synced); 2 when the configuration is bad;
    `INTERRUPTED` (130) when SIGINT or SIGTERM stopped it.
    """
    # Imported here: loading Dagster costs a second, which `--help` should not pay.
    import dagster as dg

    from sync365_pipeline.defs.definitions import defs
    from sync365_pipeline.defs.execution import (
        exclusive_sync,
        recover_abandoned_runs,
        run_full_sync,
        warehouse_holders,
    )

    try:
        accounts = load_accounts()
        run_settings = load_run_settings()
        warehouse = Warehouse.from_settings(run_settings)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        return 2
    home = ensure_dagster_home()
    names = ", ".join(f"{a.name} ({a.kind} {a.tenant_id})" for a in accounts)
    if not selection.everything:
        names = f"{selection.describe()} of {names}"
    started = utcnow()
    # SIGTERM (docker stop, systemd) stops a sync as Ctrl-C does, at any moment: inside a run
    # Dagster turns both into an interruption of the step, outside one they end here.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with exclusive_sync(home, lambda waiting: click.echo(waiting, err=True)):
            click.echo(f"Syncing {names}; Dagster home: {home}")
            with dg.DagsterInstance.get() as instance:
                if recovered := recover_abandoned_runs(instance):
                    click.echo(
                        f"Marked {len(recovered)} run(s) of an earlier sync that was stopped "
                        "before it finished as failed, and freed the warehouse for this one."
                    )
                if holders := warehouse_holders(instance):
                    click.echo(
                        f"Waiting for the warehouse: Dagster run {', '.join(holders)} is "
                        "writing it (see the Dagster UI)."
                    )
                outcome = run_full_sync(defs, instance, selection, verbose=verbose)
        interrupted = outcome.interrupted
    except KeyboardInterrupt:  # outside a run: before it, between the two, or after
        interrupted = True
    if interrupted:
        click.echo(f"\nSync stopped before it finished. {_written(warehouse, started)}", err=True)
        return INTERRUPTED
    apply_flags(warehouse, run_settings.webhook_url, accounts)
    if not outcome.success:
        show(f"\nSync failed. {_written(warehouse, started)}\n\n{outcome.failure}", err=True)
        return 1
    print_summary(warehouse, accounts)
    return report_failed_accounts(warehouse, accounts)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _written(warehouse: Warehouse, since: datetime) -> str:
    """What the sync wrote before it ended, read back from the warehouse: the truth, whatever
    step it stopped in."""
    try:
        counts = warehouse.written_since(since)
    except WarehouseLocked:
        return "The warehouse is held by another process, so what this sync wrote is unknown."
    if counts["slices"]:
        return (
            f"It wrote license facts for {counts['slices']} tenant(s); the other tenants keep "
            "their earlier facts. The next sync completes the rest."
        )
    statuses = counts["tenant_statuses"] + counts["partner_statuses"]
    seen = f"{counts['customers']} customer record(s) and {statuses} status row(s)"
    return (
        f"No license facts were written (earlier facts are kept as they were); it recorded "
        f"{seen}. The next sync starts again by itself."
    )


def show(text: str, *, err: bool = False) -> None:
    """Print what came from outside (customer names, Microsoft's messages) so that a terminal
    cannot be made to obey it and no secret is shown: redacted, control characters replaced."""
    click.echo(printable(redact(text)), err=err)


def print_summary(warehouse: Warehouse, accounts: Sequence[AccountSettings] = ()) -> None:
    """Tenants per account and status, the customers landed, and by name those that need
    attention, fitted to the terminal; each partner named by its account where known."""
    width = terminal_width()
    show("\nTenants by status (latest sync):")
    summary = warehouse.status_summary()
    partners = account_names(accounts)
    summary = summary.assign(
        account=summary["partner_tenant_id"].map(lambda p: partners.get(p, p)),
        oldest_since=summary["oldest_since"].dt.strftime("%Y-%m-%d %H:%M"),
    )
    show(fitted_table(summary, SUMMARY_COLUMNS, width, cut=("account",)))
    if landed := landed_section(warehouse):
        show("\n" + "\n".join(textwrap.fill(line, width) for line in landed.splitlines()))
    failing = warehouse.tenant_health().query("active and status != 'ok'")
    if len(failing):
        show("\nCustomers that need attention:")
        show(
            fitted_table(
                failing.assign(customer=failing["display_name"].fillna(failing["tenant_id"])),
                ATTENTION_COLUMNS,
                width,
                cut=("customer", "error_code"),
            )
        )


def report_failed_accounts(warehouse: Warehouse, accounts: list[AccountSettings]) -> int:
    """1 if an account's latest sign-in failed (its remedy printed), else 0."""
    latest = warehouse.latest_partner_statuses()
    failed = latest[
        latest["partner_tenant_id"].isin([a.tenant_id for a in accounts])
        & (latest["status"] != "ok")
    ]
    names = account_names(accounts)
    for row in failed.itertuples():
        show(
            f"\nAccount {names[row.partner_tenant_id]} ({row.partner_tenant_id}) could not sign "
            f"in ({row.status}, {row.error_code}): {row.message}",
            err=True,
        )
    return 1 if len(failed) else 0


def apply_flags(
    warehouse: Warehouse, webhook_url: Secret | None, accounts: Sequence[AccountSettings]
) -> None:
    """Raise and clear the flags as the consent sensor does, post the webhook for what changed
    and print one line per change: a sync run from cron, with no Dagster daemon, still warns.
    The sensor, if it runs too, then finds nothing new to raise or post."""
    if not warehouse.path.exists():
        return  # the sync stopped before it recorded anything
    notifier = WebhookNotifier(webhook_url.reveal()) if webhook_url else None
    try:
        changes = evaluate_flags(warehouse, utcnow(), notifier, account_names(accounts))
    except WarehouseLocked as exc:
        show(f"\nFlags were not evaluated ({exc}); the next sync evaluates them.", err=True)
        return
    if changes:
        show("\nFlags raised and cleared by this sync:")
        for line in change_lines(changes):
            show(f"- {line}")
