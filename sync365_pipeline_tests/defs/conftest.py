"""Fixtures for the Dagster tests, their state (warehouse, cache, DAGSTER_HOME) in tmp_path:

- `pipeline_factory`: the pipeline configured against a private simulator, for real syncs.
- `seeded`: a warehouse written directly with the `Warehouse` API, as syncs would have left it,
  for the sensors' logic without a sync (and without a simulator).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.execution import SyncRun, run_full_sync
from sync365_pipeline.licensing.normalize import customers_frame
from sync365_pipeline.simulator import Scenario, SimulatorServer
from sync365_pipeline.warehouse import PartnerStatusRow, TenantStatusRow, Warehouse
from sync365_pipeline_tests.scenarios import PARTNER


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


@dataclass
class SeededWarehouse:
    """Writes what a sync would record, each call a minute after the previous one (so every
    call is news to the consent sensor's cursor)."""

    warehouse: Warehouse
    partner_tenant_id: str = PARTNER["tenant_id"]
    clock: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=1))

    def _tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def customers(self, *tenant_ids: str, names: Mapping[str, str] | None = None) -> None:
        """Today's customer list (with the display names in `names`, if any): the tenants not in
        it depart."""
        listed = [
            {"customerId": tenant, **({"displayName": names[tenant]} if names else {})}
            for tenant in tenant_ids
        ]
        listing = customers_frame(self.partner_tenant_id, [], [], listed).frame
        self.warehouse.upsert_customers(self.partner_tenant_id, listing, self._tick())

    def tenant_statuses(
        self, statuses: Mapping[str, TenantStatus | tuple[TenantStatus, str]]
    ) -> None:
        """One sync's outcome per tenant: a status, or (status, Microsoft error code)."""
        at = self._tick()
        rows = []
        for tenant, outcome in statuses.items():
            status, code = outcome if isinstance(outcome, tuple) else (outcome, None)
            rows.append(
                TenantStatusRow(self.partner_tenant_id, tenant, at, status, code, message=code)
            )
        self.warehouse.record_tenant_statuses(rows)

    def partner_status(self, status: str, code: str | None = None) -> None:
        """One partner-level sign-in outcome (ok, refresh_token_expired ...)."""
        self.warehouse.record_partner_status(
            PartnerStatusRow(self.partner_tenant_id, self._tick(), status, code, message=code)
        )


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SeededWarehouse:
    """The configured warehouse (`SYNC365_DUCKDB_PATH`), empty, with no webhook configured."""
    path = tmp_path / "sync365.duckdb"
    monkeypatch.setenv("SYNC365_DUCKDB_PATH", str(path))
    monkeypatch.delenv("SYNC365_WEBHOOK_URL", raising=False)
    return SeededWarehouse(Warehouse(path))
