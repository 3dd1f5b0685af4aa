"""The analyst copy of `Warehouse`: the file analysts open, so they never lock out a sync."""

from __future__ import annotations

import os
from pathlib import Path

from sync365_pipeline.warehouse.file import WarehouseFile


class AnalystCopy(WarehouseFile):
    """Publishing the copy after each write keeps analysts' tools off the live file."""

    def publish_analyst_copy(self, target: Path | None = None) -> Path:
        """Copy the whole database next to `target`, then atomically rename it into place.

        An analyst who has the old copy open keeps reading it (POSIX rename semantics); the next
        open sees the new one. Analysts never open the live file, so they cannot block a sync.
        """
        target = Path(target) if target else self.analyst_copy_path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        try:
            with self._open() as con:
                row = con.execute("SELECT current_database()").fetchone()
                source = _identifier(row[0] if row else "")
                con.execute(f"ATTACH {_string_literal(str(temporary))} AS sync365_publish")
                con.execute(f"COPY FROM DATABASE {source} TO sync365_publish")
                con.execute("DETACH sync365_publish")
                os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _string_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
