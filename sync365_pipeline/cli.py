"""The `sync365` command."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """sync365: Microsoft 365 license facts for Microsoft partners, in DuckDB."""
