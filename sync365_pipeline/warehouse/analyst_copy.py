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
        _remove_abandoned_copies(target)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        try:
            with self._open() as con:
                row = con.execute("SELECT current_database()").fetchone()
                source = _identifier(row[0] if row else "")
                con.execute(f"ATTACH {_string_literal(str(temporary))} AS sync365_publish")
                con.execute(f"COPY FROM DATABASE {source} TO sync365_publish")
                con.execute("CHECKPOINT sync365_publish")  # no WAL may stay behind the copy
                con.execute("DETACH sync365_publish")
                os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target


def _remove_abandoned_copies(target: Path) -> None:
    """Delete half-written copies left by publishers that were killed (their PID is gone)."""
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        pid = leftover.name.removeprefix(f".{target.name}.").removesuffix(".tmp")
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _string_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
