"""`sync365 sql`: the DuckDB CLI on the analyst copy, the file analysts read."""

from __future__ import annotations

import importlib.util
import os
import sys

import click

from sync365_pipeline.core.settings import ConfigError, load_run_settings
from sync365_pipeline.warehouse import Warehouse

DUCKDB_CLI = "duckdb_cli"  # the `duckdb-cli` package (the `analyst` extra): DuckDB's own CLI


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("cli_args", nargs=-1, type=click.UNPROCESSED)
def sql(cli_args: tuple[str, ...]) -> None:
    """Open the analyst copy in the DuckDB CLI, read-only; CLI_ARGS go to the CLI.

    For example `sync365 sql -c "FROM tenant_health"` or `sync365 sql -json -c "..."`. Read-only
    because each sync replaces the copy: anything written to it would be lost.
    """
    try:
        path = Warehouse.from_settings(load_run_settings()).analyst_copy_path
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not path.exists():
        raise click.ClickException(f"No analyst copy at {path} yet: run `sync365 sync` first.")
    if importlib.util.find_spec(DUCKDB_CLI) is None:
        raise click.ClickException(
            "The DuckDB CLI is not installed: pip install 'sync365-pipeline[analyst]' "
            "(`make` installs it in .venv)."
        )
    command = [sys.executable, "-m", DUCKDB_CLI, "-readonly", str(path), *cli_args]
    os.execv(sys.executable, command)  # noqa: S606 (our own interpreter, no shell)
