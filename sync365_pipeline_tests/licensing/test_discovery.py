"""Discovery against the simulator: a malformed record in a customer list is skipped, the other
customers land, and the skipped record is stored with its list, place, key and reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.licensing.discovery import discover_customers
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline_tests.conftest import SimulatorFactory
from sync365_pipeline_tests.scenarios import UNIFORM_CUSTOMERS, UNIFORM_PARTNER, uniform_scenario

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
