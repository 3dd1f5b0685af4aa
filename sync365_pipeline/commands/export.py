"""`sync365 export`: the analyst copy as flat, documented files, one per table or view."""

from __future__ import annotations

from pathlib import Path

import click

from sync365_pipeline.commands.period import parse_period, refuse
from sync365_pipeline.commands.renewals import readable_warehouse
from sync365_pipeline.core.settings import DATA_DIR
from sync365_pipeline.warehouse.export import ExportError, ExportFormat, check_target

DEFAULT_OUT = DATA_DIR / "export"


@click.command()
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="CSV files with a header, or Parquet (dated ones partitioned by month).",
)
@click.option("--since", metavar="YYYY-MM-DD", help="Dated rows from this day (UTC) on.")
@click.option("--until", metavar="YYYY-MM-DD", help="Dated rows up to this day (UTC).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="The folder to write; a previous export there is replaced whole.",
)
def export(export_format: ExportFormat, since: str | None, until: str | None, out: Path) -> None:
    """Write every analyst table and view to OUT, with a README saying what each file is."""
    first, last = parse_period(since, until)
    try:
        check_target(out)  # before reading the warehouse: bad input changes nothing
        written = readable_warehouse().export(out, export_format, since=first, until=last)
    except (ExportError, OSError) as exc:
        refuse(str(exc))
    rows = sum(item.rows for item in written)
    click.echo(f"Wrote {len(written)} files ({rows} rows) and their README to {out}.")
