"""Fixtures shared by every test package: running Microsoft cloud simulators, and other
processes holding the DuckDB file.

- `demo_simulator` (session): the bundled `demo` scenario, shared; do not change its state.
- `history` (session): a warehouse with three days of history (`history.py`), built once per
  xdist worker and shared by the billing views', export's and report's tests; read it only.
- `simulator_factory` (function): `simulator_factory(scenario_or_dict_or_name)` starts a private
  simulator (about 50 ms) that tests may change through `sim.control`; stopped at teardown.
- `receiver` (function): a webhook endpoint on 127.0.0.1 that records every post.
- `hold_duckdb` (function): `hold_duckdb(path, read_only=...)` starts a process that opens the
  file, as a running sync or an analyst would, and returns once it holds it; stopped at teardown.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sync365_pipeline.simulator import Scenario, SimulatorServer, load_scenario
from sync365_pipeline_tests.history import History, synced_history
from sync365_pipeline_tests.webhooks import Receiver, running_receiver

SimulatorFactory = Callable[[Scenario | dict[str, Any] | str | Path], SimulatorServer]


def as_scenario(scenario: Scenario | dict[str, Any] | str | Path) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, dict):
        return Scenario.model_validate(scenario)
    return load_scenario(scenario)


@pytest.fixture(scope="session")
def demo_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    ca_path = tmp_path_factory.mktemp("demo-simulator") / "ca.pem"
    with SimulatorServer(load_scenario("demo"), ca_path=ca_path, port=0) as sim:
        yield sim


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    yield from synced_history(tmp_path_factory)


@pytest.fixture
def simulator_factory(tmp_path: Path) -> Iterator[SimulatorFactory]:
    servers: list[SimulatorServer] = []

    def start(scenario: Scenario | dict[str, Any] | str | Path) -> SimulatorServer:
        ca_path = tmp_path / f"simulator-{len(servers)}" / "ca.pem"
        server = SimulatorServer(as_scenario(scenario), ca_path=ca_path, port=0)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


# Opens the file, says "holding", then answers each stdin line with the license_facts row count,
# until stdin closes.
_HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("holding", flush=True)
for _ in sys.stdin:
    print(con.execute("SELECT count(*) FROM license_facts").fetchone()[0], flush=True)
"""


class DuckDBHolder:
    """Another process with the DuckDB file open (read-only or read-write) until `release`."""

    def __init__(self, path: Path, *, read_only: bool) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(path), "ro" if read_only else "rw"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._stdin, self._stdout = self.process.stdin, self.process.stdout
        said = self._stdout.readline().strip()  # blocks until the file is open (or it died)
        if said != "holding":
            self.release()
            raise AssertionError(f"the holder could not open {path} (said {said!r})")

    @property
    def pid(self) -> int:
        return self.process.pid

    def count_license_facts(self) -> int:
        """The row count the holder sees through its own connection."""
        self._stdin.write("count\n")
        self._stdin.flush()
        return int(self._stdout.readline())

    def release(self) -> None:
        """Close the file and end the process (idempotent)."""
        self._stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stdout.close()


HoldDuckDB = Callable[..., DuckDBHolder]


@pytest.fixture
def hold_duckdb() -> Iterator[HoldDuckDB]:
    holders: list[DuckDBHolder] = []

    def hold(path: Path, *, read_only: bool) -> DuckDBHolder:
        holder = DuckDBHolder(path, read_only=read_only)
        holders.append(holder)
        return holder

    yield hold
    for holder in holders:
        holder.release()
