"""The analyst copy of `Warehouse`: the file analysts open, so they never lock out a sync."""

from __future__ import annotations

import os
from pathlib import Path

from sync365_pipeline.warehouse.file import WarehouseFile
from sync365_pipeline.warehouse.leftovers import abandoned
from sync365_pipeline.warehouse.sql_text import identifier, string_literal

# The oldest DuckDB storage format (version 64) the copy can be written in: DuckDB 1.1 to 2.x, and
# so the CLIs and the drivers BI tools ship, open it (1.0 cannot read a key or an index written by
# DuckDB 2), while a file in DuckDB 2's own format opens in DuckDB 2 only. Only the pipeline opens
# the live file, which keeps the default.
ANALYST_STORAGE_VERSION = "v1.0.0"
# The pipeline's own state that analysts have no use for, left out of the copy: the users delta
# links are Graph sync tokens, which only the pipeline should hold.
NOT_FOR_ANALYSTS = ("user_delta_links",)


class AnalystCopy(WarehouseFile):
    """Publishing the copy after each write keeps analysts' tools off the live file."""

    def publish_analyst_copy(self, target: Path | None = None) -> Path:
        """Copy the database but `NOT_FOR_ANALYSTS` next to `target` (comments included, in the
        storage format of `ANALYST_STORAGE_VERSION`), then atomically rename it into place.

        An analyst who has the old copy open keeps reading it (POSIX rename semantics); the next
        open sees the new one. Analysts never open the live file, so they cannot block a sync.
        """
        target = Path(target) if target else self.analyst_copy_path
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_copies(target)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        try:
            with self._open(checkpoint=True) as con:  # once per sync: the WAL into the file
                row = con.execute("SELECT current_database()").fetchone()
                source = row[0] if row else ""
                # An index of the copy records the name it was attached under, and DuckDB 1.1
                # refuses it unless that is the name the file opens as: the target's stem.
                alias = target.stem if target.stem.lower() != source.lower() else "sync365_publish"
                con.execute(
                    f"ATTACH {string_literal(str(temporary))} AS {identifier(alias)} "
                    f"(STORAGE_VERSION {string_literal(ANALYST_STORAGE_VERSION)})"
                )
                con.execute(f"COPY FROM DATABASE {identifier(source)} TO {identifier(alias)}")
                for table in NOT_FOR_ANALYSTS:  # gone before the copy's first checkpoint
                    con.execute(f"DROP TABLE {identifier(alias)}.main.{identifier(table)}")
                con.execute(f"CHECKPOINT {identifier(alias)}")  # no WAL may stay behind the copy
                con.execute(f"DETACH {identifier(alias)}")
                os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target


def _remove_abandoned_copies(target: Path) -> None:
    """Delete half-written copies left by publishers that were killed (their PID is gone)."""
    for leftover in abandoned(target, ".tmp"):
        leftover.unlink(missing_ok=True)
