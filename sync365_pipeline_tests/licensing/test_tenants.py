"""The per-tenant fetch against the simulator, counted by route: a token and a Graph call per
tenant, plus the access audit's Graph call per active GDAP relationship (issue 10), nothing at all
for a warm second sync's tokens and discovery, and Partner Center only for a tenant holding a SKU
the catalog cannot name."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.chunks import customer_routes
from sync365_pipeline.licensing.discovery import discover_customers
from sync365_pipeline.licensing.normalize import NAME_SOURCE_PARTNER_CENTER, license_fact_rows
from sync365_pipeline.licensing.tenants import CustomerRoutes, fetch_tenants
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline.warehouse.columns import LICENSE_FACT_COLUMNS
from sync365_pipeline_tests.scenarios import (
    DIRECT_TENANT,
    UNIFORM_CUSTOMERS,
    UNIFORM_PARTNER,
    uniform_scenario,
    with_direct_tenant_scenario,
)

ONLY_FLOW_FREE = "cccccccc-0000-4000-8000-000000000004"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"


def settings_for(sim: Any, tmp_path: Path) -> AccountSettings:
    return AccountSettings.from_env(
        {**sim.environment(), "SYNC365_TOKEN_CACHE": str(tmp_path / "token_cache.json")}
    )


def discovered(
    cloud: MicrosoftCloud, settings: AccountSettings, tenant_ids: list[str]
) -> list[CustomerRoutes]:
    """Discovery's partner-level calls, and the routes it records for `tenant_ids` (each uniform
    customer has one active GDAP relationship)."""
    warehouse = Warehouse(settings.token_cache_path.with_name("sync365.duckdb"))
    discover_customers(cloud, warehouse, settings, utcnow())
    routes = customer_routes(warehouse, settings.tenant_id)
    return [routes[tenant_id] for tenant_id in tenant_ids]


def sync(settings: AccountSettings, tenant_ids: list[str], **options: Any) -> list[Any]:
    """What a sync asks Microsoft for: discovery's partner-level calls, then every tenant."""
    with MicrosoftCloud.from_settings(settings) as cloud:
        customers = discovered(cloud, settings, tenant_ids)
        return fetch_tenants(cloud, customers, max_workers=4, **options)


def test_each_catalogued_tenant_costs_one_token_three_graph_and_one_partner_center_request(
    simulator_factory, tmp_path
):
    """Its SKUs and its subscriptions (customer token), the access audit of its one active GDAP
    relationship (partner token), and, being a reseller customer, the subscriptions the partner
    sells it (Partner Center)."""
    sim = simulator_factory(uniform_scenario())
    settings = settings_for(sim, tmp_path)
    with MicrosoftCloud.from_settings(settings) as cloud:
        customers = discovered(cloud, settings, UNIFORM_CUSTOMERS)
        sim.control.reset_request_counts()
        fetches = fetch_tenants(cloud, customers, max_workers=4)

    assert [fetched.status for fetched in fetches] == [TenantStatus.OK] * 3
    assert all(fetched.partner_center_skus is None for fetched in fetches)
    counts = sim.control.request_counts()
    assert counts["by_route"] == {
        "identity.token": 3,
        "graph.subscribedSkus": 3,
        "graph.directorySubscriptions": 3,
        "graph.accessAssignments": 3,
        "partner_center.subscriptions": 3,
    }
    assert {tenant: counts["by_tenant"][tenant] for tenant in UNIFORM_CUSTOMERS} == dict.fromkeys(
        UNIFORM_CUSTOMERS, 4
    )


def test_a_warm_second_sync_sends_no_token_or_discovery_request(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    settings = settings_for(sim, tmp_path)
    cold = sync(settings, UNIFORM_CUSTOMERS)
    cold_routes = Counter(sim.control.request_counts()["by_route"])
    sim.control.reset_request_counts()

    warm = sync(settings, UNIFORM_CUSTOMERS)  # a new process would start exactly like this

    routes = sim.control.request_counts()["by_route"]
    assert cold_routes["identity.openid_configuration"] == 1, "the partner's, once"
    assert cold_routes["identity.token"] == 2 + 3, "Partner Center, partner Graph, 3 customers"
    assert routes == {
        "partner_center.customers": 1,
        "graph.delegatedAdminRelationships": 1,
        "graph.contracts": 1,
        "graph.application": 1,  # the app's client secrets, once per account (their expiry)
        "graph.subscribedSkus": 3,
        "graph.directorySubscriptions": 3,
        "graph.accessAssignments": 3,
        "partner_center.subscriptions": 3,
    }
    assert [fetched.graph_skus for fetched in warm] == [fetched.graph_skus for fetched in cold]


def test_a_customer_token_near_its_expiry_is_requested_again(simulator_factory, tmp_path):
    """MSAL treats a token with under 5 minutes left as expired: the warm sync redeems again."""
    sim = simulator_factory(uniform_scenario(settings={"access_token_lifetime_s": 299}))
    settings = settings_for(sim, tmp_path)
    sync(settings, UNIFORM_CUSTOMERS)
    sim.control.reset_request_counts()
    sync(settings, UNIFORM_CUSTOMERS)
    routes = sim.control.request_counts()["by_route"]
    assert routes.get("identity.openid_configuration") is None
    assert routes["identity.token"] >= 3


def test_a_tenant_with_an_uncatalogued_sku_gets_its_partner_center_name(
    simulator_factory, tmp_path
):
    only_flow_free = {
        "tenant_id": ONLY_FLOW_FREE,
        "display_name": "Customer 4",
        "default_domain": "customer4.onmicrosoft.com",
        "gdap_relationships": [{"status": "active", "ends_in_days": 100}],
        "skus": [{"part_number": "FLOW_FREE", "enabled": 100, "consumed": 2}],
    }
    sim = simulator_factory(uniform_scenario(customers=[only_flow_free]))
    without_spb = SkuCatalog(s for s in SkuCatalog.load(None).skus() if s.sku_id != SPB)
    tenant_ids = [*UNIFORM_CUSTOMERS, ONLY_FLOW_FREE]
    with MicrosoftCloud.from_settings(settings_for(sim, tmp_path)) as cloud:
        cloud.partner_center.customers()
        sim.control.reset_request_counts()
        fetches = fetch_tenants(cloud, tenant_ids, max_workers=4, catalog=without_spb)

    by_tenant = {fetched.tenant_id: fetched for fetched in fetches}
    assert [fetched.tenant_id for fetched in fetches] == tenant_ids, "in the order asked"
    assert sim.control.request_counts()["by_route"]["partner_center.subscribedskus"] == 3
    assert by_tenant[ONLY_FLOW_FREE].partner_center_skus is None, "the catalog names FLOW_FREE"
    fact_rows = license_fact_rows(
        partner_tenant_id=UNIFORM_PARTNER,
        tenant_id=UNIFORM_CUSTOMERS[0],
        snapshot_date=date(2026, 12, 1),
        synced_at=by_tenant[UNIFORM_CUSTOMERS[0]].checked_at,
        graph_skus=by_tenant[UNIFORM_CUSTOMERS[0]].graph_skus,
        partner_center_skus=by_tenant[UNIFORM_CUSTOMERS[0]].partner_center_skus,
        catalog=without_spb,
    ).rows
    facts = {row[3]: dict(zip(LICENSE_FACT_COLUMNS, row, strict=True)) for row in fact_rows}
    assert facts[SPB]["product_name_source"] == NAME_SOURCE_PARTNER_CENTER
    assert facts[SPB]["product_name"] == "Microsoft 365 Business Premium"


def test_without_partner_center_no_name_is_asked_for(simulator_factory, tmp_path):
    """A direct tenant's account has no Partner Center: an uncatalogued SKU keeps its part
    number."""
    sim = simulator_factory(uniform_scenario())
    with MicrosoftCloud.from_settings(settings_for(sim, tmp_path)) as cloud:
        fetches = fetch_tenants(
            cloud, UNIFORM_CUSTOMERS, max_workers=2, partner_center=False, catalog=SkuCatalog()
        )
    assert all(fetched.partner_center_skus is None for fetched in fetches)
    assert "partner_center.subscribedskus" not in sim.control.request_counts()["by_route"]


def test_a_direct_tenants_warm_sync_reuses_its_app_only_token(simulator_factory, tmp_path):
    sim = simulator_factory(with_direct_tenant_scenario())
    direct = settings_for(sim, tmp_path).model_copy(
        update={"kind": "direct", "tenant_id": DIRECT_TENANT}
    )
    for _ in range(2):
        sim.control.reset_request_counts()
        with MicrosoftCloud.from_settings(direct) as cloud:
            cloud.graph.organization(DIRECT_TENANT)
            (fetched,) = fetch_tenants(cloud, [DIRECT_TENANT], max_workers=1, partner_center=False)
        assert fetched.status is TenantStatus.OK
    assert sim.control.request_counts()["by_route"] == {
        "graph.organization": 1,
        "graph.subscribedSkus": 1,
        "graph.directorySubscriptions": 1,
    }


def test_no_more_tenants_are_in_flight_than_the_pool_allows(simulator_factory, tmp_path):
    """Twelve slow customers through a pool of three: Microsoft sees at most three at once, and
    the pool is really used (more than one at once)."""
    extra = [
        {
            "tenant_id": f"dddddddd-0000-4000-8000-{index:012d}",
            "display_name": f"Slow Customer {index}",
            "default_domain": f"slow{index}.onmicrosoft.com",
            "dap": True,
            "skus": [{"part_number": "SPB", "enabled": 5, "consumed": 1}],
        }
        for index in range(9)
    ]
    sim = simulator_factory(uniform_scenario(customers=extra, settings={"latency_ms": 60}))
    tenant_ids = [*UNIFORM_CUSTOMERS, *(customer["tenant_id"] for customer in extra)]
    with MicrosoftCloud.from_settings(settings_for(sim, tmp_path)) as cloud:
        cloud.partner_center.customers()
        sim.control.reset_request_counts()
        fetches = fetch_tenants(cloud, tenant_ids, max_workers=3)

    assert [fetched.status for fetched in fetches] == [TenantStatus.OK] * 12
    assert 2 <= sim.control.request_counts()["max_in_flight"] <= 3
