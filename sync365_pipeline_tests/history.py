"""A warehouse with history: the demo scenario synced on three explicit days, with seats changed
and a customer's Graph access lost between them, as the billing views, `sync365 export` and
`sync365 report` see it (their tests share it: the session fixture `history`, one per xdist worker).

Each sync runs in `core.clock.replaying(its day)` (this time of day, on that day), so its statuses
are dated like its facts; the simulator keeps the real time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import pytest

from sync365_pipeline.catalog import SkuCatalog, sku_classes
from sync365_pipeline.core.clock import replaying, utcnow
from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.licensing import chunks
from sync365_pipeline.licensing.discovery import discover_customers
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.simulator import SimulatorServer, load_scenario
from sync365_pipeline.warehouse import Warehouse, staged_files

DAY1, DAY2, DAY3 = date(2026, 10, 20), date(2026, 11, 5), date(2026, 11, 25)
NORTHWIND = "a51c8ac0-98f8-4206-9aaa-ef644b70e6e6"  # SPB 40 -> 45 seats bought after DAY1
FABRIKAM = "ea387754-8c47-4f92-84a1-7ac22ee21a16"  # MDE_SMB 18 -> 15 seats after DAY2
SUMMIT = "aefac2e1-1ad7-4c55-9a3d-3e67597ef908"  # Graph refuses it after DAY2: stale on DAY3


@dataclass(frozen=True)
class History:
    """The synced warehouse (its analyst copy published) and the account that synced it."""

    warehouse: Warehouse
    settings: AccountSettings
    environment: dict[str, str]


def sync_day(settings: AccountSettings, warehouse: Warehouse, day: date) -> None:
    """One sync of every active customer whose facts describe `day`, as the Dagster run does it:
    discovery, the bulk fetch in chunks and its writer, then the facts the chunks staged."""
    catalog = SkuCatalog.load()
    with MicrosoftCloud.from_settings(settings) as cloud:
        discover_customers(cloud, warehouse, settings, utcnow())
        planned = chunks.plan_chunks(
            warehouse,
            [settings],
            {settings.tenant_id: warehouse.active_tenants(settings.tenant_id)},
            snapshot_date=day,
            sync_id=f"history-{day.isoformat()}",
            staging_dir=warehouse.staging_dir(day.isoformat()),
        )
        staged = [chunks.fetch_chunk(cloud, settings, chunk, catalog) for chunk in planned]
    chunks.store_chunks(warehouse, staged, [settings])
    warehouse.replace_sku_classes(asdict(entry) for entry in sku_classes(catalog))
    warehouse.promote_staged_facts(day, staged_files(warehouse.staging_dir(day.isoformat())))


@contextmanager
def demo_simulated(folder: Path) -> Iterator[tuple[SimulatorServer, History]]:
    """The demo scenario's simulator, and an empty migrated warehouse in `folder` with the
    account that syncs it from there."""
    with SimulatorServer(load_scenario("demo"), ca_path=folder / "ca.pem", port=0) as sim:
        environment = {
            **sim.environment(),
            "SYNC365_TOKEN_CACHE": str(folder / "token_cache.json"),
            "SYNC365_DUCKDB_PATH": str(folder / "sync365.duckdb"),
        }
        warehouse = Warehouse(folder / "sync365.duckdb")
        warehouse.migrate()
        yield sim, History(warehouse, AccountSettings.from_env(environment), environment)


def synced_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """The history, for the session fixture `history` (conftest.py)."""
    with demo_simulated(tmp_path_factory.mktemp("history")) as (sim, history):
        settings, warehouse = history.settings, history.warehouse
        with replaying(DAY1):
            sync_day(settings, warehouse, DAY1)
        sim.control.set_sku_units(NORTHWIND, "SPB", enabled=45)
        with replaying(DAY2):
            sync_day(settings, warehouse, DAY2)
        sim.control.set_sku_units(FABRIKAM, "MDE_SMB", enabled=15, consumed=15)
        sim.control.set_fault(SUMMIT, {"type": "graph_forbidden"})
        with replaying(DAY3):
            sync_day(settings, warehouse, DAY3)
        warehouse.publish_analyst_copy()
        yield history
