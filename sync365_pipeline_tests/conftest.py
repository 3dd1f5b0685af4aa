"""Fixtures shared by every test package: running Microsoft cloud simulators.

- `demo_simulator` (session): the bundled `demo` scenario, shared; do not change its state.
- `simulator_factory` (function): `simulator_factory(scenario_or_dict_or_name)` starts a private
  simulator (about 50 ms) that tests may change through `sim.control`; stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sync365_pipeline.simulator import Scenario, SimulatorServer, load_scenario

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
