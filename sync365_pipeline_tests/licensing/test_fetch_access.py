"""Issue 10's part of the per-tenant fetch against the simulator: CPV consent granted once and
the tenant read in the same fetch, the GDAP access audit, and the Partner Center fallback; each
customer's routes as discovery records them in a real DuckDB warehouse."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing import chunks, discovery, facts, tenants
from sync365_pipeline.licensing.access import CpvConsent
from sync365_pipeline.microsoft import ConsentFailed, MicrosoftCloud, RetrySettings
from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline.simulator.scenario import DIRECTORY_READERS_ROLE, LICENSE_ADMINISTRATOR_ROLE
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline.warehouse.columns import LICENSE_FACT_COLUMNS
from sync365_pipeline_tests.conftest import SimulatorFactory
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CLIENT_ID,
    UNIFORM_CUSTOMERS,
    UNIFORM_PARTNER,
    uniform_scenario,
)
from sync365_pipeline_tests.simulator.test_consent_and_access import (
    CONSENT_SERVER_ERROR,
    ENDING_SOON,
    EXCHANGE_ADMINISTRATOR,
    ISSUE_10_CUSTOMERS,
    NO_LICENSE_ROLE,
    REFUSES_CONSENT,
    RESELLER_WITHOUT_GRAPH,
    UNCONSENTED_DAP,
    UNCONSENTED_GDAP,
)

CONSENT_ROUTE = "partner_center.applicationconsents"
DAP_ONLY = "dddddddd-0000-4000-8000-000000000010"
GDAP_ONLY_WITHOUT_GRAPH = "dddddddd-0000-4000-8000-000000000011"
FALLBACK_SKUS = [
    {"part_number": "SPE_E3", "enabled": 120, "consumed": 104, "warning": 5, "suspended": 2},
    {"part_number": "EMSPREMIUM", "enabled": 20, "consumed": 9},
    {"part_number": "POWER_BI_PRO", "enabled": 0, "consumed": 3, "suspended": 5},
]
CUSTOMERS = [
    *(
        {**customer, "skus": FALLBACK_SKUS}
        if customer["tenant_id"] == RESELLER_WITHOUT_GRAPH
        else customer
        for customer in ISSUE_10_CUSTOMERS
    ),
    {
        "tenant_id": DAP_ONLY,
        "display_name": "Dap Only",
        "default_domain": "daponly.onmicrosoft.com",
        "dap": True,
        "skus": [{"part_number": "SPB", "enabled": 4, "consumed": 4}],
    },
    {
        "tenant_id": GDAP_ONLY_WITHOUT_GRAPH,
        "display_name": "Gdap Only Without Graph",
        "default_domain": "gdaponlywithoutgraph.onmicrosoft.com",
        "in_partner_center": False,
        "relationship_to_partner": "none",
        "gdap_relationships": [{"ends_in_days": 300}],
        "skus": [{"part_number": "SPB", "enabled": 4, "consumed": 4}],
        "faults": [{"type": "graph_forbidden"}],
    },
]


@dataclass
class World:
    sim: SimulatorServer
    settings: AccountSettings
    routes: dict[str, tenants.CustomerRoutes]

    def fetch(
        self, *tenant_ids: str, consent_app: str | None = UNIFORM_CLIENT_ID
    ) -> dict[str, tenants.TenantFetch]:
        """One chunk's fetch of `tenant_ids` with a fresh client (as a new sync starts)."""
        with cloud_of(self.settings) as cloud:
            fetched = tenants.fetch_tenants(
                cloud,
                [self.routes[tenant_id] for tenant_id in tenant_ids],
                max_workers=4,
                consent_app=consent_app,
            )
        return {result.tenant_id: result for result in fetched}

    def consent_posts(self) -> Counter[str]:
        """Consent requests per customer tenant since the counts were reset."""
        return Counter(
            entry["path"].split("/")[3]
            for entry in self.sim.control.request_log()
            if entry["route"] == CONSENT_ROUTE
        )


def cloud_of(settings: AccountSettings) -> MicrosoftCloud:
    """A client that gives a 5xx up quickly (the consent outage)."""
    return MicrosoftCloud.from_settings(
        settings, retry=RetrySettings(max_attempts=2, base_delay_s=0.01)
    )


@pytest.fixture
def world(simulator_factory: SimulatorFactory, tmp_path: Path) -> World:
    sim = simulator_factory(uniform_scenario(customers=CUSTOMERS))
    settings = AccountSettings.from_env(
        {**sim.environment(), "SYNC365_TOKEN_CACHE": str(tmp_path / "token_cache.json")}
    )
    warehouse = Warehouse(tmp_path / "sync365.duckdb")
    with cloud_of(settings) as cloud:
        discovery.discover_customers(cloud, warehouse, settings, utcnow())
    sim.control.reset_request_counts()
    return World(sim, settings, chunks.customer_routes(warehouse, UNIFORM_PARTNER))


def test_an_unconsented_customer_is_consented_once_and_read_in_the_same_fetch(world: World):
    fetched = world.fetch(UNCONSENTED_GDAP, UNCONSENTED_DAP, *UNIFORM_CUSTOMERS)

    assert world.consent_posts() == {UNCONSENTED_GDAP: 1, UNCONSENTED_DAP: 1}
    for tenant_id in (UNCONSENTED_GDAP, UNCONSENTED_DAP):
        assert fetched[tenant_id].status is TenantStatus.OK
        assert [sku["skuPartNumber"] for sku in fetched[tenant_id].graph_skus or []] == ["SPB"]
        assert fetched[tenant_id].access.cpv_consent is CpvConsent.GRANTED
        assert fetched[tenant_id].access.message == tenants.CONSENT_GRANTED
    assert {fetched[t].access.cpv_consent for t in UNIFORM_CUSTOMERS} == {CpvConsent.NOT_NEEDED}

    world.sim.control.reset_request_counts()
    again = world.fetch(UNCONSENTED_GDAP, UNCONSENTED_DAP)

    assert world.consent_posts() == {}, "consented: nothing to post"
    assert {result.access.cpv_consent for result in again.values()} == {CpvConsent.NOT_NEEDED}
    assert {result.status for result in again.values()} == {TenantStatus.OK}


def test_with_auto_consent_off_nothing_is_posted(world: World):
    fetched = world.fetch(UNCONSENTED_GDAP, UNIFORM_CUSTOMERS[0], consent_app=None)

    assert world.consent_posts() == {}
    refused = fetched[UNCONSENTED_GDAP]
    assert (refused.status, refused.error_code) == (TenantStatus.CONSENT_REVOKED, "AADSTS90099")
    assert refused.access.cpv_consent is CpvConsent.DISABLED
    assert "SYNC365_AUTO_CONSENT is off" in refused.access.message
    assert "SYNC365_AUTO_CONSENT is off" in refused.message
    assert fetched[UNIFORM_CUSTOMERS[0]].access.cpv_consent is CpvConsent.NOT_NEEDED


def test_consent_that_fails_says_why_and_the_tenant_stays_refused(world: World):
    fetched = world.fetch(REFUSES_CONSENT, CONSENT_SERVER_ERROR, *UNIFORM_CUSTOMERS)

    assert world.consent_posts() == {REFUSES_CONSENT: 1, CONSENT_SERVER_ERROR: 2}, "5xx retried"
    for tenant_id in (REFUSES_CONSENT, CONSENT_SERVER_ERROR):
        assert fetched[tenant_id].status is TenantStatus.CONSENT_REVOKED
        assert fetched[tenant_id].error_code == "AADSTS90099", "Graph's refusal, not consent's"
        assert fetched[tenant_id].access.cpv_consent is CpvConsent.FAILED
    assert ConsentFailed.remedy in fetched[REFUSES_CONSENT].access.message
    assert "HTTP 500" in fetched[CONSENT_SERVER_ERROR].access.message
    # the status message (what flags and `sync365 status` show) names that fix too
    assert ConsentFailed.remedy in fetched[REFUSES_CONSENT].message
    assert {fetched[t].status for t in UNIFORM_CUSTOMERS} == {TenantStatus.OK}


def test_the_access_audit_reads_each_active_relationships_assignments_once(world: World):
    audited = [*UNIFORM_CUSTOMERS, NO_LICENSE_ROLE, ENDING_SOON, DAP_ONLY]
    fetched = world.fetch(*audited)

    access = {tenant_id: fetched[tenant_id].access for tenant_id in audited}
    default_roles = tuple(sorted([DIRECTORY_READERS_ROLE, LICENSE_ADMINISTRATOR_ROLE]))
    for tenant_id in (*UNIFORM_CUSTOMERS, ENDING_SOON):
        assert (access[tenant_id].gdap_roles, access[tenant_id].can_read_licenses) == (
            default_roles,
            True,
        )
        assert access[tenant_id].message == ""
    assert access[NO_LICENSE_ROLE].gdap_roles == (EXCHANGE_ADMINISTRATOR,), "active only"
    assert access[NO_LICENSE_ROLE].can_read_licenses is False
    assert access[NO_LICENSE_ROLE].message == tenants.NO_LICENSE_ROLE
    assert (access[DAP_ONLY].gdap_roles, access[DAP_ONLY].can_read_licenses) == (None, None)
    ending = access[ENDING_SOON]
    assert ending.auto_extend is False
    assert ending.gdap_end_date is not None
    assert (
        timedelta(days=9)
        < ending.gdap_end_date - utcnow().replace(tzinfo=None)
        < timedelta(days=11)
    )
    routes = world.sim.control.request_counts()["by_route"]
    assert routes["graph.accessAssignments"] == len(audited) - 1, "one per GDAP customer"


def test_a_failed_audit_is_the_rows_message_and_never_the_tenants(world: World):
    customer = tenants.CustomerRoutes(UNIFORM_CUSTOMERS[0], "gdap+reseller", ("no-such-id",))
    world.routes[customer.tenant_id] = customer

    (fetched,) = world.fetch(customer.tenant_id).values()

    assert fetched.status is TenantStatus.OK
    assert fetched.access.gdap_roles is None
    assert fetched.access.can_read_licenses is None
    assert "access audit of GDAP relationship no-such-id failed" in fetched.access.message


def test_a_reseller_customer_graph_refuses_lands_from_partner_center_unit_for_unit(world: World):
    fetched = world.fetch(RESELLER_WITHOUT_GRAPH, GDAP_ONLY_WITHOUT_GRAPH, UNIFORM_CUSTOMERS[0])
    with cloud_of(world.settings) as cloud:
        answered = cloud.partner_center.subscribed_skus(RESELLER_WITHOUT_GRAPH)

    staged = facts.stage_fetches(
        fetched.values(),
        catalog=SkuCatalog.load(),
        partner_tenant_id=UNIFORM_PARTNER,
        snapshot_date=date.today(),
        sync_id="sync-1",
    )

    statuses = {row.tenant_id: row for row in staged.statuses}
    refused = statuses[RESELLER_WITHOUT_GRAPH]
    assert (refused.status, refused.error_code) == (
        TenantStatus.ACCESS_REMOVED,
        "Authorization_RequestDenied",
    )
    assert facts.FACTS_FROM_PARTNER_CENTER in (refused.message or "")
    rows = [
        dict(zip(LICENSE_FACT_COLUMNS, row, strict=True))
        for row in staged.facts_by_tenant[RESELLER_WITHOUT_GRAPH]
    ]
    assert {row["source"] for row in rows} == {"partner_center"}
    landed = {
        row["sku_id"]: (
            row["sku_part_number"],
            row["capability_status"],
            row["enabled_units"],
            row["consumed_units"],
            row["suspended_units"],
            row["warning_units"],
        )
        for row in rows
    }
    assert landed == {
        item["productSku"]["id"]: (
            item["productSku"]["skuPartNumber"],
            item["capabilityStatus"],
            item["activeUnits"],
            item["consumedUnits"],
            item["suspendedUnits"],
            item["warningUnits"],
        )
        for item in answered
    }
    assert {row["product_name_source"] for row in rows} == {"partner_center"}
    assert GDAP_ONLY_WITHOUT_GRAPH not in staged.facts_by_tenant, "no reseller: no fallback"
    assert statuses[GDAP_ONLY_WITHOUT_GRAPH].status is TenantStatus.ACCESS_REMOVED
    subscribed = Counter(
        entry["path"].split("/")[3]
        for entry in world.sim.control.request_log()
        if entry["route"] == "partner_center.subscribedskus"
    )
    assert subscribed == {RESELLER_WITHOUT_GRAPH: 2}, "the fallback's and this test's"
    assert [row.cpv_consent for row in staged.access] == ["not_needed"] * 3
