"""`sync365 status`'s Checks section: each data-quality check's latest result, failing ones first,
with what it found and what to do, without the Dagster UI.

A check the latest sync skipped (those after the facts step, when a blocking check stopped it)
is marked with when it was last evaluated, so an older result never reads as current.

The results are read from the live warehouse, not the analyst copy: a blocking check stops the
run before the copy is published, and it is exactly that failure status must show. The read is
read-only and brief; while a sync holds the file it falls back to the copy and says so.
"""

from __future__ import annotations

import textwrap

import duckdb
import pandas as pd

from sync365_pipeline.warehouse import Warehouse, WarehouseLocked

LOCK_WAIT_S = 2.0  # a sync holds the file for milliseconds to seconds at a time


def checks_section(live: Warehouse, width: int) -> str:
    """The Checks section of the `live` warehouse, each line at most `width` wide."""
    note = ""
    try:
        results = _latest_results(Warehouse(live.path, lock_timeout_s=LOCK_WAIT_S))
    except WarehouseLocked:
        results = _latest_results(live.readable() or live)
        note = " (a sync holds the warehouse: these are from the analyst copy)"
    if results is None or results.empty:
        return "Checks: none recorded yet (each sync records them)."
    if "in_latest_sync" not in results:  # an analyst copy published by an older release
        results = results.assign(in_latest_sync=True)
    failing = int((~results["passed"]).sum())
    not_run = int((~results["in_latest_sync"]).sum())
    skipped = f", {not_run} not run in the latest sync" if not_run else ""
    at = results["checked_at"].max()
    lines = textwrap.wrap(
        f"Checks (latest {at:%Y-%m-%d %H:%M} UTC): {failing} of {len(results)} failing"
        f"{skipped}{note}.",
        width,
        subsequent_indent="  ",
    )
    for row in results.itertuples(index=False):
        mark = "ok" if row.passed else "FAILED" if row.blocking else "warning"
        blocking = ", blocking" if row.blocking and not row.passed else ""
        head = f"  {mark:<8}{row.check_name} ({row.asset}{blocking}): "
        lines += textwrap.wrap(
            head + row.summary, width, subsequent_indent=" " * 10, break_on_hyphens=False
        )
        if not row.in_latest_sync:  # e.g. skipped after a blocking check stopped the facts
            lines += textwrap.wrap(
                f"not run in the latest sync: last evaluated {row.checked_at:%Y-%m-%d %H:%M} UTC",
                width,
                initial_indent=" " * 10,
                subsequent_indent=" " * 10,
            )
        if isinstance(row.remedy, str):
            lines += textwrap.wrap(
                f"what to do: {row.remedy}",
                width,
                initial_indent=" " * 10,
                subsequent_indent=" " * 22,
                break_on_hyphens=False,
            )
    return "\n".join(lines)


def _latest_results(warehouse: Warehouse) -> pd.DataFrame | None:
    """Each check's latest result; None when the file or its `check_results` does not exist yet
    (no sync since the migration that added it)."""
    if not warehouse.path.exists():
        return None
    try:
        return warehouse.latest_check_results()
    except duckdb.CatalogException:
        return None
