"""`sync365 report`: per customer, paid seats bought, used and unused, users, access, changes
since a day and a trend chart; HTML (one self-contained file), Markdown or text."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import click

from sync365_pipeline.commands.period import parse_day, refuse
from sync365_pipeline.commands.renewals import readable_warehouse
from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.licensing.report import ReportFormat, build_report, render

DEFAULT_DAYS = 30


@click.command()
@click.option(
    "--since",
    metavar="YYYY-MM-DD",
    help=f"Changes since this day (UTC), e.g. the last invoice date [default: {DEFAULT_DAYS} "
    "days ago].",
)
@click.option(
    "--format",
    "report_format",
    type=click.Choice(["html", "md", "text"]),
    default="text",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Write the report to this file (replaced whole) instead of standard output.",
)
def report(since: str | None, report_format: ReportFormat, out: Path | None) -> None:
    """A report per customer, from the analyst copy (a running sync is not blocked)."""
    today = utcnow().date()
    day = parse_day("--since", since) or today - timedelta(days=DEFAULT_DAYS)
    if day > today:
        refuse(f"--since {day} is after today ({today}, UTC): nothing can have changed since.")
    if out is not None:
        check_writable(out)
    text = render(build_report(readable_warehouse(), day), report_format)
    if out is None:
        click.echo(text, nl=False)
        return
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, out)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        refuse(f"Cannot write {out}: {exc.strerror or exc}.")
    click.echo(f"Wrote the report of {day} on to {out}.")


def check_writable(out: Path) -> None:
    """Refuse, before reading anything, a file that cannot be written."""
    if out.is_dir():
        refuse(f"{out} is a folder: give a file name, e.g. {out / 'report.html'}.")
    if not out.parent.is_dir():
        refuse(f"The folder {out.parent} does not exist.")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        refuse(f"Cannot write in {out.parent}: permission denied.")
