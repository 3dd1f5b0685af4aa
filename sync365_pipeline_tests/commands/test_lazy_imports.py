"""Pipeline commands never pay for the simulator: only the commands that start it import it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SIMULATOR_ONLY = ("aiohttp", "trustme", "sync365_pipeline.simulator")

PROBE = """
import json, sys
from sync365_pipeline.commands.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps(sorted(m for m in {modules} if m in sys.modules)))
"""


def loaded_after(*argv: str) -> list[str]:
    """The simulator-only modules a fresh interpreter has loaded after running `sync365 ARGV`."""
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=SIMULATOR_ONLY), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("command", ["sync", "status", "doctor", "consent"])
def test_pipeline_commands_help_does_not_import_the_simulator(command: str) -> None:
    assert loaded_after(command, "--help") == []


def test_the_simulator_command_does_import_it() -> None:
    """The probe can see a lazy import happen, so the empty lists above mean something."""
    assert loaded_after("simulator", "--help") == sorted(SIMULATOR_ONLY)
