"""`sync365` run as a user runs it: a real process, with an environment of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SYNC365 = [sys.executable, "-m", "sync365_pipeline.commands.cli"]


def clean_env(tmp_path: Path) -> dict[str, str]:
    """This shell's environment without any SYNC365_* or DAGSTER_* variable; DAGSTER_HOME in
    `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC365_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    return env


def run_sync365(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SYNC365, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
