"""The Microsoft cloud simulator: Entra ID, Partner Center and Graph over HTTPS on 127.0.0.1.

The pipeline never imports this package; the CLI (`sync365 simulator`), the demo, the tests and
the benchmarks start it. See README.md in this folder for the scenario format and the control API.
"""

from sync365_pipeline.simulator.client import SimulatorClient, SimulatorControlError
from sync365_pipeline.simulator.scenario import Scenario, ScenarioError, load_scenario
from sync365_pipeline.simulator.server import SimulatorServer

__all__ = [
    "Scenario",
    "ScenarioError",
    "SimulatorClient",
    "SimulatorControlError",
    "SimulatorServer",
    "load_scenario",
]
