"""`sync365 renewals`: which seats to cut before which date, as a table fitted to the terminal."""

from __future__ import annotations

import click
import pandas as pd

from sync365_pipeline.commands.access import terminal_width
from sync365_pipeline.commands.tables import fitted_table
from sync365_pipeline.core.settings import ConfigError, load_run_settings
from sync365_pipeline.warehouse import Warehouse

# The table's columns, most needed first; the last ones are dropped while the table is too wide.
COLUMNS = {
    "act_by": "act by",
    "display_name": "customer",
    "offer_name": "subscription",
    "action": "action",
    "reducible_units": "cut",
    "quantity": "seats",
    "consumed_units": "used",
    "commitment": "term",
    "days_left": "days",
    "auto_renew": "renews",
}


def renewals_table(actions: pd.DataFrame, width: int) -> str:
    """The renewal actions (rows of `renewal_actions`) as a plain table at most `width` wide:
    names cut to fit first, then the least needed columns left out."""
    if actions.empty:
        return "No renewal actions: no commitment ends within 60 days and no window is open."
    frame = actions.assign(
        display_name=actions["display_name"].fillna(actions["tenant_id"]),
        offer_name=actions["offer_name"].fillna(actions["subscription_id"]),
    )
    return fitted_table(frame, COLUMNS, width, cut=("display_name", "offer_name"), keep=3)


def configured_warehouse() -> Warehouse:
    """The configured warehouse (its live file), or a click error saying what to fix."""
    try:
        return Warehouse.from_settings(load_run_settings())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def readable_warehouse(live: Warehouse | None = None) -> Warehouse:
    """The analyst copy of `live` (by default the configured warehouse), so a running sync is
    not blocked, or a click error saying what to do."""
    live = live or configured_warehouse()
    readable = live.readable()
    if readable is None:
        raise click.ClickException(f"No warehouse at {live.path} yet: run `sync365 sync` first.")
    return readable


@click.command()
@click.option("--monthly", is_flag=True, help="Include monthly terms that renew by themselves.")
def renewals(monthly: bool) -> None:
    """Renewals and cancellation windows to act on, soonest first (from the analyst copy)."""
    actions = readable_warehouse().renewal_actions(monthly_rollovers=monthly)
    click.echo(renewals_table(actions, terminal_width()))
