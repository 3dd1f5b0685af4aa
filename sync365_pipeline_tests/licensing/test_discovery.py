"""Discovery against the simulator: a malformed record in a customer list is skipped, the other
customers land, and the skipped record is stored with its list, place, key and reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.licensing.discovery import discover_customers
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.microsoft.graph import GraphClient
from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline_tests.conftest import SimulatorFactory
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CLIENT_SECRET,
    UNIFORM_CUSTOMERS,
    UNIFORM_PARTNER,
    uniform_scenario,
)

UNNAMEABLE = "99999999-0000-4000-8000-000000000009"  # a readable tenant id, an unusable name
SEEN_AT = datetime(2026, 7, 1, 5, tzinfo=UTC)


def test_bad_records_in_every_customer_list_are_stored_and_the_others_land(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    bad_customer = {"companyProfile": {"tenantId": UNNAMEABLE, "companyName": ["not", "text"]}}
    sim = simulator_factory(
        uniform_scenario(
            faults={
                UNIFORM_PARTNER: [
                    {"type": "bad_record", "service": "partner_center", "record": bad_customer},
                    {"type": "bad_record", "service": "graph"},  # GDAP and contracts lists
                ]
            }
        )
    )
    settings = AccountSettings.from_env(
        {**sim.environment(), "SYNC365_TOKEN_CACHE": str(tmp_path / "token_cache.json")}
    )
    warehouse = Warehouse(tmp_path / "sync365.duckdb")

    with MicrosoftCloud.from_settings(settings) as cloud:
        found = discover_customers(cloud, warehouse, settings, SEEN_AT)

    assert sorted(found.customers["tenant_id"]) == sorted(UNIFORM_CUSTOMERS)
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        stored = con.execute(
            "SELECT partner_tenant_id, seen_at, list_name, list_index, record_key, reason "
            "FROM skipped_customer_records ORDER BY list_name"
        ).fetchall()
        customers = {row[0] for row in con.execute("SELECT tenant_id FROM customers").fetchall()}
    assert customers == set(UNIFORM_CUSTOMERS)
    assert [(row[2], row[4]) for row in stored] == [
        ("contracts", None),
        ("customers", UNNAMEABLE),
        ("delegatedAdminRelationships", None),
    ]
    assert {row[0] for row in stored} == {UNIFORM_PARTNER}
    assert {row[1] for row in stored} == {SEEN_AT.replace(tzinfo=None)}
    for _, _, list_name, index, _, reason in stored:
        assert f"{list_name}[{index}]" in reason
    assert "companyName" in stored[1][5]
    assert len(found.skipped) == len(stored)


def discover(sim: SimulatorServer, tmp_path: Path) -> tuple[AccountSettings, Warehouse]:
    settings = AccountSettings.from_env(
        {**sim.environment(), "SYNC365_TOKEN_CACHE": str(tmp_path / "token_cache.json")}
    )
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    with MicrosoftCloud.from_settings(settings) as cloud:
        discover_customers(cloud, warehouse, settings, SEEN_AT)
    return settings, warehouse


def test_discovery_records_the_apps_client_secrets_and_which_is_in_use_never_the_hint(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    credentials = [
        {"display_name": "current", "ends_in_days": 20},
        {"display_name": "old", "hint": "Zq8", "ends_in_days": -45},
    ]
    sim = simulator_factory(uniform_scenario(partner={"password_credentials": credentials}))

    _, warehouse = discover(sim, tmp_path)

    stored = warehouse.latest_app_credentials()
    assert stored[["display_name", "in_use", "message"]].values.tolist() == [
        ["current", True, None],
        ["old", False, None],
    ]
    assert set(stored["partner_tenant_id"]) == {UNIFORM_PARTNER}
    assert set(stored["checked_at"]) == {SEEN_AT.replace(tzinfo=None)}
    now = datetime.now(UTC).replace(tzinfo=None)
    current_end, old_end = stored["end_date"]
    assert timedelta(days=19) < current_end - now <= timedelta(days=20)
    assert old_end < now
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        dump = str(con.execute("SELECT * FROM app_credentials").fetchall())
    assert UNIFORM_CLIENT_SECRET[:3] not in dump, "the hint is compared, never stored"


def test_unreadable_client_secrets_are_a_row_naming_the_permission_and_discovery_goes_on(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = simulator_factory(uniform_scenario(partner={"app_readable": False}))

    _, warehouse = discover(sim, tmp_path)

    assert sorted(warehouse.active_tenants()) == sorted(UNIFORM_CUSTOMERS)
    (row,) = warehouse.latest_app_credentials().to_dict("records")
    assert (row["key_id"], row["in_use"]) == (None, None)
    assert pd.isna(row["end_date"])
    assert "Authorization_RequestDenied, HTTP 403" in row["message"]
    assert "Application.Read.All" in row["message"]


def test_a_bug_reading_client_secrets_is_a_row_and_discovery_goes_on(
    simulator_factory: SimulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong reading the app's secrets (here a bug in the client), the customers
    still land: the sync does not depend on them."""

    def broken(self: object, app_id: str) -> list[dict[str, object]]:
        raise RuntimeError("the credentials client broke")

    monkeypatch.setattr(GraphClient, "password_credentials", broken)
    sim = simulator_factory(uniform_scenario())

    _, warehouse = discover(sim, tmp_path)

    assert sorted(warehouse.active_tenants()) == sorted(UNIFORM_CUSTOMERS)
    (row,) = warehouse.latest_app_credentials().to_dict("records")
    assert row["key_id"] is None
    assert "RuntimeError('the credentials client broke')" in row["message"]
