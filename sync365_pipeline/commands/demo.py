"""`sync365 demo`: the pipeline end to end against the Microsoft cloud simulator, no account needed.

A simulator serves one partner, so the default demo runs two, one per partner account of an
accounts file: Contoso Cloud Partners (`demo`) and Relecloud IT Services, the MSP it bought
(`demo-acquired`), which share a customer. Their secrets reach the sync through this process's
environment, never the file.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click
import pandas as pd

from sync365_pipeline.commands.access import shared_customers_section, terminal_width
from sync365_pipeline.commands.renewals import renewals_table
from sync365_pipeline.commands.run import run_sync, show
from sync365_pipeline.commands.tables import fitted_table
from sync365_pipeline.core.settings import DATA_DIR, ENVIRONMENT
from sync365_pipeline.warehouse import Warehouse

if TYPE_CHECKING:  # the simulator is imported only when the demo runs
    from sync365_pipeline.simulator import Scenario, SimulatorServer

# The two partner accounts of the default demo: Contoso and the MSP it acquired.
DEMO_SCENARIOS = ("demo", "demo-acquired")
BAD_USAGE = 2  # click's exit code for a usage error
DEFAULT_DAYS = 14  # two weeks of history; a past day costs about 10 s of CPU
MAX_DAYS = 90


def parse_days(text: str) -> int:
    """`--days`: a whole number of days from 1 to `MAX_DAYS`, else a ValueError saying so."""
    problem = f"give a whole number of days from 1 to {MAX_DAYS}, not {text!r}"
    try:
        days = int(text)
    except ValueError:
        raise ValueError(problem) from None
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(problem)
    return days


@click.command()
@click.option(
    "--scenario",
    metavar="NAME",
    help="Run one simulator scenario instead: a bundled name or a .yaml/.json file. "
    f"Default: the two partner accounts of {' and '.join(DEMO_SCENARIOS)}.",
)
@click.option(
    "--days",
    metavar="N",
    default=str(DEFAULT_DAYS),
    show_default=True,
    help="Simulated days to sync, today the last: the days before it replay seats added and "
    "removed, a SKU bought, a customer lost and regained and a renewal, so the history views "
    f"have something to show (1 to {MAX_DAYS}; 1: today only).",
)
def demo(scenario: str | None, days: str) -> None:
    """Run the pipeline end to end against the built-in Microsoft cloud simulator."""
    from sync365_pipeline.commands.history import replay_past_days
    from sync365_pipeline.simulator import ScenarioError, SimulatorServer, load_scenario

    try:  # before anything under data/demo/ is deleted
        day_count = parse_days(days)
    except ValueError as exc:
        click.echo(f"--days: {exc}", err=True)
        sys.exit(BAD_USAGE)
    try:
        scenarios = [load_scenario(name) for name in ([scenario] if scenario else DEMO_SCENARIOS)]
    except ScenarioError as exc:
        click.echo(f"--scenario: {exc}", err=True)
        sys.exit(BAD_USAGE)
    demo_dir = (DATA_DIR / "demo").resolve()
    shutil.rmtree(demo_dir, ignore_errors=True)  # every demo starts from a fresh simulator state
    demo_dir.mkdir(parents=True)
    os.environ["DAGSTER_HOME"] = str(demo_dir / "dagster_home")
    with ExitStack() as running:
        simulators = [
            running.enter_context(SimulatorServer(each, ca_path=demo_dir / f"simulator-{n}-ca.pem"))
            for n, each in enumerate(scenarios, start=1)
        ]
        for simulator in simulators:
            partner = simulator.state.partner.display_name
            click.echo(f"Microsoft cloud simulator of {partner} listening on {simulator.url}")
        configure_accounts(demo_dir, simulators)
        code = replay_past_days(simulators, day_count) or run_sync()
    if code == 0:
        show_demo_result(demo_dir, partner_names(scenarios))
    sys.exit(code)


def configure_accounts(demo_dir: Path, simulators: Sequence[SimulatorServer]) -> None:
    """Write `sync365.toml` naming one partner account per simulator, each trusting one bundle of
    every simulator's CA, and point `SYNC365_CONFIG` at it."""
    bundle = demo_dir / "simulator-ca.pem"
    bundle.write_text("".join(simulator.ca_path.read_text() for simulator in simulators))
    lines = [f"duckdb_path = {toml_string(demo_dir / 'sync365.duckdb')}"]
    for index, simulator in enumerate(simulators, start=1):
        settings = simulator.environment()
        partner = simulator.state.partner
        secret_env, token_env = f"SYNC365_DEMO_{index}_SECRET", f"SYNC365_DEMO_{index}_TOKEN"
        os.environ[secret_env] = settings["SYNC365_CLIENT_SECRET"]
        os.environ[token_env] = settings["SYNC365_REFRESH_TOKEN"]
        name = partner.domain.split(".")[0]
        entry = {
            "name": name,
            "kind": "partner",
            "tenant_id": partner.tenant_id,
            "client_id": partner.client_id,
            "client_secret_env": secret_env,
            "refresh_token_env": token_env,
            "token_cache": demo_dir / f"token_cache-{name}.json",
            "authority_host": simulator.url,
            "graph_url": simulator.url,
            "partner_center_url": simulator.url,
            "ca_bundle": bundle,
        }
        lines += ["", "[[accounts]]", *(f"{k} = {toml_string(v)}" for k, v in entry.items())]
    config = demo_dir / "sync365.toml"
    config.write_text("\n".join(lines) + "\n")
    for key in ("duckdb_path", "ca_bundle"):  # the shell's values would beat the file's
        os.environ.pop(ENVIRONMENT[key], None)
    os.environ[ENVIRONMENT["config_file"]] = str(config)


def toml_string(value: object) -> str:
    """A TOML basic string: JSON's escaping is TOML's."""
    return json.dumps(str(value))


def partner_names(scenarios: Sequence[Scenario]) -> dict[str, str]:
    return {each.partner.tenant_id: each.partner.display_name for each in scenarios}


def show_demo_result(demo_dir: Path, partners: Mapping[str, str]) -> None:
    warehouse = Warehouse(demo_dir / "sync365.duckdb")
    width = terminal_width()
    click.echo(
        "\nLicenses per customer (current facts; unused and over, assigned beyond the seats "
        "bought, count each SKU on its own):"
    )
    show(licenses_table(warehouse.licenses_per_customer(), partners, width))
    if shared := shared_customers_section(warehouse, partners):
        show(f"\n{shared}")
    dagster_home = demo_dir / "dagster_home"
    click.echo(
        "\nWhere to look next:\n"
        f"  - Analysts: .venv/bin/duckdb -readonly {warehouse.analyst_copy_path}"
        " (or `sync365 sql`)\n"
        "      views: current_license_facts, unused_licenses, tenant_health, license_changes,\n"
        "      monthly_customer_summary, renewal_actions, sold_by_us, over_assigned_licenses;\n"
        "      macros: license_changes_between(from, to), license_changes_since(invoice date)\n"
        "  - Billing: `sync365 report` (per customer, with a trend chart), `sync365 export`\n"
        "  - Operators: `sync365 status` (health, access, data-quality checks)\n"
        f"  - This demo's runs in the Dagster UI: DAGSTER_HOME={dagster_home} "
        ".venv/bin/dagster dev -w workspace.yaml"
    )
    click.echo("\nRenewal actions found (`sync365 renewals`; monthly rollovers left out):")
    show(renewals_table(warehouse.renewal_actions(), width))
    changes = warehouse.latest_license_changes()
    if len(changes):
        click.echo(
            "\nThe history, newest first (view license_changes; tenant_health, consent_flags "
            "and the dated tables hold the rest):"
        )
        show(
            fitted_table(
                changes,
                {column: column for column in changes.columns},
                width,
                cut=["customer"],
            )
        )


# The columns of the demo's licenses table, the most needed first.
LICENSES_COLUMNS = {
    "customer": "customer",
    "partner": "partner",
    "enabled_units": "bought",
    "consumed_units": "assigned",
    "unused_units": "unused",
    "over_assigned_units": "over",
    "skus": "SKUs",
    "snapshot_date": "facts as of",
    "stale": "stale",
}


def licenses_table(licenses: pd.DataFrame, partners: Mapping[str, str], width: int) -> str:
    """One line per customer and partner, each by name, fitted to the terminal."""
    units = ["enabled_units", "consumed_units", "unused_units", "over_assigned_units", "skus"]
    named = licenses.assign(
        partner=licenses["partner_tenant_id"].map(lambda tenant: partners.get(tenant, tenant)),
        stale=licenses["is_stale"].map({True: "stale", False: ""}),
        **{column: licenses[column].astype("Int64") for column in units},
    )
    return fitted_table(named, LICENSES_COLUMNS, width, cut=["customer", "partner"])
