"""What a killed writer leaves beside its target: the `.{name}.{pid}{suffix}` files or folders
it writes before a rename into place, which nobody else would ever remove."""

from __future__ import annotations

import glob
import os
from pathlib import Path


def abandoned(target: Path, suffix: str) -> list[Path]:
    """The `.{target.name}.{pid}{suffix}` entries beside `target` whose writer (that PID) is
    gone; a live writer's are left to it."""
    prefix = f".{target.name}."
    found = []
    for leftover in target.parent.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
        pid = leftover.name.removeprefix(prefix).removesuffix(suffix)
        if pid.isdigit() and not _alive(int(pid)):
            found.append(leftover)
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True
