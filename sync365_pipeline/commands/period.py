"""The --since/--until dates of the reading commands, and their one-line refusal of bad input."""

from __future__ import annotations

import sys
from datetime import date
from typing import NoReturn

import click

BAD_INPUT_EXIT = 2


def refuse(message: str) -> NoReturn:
    """One clear line on stderr and exit 2: the command changed nothing."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(BAD_INPUT_EXIT)


def parse_day(option: str, text: str | None) -> date | None:
    """An ISO day (YYYY-MM-DD, UTC) given to `option`, or None when not given."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        refuse(f"{option} {text!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-11-01.")


def parse_period(since: str | None, until: str | None) -> tuple[date | None, date | None]:
    """--since and --until as days, the first not after the second."""
    first, last = parse_day("--since", since), parse_day("--until", until)
    if first and last and first > last:
        refuse(f"--since {first} is after --until {last}: nothing can fall between them.")
    return first, last
