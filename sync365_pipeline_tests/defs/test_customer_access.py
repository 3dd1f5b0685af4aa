"""Issue 10's fetch path through whole syncs into a real DuckDB file: CPV consent granted once and
its tenant landed in the same run, `customer_access` rows, the Partner Center fallback in the
views, the `tenants_synced` check and a rebuild from raw, and a customer two partners share."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sync365_pipeline.defs.assets import license_facts
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.execution import run_full_sync
from sync365_pipeline.licensing.facts import FACTS_FROM_PARTNER_CENTER
from sync365_pipeline.licensing.tenants import CONSENT_EXISTS_YET_REFUSED, CONSENT_GRANTED
from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline_tests.conftest import SimulatorFactory
from sync365_pipeline_tests.defs.test_accounts import use_accounts_file
from sync365_pipeline_tests.defs.test_automation import tenants_synced
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CUSTOMERS,
    second_partner_scenario,
    uniform_scenario,
)
from sync365_pipeline_tests.simulator.test_consent_and_access import (
    ISSUE_10_CUSTOMERS,
    NO_LICENSE_ROLE,
    RESELLER_WITHOUT_GRAPH,
    UNCONSENTED_GDAP,
)

from .conftest import Pipeline, PipelineFactory

CONSENT_ROUTE = "partner_center.applicationconsents"
SHOWN = {UNCONSENTED_GDAP, RESELLER_WITHOUT_GRAPH, NO_LICENSE_ROLE}


@pytest.fixture
def pipeline(pipeline_factory: PipelineFactory) -> Pipeline:
    customers = [c for c in ISSUE_10_CUSTOMERS if c["tenant_id"] in SHOWN]
    return pipeline_factory(uniform_scenario(customers=customers))


def consent_posts(sim: SimulatorServer) -> Counter[str]:
    """Consent requests per customer tenant since the counts were last reset."""
    return Counter(
        entry["path"].split("/")[3]
        for entry in sim.control.request_log()
        if entry["route"] == CONSENT_ROUTE
    )


def latest_access(pipeline: Pipeline) -> dict[str, tuple[object, ...]]:
    return {
        tenant: rest
        for tenant, *rest in pipeline.query(
            "SELECT tenant_id, cpv_consent, can_read_licenses, message FROM customer_access "
            "QUALIFY row_number() OVER (PARTITION BY partner_tenant_id, tenant_id "
            "ORDER BY checked_at DESC) = 1"
        )
    }


def test_an_unconsented_customer_is_consented_once_and_lands_in_the_same_run(
    pipeline: Pipeline,
) -> None:
    first = pipeline.sync()

    assert first.success, first.failure
    assert consent_posts(pipeline.sim) == {UNCONSENTED_GDAP: 1}
    assert latest_access(pipeline)[UNCONSENTED_GDAP] == ["granted", True, CONSENT_GRANTED]
    assert pipeline.query(
        "SELECT status, error_code FROM latest_tenant_status WHERE tenant_id = ?",
        [UNCONSENTED_GDAP],
    ) == [("ok", None)]
    assert pipeline.query(
        "SELECT DISTINCT source, is_stale FROM current_license_facts WHERE tenant_id = ?",
        [UNCONSENTED_GDAP],
    ) == [("graph", False)]

    pipeline.sim.control.reset_request_counts()
    second = pipeline.sync()

    assert second.success, second.failure
    assert consent_posts(pipeline.sim) == {}, "consented: nothing is posted"
    assert latest_access(pipeline)[UNCONSENTED_GDAP][0] == "not_needed"
    # One access row per attempted tenant per sync, at the attempt's own time.
    per_sync = pipeline.query(
        "SELECT a.tenant_id, count(*) FROM customer_access AS a JOIN tenant_status AS s "
        "USING (partner_tenant_id, tenant_id, checked_at, sync_id) GROUP BY 1"
    )
    assert dict(per_sync) == dict.fromkeys([*UNIFORM_CUSTOMERS, *SHOWN], 2)
    assert pipeline.query("SELECT count(*) FROM customer_access") == [(2 * (3 + len(SHOWN)),)]


def test_with_auto_consent_off_nothing_is_posted_and_the_row_says_disabled(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC365_AUTO_CONSENT", "false")

    assert pipeline.sync().success

    assert consent_posts(pipeline.sim) == {}
    assert latest_access(pipeline)[UNCONSENTED_GDAP][0] == "disabled"
    assert pipeline.query(
        "SELECT status, error_code FROM latest_tenant_status WHERE tenant_id = ?",
        [UNCONSENTED_GDAP],
    ) == [("consent_revoked", "AADSTS90099")]


def test_partner_centers_facts_are_todays_facts_and_survive_a_rebuild(pipeline: Pipeline) -> None:
    daily = defs.resolve_job_def("full_sync").execute_in_process(instance=pipeline.instance)

    assert daily.success
    (status,) = pipeline.query(
        "SELECT status, error_code, message FROM latest_tenant_status WHERE tenant_id = ?",
        [RESELLER_WITHOUT_GRAPH],
    )
    assert status[:2] == ("access_removed", "Authorization_RequestDenied"), "why Graph failed"
    assert FACTS_FROM_PARTNER_CENTER in status[2]
    fresh = "SELECT DISTINCT source, is_stale FROM current_license_facts WHERE tenant_id = ?"
    assert pipeline.query(fresh, [RESELLER_WITHOUT_GRAPH]) == [("partner_center", False)]
    assert pipeline.query(
        "SELECT facts_from_partner_center, is_stale FROM tenant_health WHERE tenant_id = ?",
        [RESELLER_WITHOUT_GRAPH],
    ) == [(True, False)]
    check = tenants_synced(daily)
    assert not check.passed, "No License Role: neither Graph nor Partner Center answers"
    assert check.description == "1 of 6 active tenants failing: No License Role (access_removed)."
    assert check.metadata["facts_from_partner_center"].value == 1
    assert latest_access(pipeline)[NO_LICENSE_ROLE][:2] == ["not_needed", False]

    written = pipeline.query(
        "SELECT written_at FROM license_snapshots WHERE tenant_id = ?", [RESELLER_WITHOUT_GRAPH]
    )
    alone = dg.materialize([license_facts], instance=pipeline.instance, resources=defs.resources)

    assert alone.success
    assert (
        pipeline.query(
            "SELECT written_at FROM license_snapshots WHERE tenant_id = ?", [RESELLER_WITHOUT_GRAPH]
        )
        > written
    ), "rebuilt from its Partner Center payload"
    assert pipeline.query(fresh, [RESELLER_WITHOUT_GRAPH]) == [("partner_center", False)]


def test_two_partners_sharing_a_customer_keep_their_access_apart(
    simulator_factory: SimulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first partner's consent in the shared customer is gone (the app was removed there:
    Partner Center still has the consent); the second partner reads it as before."""
    shared = UNIFORM_CUSTOMERS[0]
    first = simulator_factory(uniform_scenario())
    second_scenario = second_partner_scenario()
    (customer,) = [c for c in uniform_scenario()["customers"] if c["tenant_id"] == shared]
    second_scenario["customers"].append(copy.deepcopy(customer))
    second = simulator_factory(second_scenario)
    duckdb_path = use_accounts_file(
        monkeypatch, tmp_path, {"contoso": first, "adventureworks": second}
    )
    first_partner = first.environment()["SYNC365_PARTNER_TENANT_ID"]
    second_partner = second.environment()["SYNC365_PARTNER_TENANT_ID"]
    first.control.revoke_consent(shared)

    with dg.instance_for_test() as instance:
        outcome = run_full_sync(defs, instance)

    assert outcome.success, outcome.failure
    with duckdb.connect(str(duckdb_path), read_only=True) as con:

        def of_shared(sql: str) -> dict[str, tuple[object, ...]]:
            rows = con.execute(sql + " WHERE tenant_id = ? ORDER BY 1", [shared]).fetchall()
            return {partner: tuple(rest) for partner, *rest in rows}

        access = of_shared("SELECT partner_tenant_id, cpv_consent, message FROM customer_access")
        statuses = of_shared(
            "SELECT partner_tenant_id, status, error_code FROM latest_tenant_status"
        )
        sources = of_shared(
            "SELECT DISTINCT partner_tenant_id, source, is_stale FROM current_license_facts"
        )
    assert access == {
        first_partner: ("already_granted", CONSENT_EXISTS_YET_REFUSED),
        second_partner: ("not_needed", None),
    }
    assert statuses == {
        first_partner: ("consent_revoked", "AADSTS65001"),
        second_partner: ("ok", None),
    }
    assert sources == {
        first_partner: ("partner_center", False),
        second_partner: ("graph", False),
    }
    assert consent_posts(first) == {shared: 1}
    assert consent_posts(second) == {}
