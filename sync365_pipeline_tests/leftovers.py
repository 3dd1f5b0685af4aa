"""For the tests of what killed writers leave beside their targets (warehouse/leftovers.py)."""

from __future__ import annotations

import subprocess
import sys


def ended_pid() -> int:
    """The PID of a process that has ended (and been reaped): a killed writer's."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
