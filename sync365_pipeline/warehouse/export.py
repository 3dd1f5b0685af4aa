"""Flat files of the warehouse (`sync365 export`): one CSV, or one month-partitioned Parquet
folder, per analyst-facing table or view, with a README that says what each file is (from the
warehouse's own comments).

The files are written to a folder next to the target, then swapped into place, so a failed export
leaves the previous one whole; a target folder that is not an export is never replaced. What a
killed export left beside the target is cleared by the next one, and a previous export it had
moved aside goes back in place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from sync365_pipeline.warehouse.file import WarehouseFile
from sync365_pipeline.warehouse.leftovers import abandoned
from sync365_pipeline.warehouse.sql_text import identifier, string_literal

ExportFormat = Literal["csv", "parquet"]
MANIFEST = "README.md"
MANIFEST_TITLE = "# sync365 export"
PARTITION_COLUMN = "month"

# What analysts get, with the column that dates each row (the --since/--until filter, the month
# partition) or None for the current-state views. Left out: raw payloads, slice bookkeeping,
# schema versions, the partner's app credentials and per-user licence rows (personal data; the
# inactive users an analyst acts on are in inactive_licensed_users).
EXPORTED: Mapping[str, str | None] = {
    "customers": None,
    "tenant_health": None,
    "current_license_facts": None,
    "license_classes": None,
    "unused_licenses": None,
    "over_assigned_licenses": None,
    "sold_by_us": None,
    "renewal_actions": None,
    "inactive_licensed_users": None,
    "consent_flags": "raised_at",
    "customer_access": "checked_at",
    "tenant_status": "checked_at",
    "license_facts": "snapshot_date",
    "license_changes": "snapshot_date",
    "licensed_user_counts": "snapshot_date",
    "subscriptions": "snapshot_date",
    "tenant_subscriptions": "snapshot_date",
    "monthly_customer_summary": "month",
}


class ExportError(Exception):
    """The export cannot be written where asked; nothing was changed."""


@dataclass(frozen=True)
class ExportedFile:
    relation: str
    path: str  # relative to the export folder
    rows: int
    dated_by: str | None


class Exports(WarehouseFile):
    """Reads the file once, read-only, for every relation it exports."""

    def export(
        self,
        target: Path,
        export_format: ExportFormat,
        *,
        since: date | None = None,
        until: date | None = None,
    ) -> list[ExportedFile]:
        """Write every `EXPORTED` relation to `target` (rows dated in [since, until] for the
        dated ones), then its README; raises `ExportError` before writing anything when
        `target` cannot be an export folder, and when a write fails (the previous export left
        whole)."""
        target = Path(target)
        check_target(target)
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            with self._open(read_only=True) as con, _writing_in(target, staging):
                _recover_abandoned(target)
                staging.mkdir()
                written = [
                    _write(con, staging, name, dated_by, export_format, since, until)
                    for name, dated_by in EXPORTED.items()
                ]
                (staging / MANIFEST).write_text(
                    manifest(con, written, export_format, since, until), encoding="utf-8"
                )
                _swap_into_place(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return written


@contextmanager
def _writing_in(target: Path, staging: Path) -> Iterator[None]:
    """A failed write (an OSError, or DuckDB's own error from a COPY) as an `ExportError` that
    names the folder asked for, not the hidden staging folder beside it."""
    try:
        yield
    except (OSError, duckdb.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        reason = reason.replace(str(staging), str(target))
        raise ExportError(f"Cannot write in {target.parent}: {reason.rstrip('.')}.") from exc


def check_target(target: Path) -> None:
    """Raise `ExportError` unless `target` can take an export: a new folder in a writable one,
    or a previous export (its README says so) that may be replaced."""
    parent = target.parent
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} is a file, not a folder.")
    if not parent.is_dir():
        raise ExportError(f"The folder {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"Cannot write in {parent}: permission denied.")
    if target.is_dir() and any(target.iterdir()) and not _is_export(target):
        raise ExportError(
            f"{target} holds other files: choose an empty or new folder (a previous export "
            "is replaced, nothing else)."
        )


def _is_export(folder: Path) -> bool:
    manifest_path = folder / MANIFEST
    return manifest_path.is_file() and manifest_path.read_text("utf-8").startswith(MANIFEST_TITLE)


def _write(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    relation: str,
    dated_by: str | None,
    export_format: ExportFormat,
    since: date | None,
    until: date | None,
) -> ExportedFile:
    """One relation's file (or month folders); its names are `EXPORTED`'s, its days dates."""
    name = identifier(relation)
    where = "true"
    if dated_by is not None:
        first, last = _date_literal(since, date.min), _date_literal(until, date.max)
        where = f"CAST({identifier(dated_by)} AS DATE) BETWEEN {first} AND {last}"
    query = f"SELECT * FROM {name} WHERE {where}"  # noqa: S608 (fixed names, dates)
    if export_format == "csv":
        path = f"{relation}.csv"
        options = "HEADER"
    elif dated_by is None:
        path = f"{relation}.parquet"
        options = "FORMAT parquet"
    else:
        path = relation
        month = f"strftime({identifier(dated_by)}, '%Y-%m') AS {PARTITION_COLUMN}"
        columns = f"* REPLACE ({month})" if dated_by == PARTITION_COLUMN else f"*, {month}"
        query = f"SELECT {columns} FROM ({query})"  # noqa: S608 (fixed names)
        options = f"FORMAT parquet, PARTITION_BY ({PARTITION_COLUMN})"
    copied = con.execute(
        f"COPY ({query}) TO {string_literal(str(folder / path))} ({options})"
    ).fetchone()  # COPY answers with the rows it wrote (and makes a partitioned folder for none)
    return ExportedFile(relation, path, int(copied[0]) if copied else 0, dated_by)


def _date_literal(day: date | None, default: date) -> str:
    return f"DATE {string_literal((day or default).isoformat())}"


def _swap_into_place(staging: Path, target: Path) -> None:
    """Put the finished export at `target`; a previous export there is moved aside, then
    removed, or moved back when the finished one cannot take its place."""
    if not target.exists():
        staging.rename(target)
        return
    previous = target.with_name(f".{target.name}.{os.getpid()}.old")
    target.rename(previous)
    try:
        staging.rename(target)
    except OSError:
        previous.rename(target)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _recover_abandoned(target: Path) -> None:
    """Clear what killed exports left beside `target`: their half-written folders, and the
    previous export one moved aside, which goes back in place if it was killed before its own
    export took that place (else it is a leftover too)."""
    for leftover in abandoned(target, ".old"):
        if target.exists():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.rename(target)
    for leftover in abandoned(target, ".tmp"):
        shutil.rmtree(leftover, ignore_errors=True)


def manifest(
    con: duckdb.DuckDBPyConnection,
    written: list[ExportedFile],
    export_format: ExportFormat,
    since: date | None,
    until: date | None,
) -> str:
    """The README of an export: what each file is and what its columns mean, from the
    warehouse's comments (the data dictionary's texts)."""
    comments = dict(
        con.execute(
            "SELECT table_name, comment FROM duckdb_tables() UNION ALL "
            "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
    )
    period = f"from {since or 'the first day'} to {until or 'the last day'}"
    lines = [
        MANIFEST_TITLE,
        "",
        f"One file per table or view of the sync365 warehouse, as {export_format.upper()}. "
        f"Dated files hold the rows dated {period} (UTC); the others, the current state.",
    ]
    if export_format == "csv":
        lines += [
            "",
            'In CSV an empty field is NULL and `""` an empty text; lists are written as '
            "`[a, b]`. Read a file back with the types of the README's columns, e.g. "
            "`read_csv('tenant_health.csv', allow_quoted_nulls = false)`.",
        ]
    if export_format == "parquet":
        lines += [
            "",
            "A dated relation is a folder partitioned by month, hive style "
            f"(`{PARTITION_COLUMN}=YYYY-MM/`): read it whole with "
            "`read_parquet('<folder>/**/*.parquet', hive_partitioning = true)`. In "
            "monthly_customer_summary the partition column is the month itself, as YYYY-MM.",
        ]
    lines += ["", "| file | rows | dated by | what it is |", "|---|---|---|---|"]
    for item in written:
        text = (comments.get(item.relation) or "").replace("|", "\\|")
        lines.append(f"| `{item.path}` | {item.rows} | {item.dated_by or '-'} | {text} |")
    for item in written:
        lines += ["", f"## {item.path}", ""]
        for column, data_type, text in con.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE table_name = ? "
            "ORDER BY column_index",
            [item.relation],
        ).fetchall():
            lines.append(f"- `{column}` ({data_type}): {text or ''}")
    return "\n".join(lines) + "\n"
