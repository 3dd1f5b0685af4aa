"""A pipeline configured against a private simulator, its state (warehouse, cache) in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.execution import SyncRun, run_full_sync
from sync365_pipeline.simulator import Scenario, SimulatorServer
from sync365_pipeline.warehouse import Warehouse


@dataclass
class Pipeline:
    """One partner's pipeline, configured by environment exactly as a user would configure it."""

    sim: SimulatorServer
    instance: dg.DagsterInstance
    warehouse: Warehouse
    token_cache: Path

    @property
    def partner_tenant_id(self) -> str:
        return self.sim.environment()["SYNC365_PARTNER_TENANT_ID"]

    def sync(self) -> SyncRun:
        return run_full_sync(defs, self.instance)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        import duckdb

        with duckdb.connect(str(self.warehouse.path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()


PipelineFactory = Callable[[Scenario | dict[str, Any] | str], Pipeline]


@pytest.fixture
def pipeline_factory(
    simulator_factory: Callable[[Any], SimulatorServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[PipelineFactory]:
    instances: list[dg.DagsterInstance] = []

    def start(scenario: Scenario | dict[str, Any] | str) -> Pipeline:
        sim = simulator_factory(scenario)
        for name, value in sim.environment().items():
            monkeypatch.setenv(name, value)
        token_cache = tmp_path / "token_cache.json"
        duckdb_path = tmp_path / "sync365.duckdb"
        monkeypatch.setenv("SYNC365_TOKEN_CACHE", str(token_cache))
        monkeypatch.setenv("SYNC365_DUCKDB_PATH", str(duckdb_path))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
        instance = dg.DagsterInstance.ephemeral()
        instances.append(instance)
        return Pipeline(sim, instance, Warehouse(duckdb_path), token_cache)

    yield start
    for instance in instances:
        instance.dispose()
