"""The whole asset graph, run by Dagster against the simulator into a real DuckDB file."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest

from sync365_pipeline.defs.assets import license_facts
from sync365_pipeline.defs.definitions import defs
from sync365_pipeline.defs.execution import run_full_sync
from sync365_pipeline.licensing.selection import TenantSelection
from sync365_pipeline.simulator import load_scenario
from sync365_pipeline_tests.samples import SPB
from sync365_pipeline_tests.scenarios import (
    HEALTHY_A,
    HEALTHY_B,
    HEALTHY_C,
    THROTTLE_TWICE,
    add_fault,
    outside_partner_center,
    pipeline_scenario,
)

from .conftest import Pipeline, PipelineFactory


def latest_statuses(pipeline: Pipeline) -> dict[str, tuple[str, str | None]]:
    rows = pipeline.query("SELECT tenant_id, status, error_code FROM latest_tenant_status")
    return {tenant_id: (status, code) for tenant_id, status, code in rows}


def facts_by_sku(pipeline: Pipeline, tenant_id: str) -> dict[str, tuple[int, ...]]:
    rows = pipeline.query(
        "SELECT sku_id, enabled_units, suspended_units, warning_units, locked_out_units, "
        "consumed_units, available_units FROM license_facts WHERE tenant_id = ? "
        "AND snapshot_date = (SELECT max(snapshot_date) FROM license_facts)",
        [tenant_id],
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def served_by_simulator(pipeline: Pipeline, tenant_id: str) -> dict[str, tuple[int, ...]]:
    served = {}
    for sku in pipeline.sim.control.expected_subscribed_skus(tenant_id):
        units = sku["prepaidUnits"]
        served[sku["skuId"]] = (
            units["enabled"],
            units["suspended"],
            units["warning"],
            units["lockedOut"],
            sku["consumedUnits"],
            units["enabled"] - sku["consumedUnits"],
        )
    return served


def test_full_graph_lands_facts_identical_to_what_the_simulator_served(
    pipeline_factory: PipelineFactory,
) -> None:
    """Also the pipeline's throttling test: Gamma Realty answers 429 twice before it answers."""
    pipeline = pipeline_factory(add_fault(pipeline_scenario(), HEALTHY_C, THROTTLE_TWICE))
    outcome = pipeline.sync()

    assert outcome.success, outcome.failure
    assert latest_statuses(pipeline) == {
        HEALTHY_A: ("ok", None),
        HEALTHY_B: ("ok", None),
        HEALTHY_C: ("ok", None),
    }
    for tenant in (HEALTHY_A, HEALTHY_B, HEALTHY_C):
        assert facts_by_sku(pipeline, tenant) == served_by_simulator(pipeline, tenant)
    names = dict(pipeline.query("SELECT sku_part_number, product_name FROM license_facts"))
    assert names["SPB"] == "Microsoft 365 Business Premium"
    customers = {
        row[0]: row[1:]
        for row in pipeline.query(
            "SELECT tenant_id, display_name, relationship, active FROM customers"
        )
    }
    assert customers[HEALTHY_A] == ("Alpha Dental", "dap+gdap+reseller", True)
    assert customers[HEALTHY_B][1] == "gdap+reseller"
    # Gamma Realty was throttled twice (429 + Retry-After) and still ended ok: absorbed.
    assert pipeline.sim.control.request_counts()["by_status"].get("429") == 2
    event = pipeline.instance.get_latest_materialization_event(dg.AssetKey("subscribed_skus"))
    assert event is not None
    assert event.asset_materialization is not None
    http = event.asset_materialization.metadata["http"].value
    assert http["default"]["throttled_responses"] == 2
    facts_event = pipeline.instance.get_latest_materialization_event(dg.AssetKey("license_facts"))
    assert facts_event is not None
    assert facts_event.asset_materialization is not None
    shown = facts_event.asset_materialization.metadata
    assert shown["rows_written"].value == pipeline.query("SELECT count(*) FROM license_facts")[0][0]
    assert "Microsoft 365 Business Premium" in shown["preview"].value


def test_one_run_covers_every_tenant(pipeline_factory: PipelineFactory) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    outcome = pipeline.sync()

    runs = pipeline.instance.get_runs()
    assert [(run.run_id, run.job_name) for run in runs] == [(outcome.run_id, "full_sync")]
    assert pipeline.query("SELECT DISTINCT tenant_id FROM tenant_status ORDER BY 1") == [
        (tenant,) for tenant in sorted([HEALTHY_A, HEALTHY_B, HEALTHY_C])
    ]
    events = pipeline.instance.all_logs(outcome.run_id, dg.DagsterEventType.ASSET_MATERIALIZATION)
    assert len(events) == 7, "one materialization per asset, not one per tenant"


def test_consent_revoked_mid_sync_keeps_last_good_facts_and_recovers(
    pipeline_factory: PipelineFactory,
) -> None:
    """A customer with no Partner Center fallback (GDAP only)."""
    pipeline = pipeline_factory(outside_partner_center(pipeline_scenario(), HEALTHY_B))
    assert pipeline.sync().success
    first_facts = facts_by_sku(pipeline, HEALTHY_B)

    pipeline.sim.control.revoke_consent(HEALTHY_B)
    pipeline.token_cache.unlink()  # the next day: the first sync's access tokens have expired
    pipeline.sim.control.set_sku_units(HEALTHY_A, SPB, enabled=41, consumed=38)
    assert pipeline.sync().success, "a customer's lost consent must not fail the sync"

    statuses = latest_statuses(pipeline)
    assert statuses[HEALTHY_B] == ("consent_revoked", "AADSTS65001")
    assert statuses[HEALTHY_A] == ("ok", None)
    assert facts_by_sku(pipeline, HEALTHY_B) == first_facts, "failed tenant's facts kept"
    assert facts_by_sku(pipeline, HEALTHY_A)[SPB][:5] == (
        41,
        0,
        0,
        0,
        38,
    )
    stale = dict(pipeline.query("SELECT DISTINCT tenant_id, is_stale FROM current_license_facts"))
    assert stale[HEALTHY_B] is True
    assert stale[HEALTHY_A] is False

    pipeline.sim.control.restore_consent(HEALTHY_B)
    assert pipeline.sync().success
    assert latest_statuses(pipeline)[HEALTHY_B] == ("ok", None)
    stale = dict(pipeline.query("SELECT DISTINCT tenant_id, is_stale FROM current_license_facts"))
    assert stale[HEALTHY_B] is False


def test_departed_customer_is_retired_with_history_kept(pipeline_factory: PipelineFactory) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    assert pipeline.sync().success
    pipeline.sim.control.remove_customer(HEALTHY_B)
    assert pipeline.sync().success

    active = dict(pipeline.query("SELECT tenant_id, active FROM customers"))
    assert active[HEALTHY_B] is False
    assert active[HEALTHY_A] is True
    assert facts_by_sku(pipeline, HEALTHY_B), "history of the departed customer kept"
    checked = pipeline.query("SELECT count(*) FROM tenant_status WHERE tenant_id = ?", [HEALTHY_B])[
        0
    ][0]
    assert checked == 1, "a departed customer is no longer synced"


@pytest.mark.parametrize(
    ("state", "code"), [("expired", "AADSTS700082"), ("revoked", "AADSTS50173")]
)
def test_dead_refresh_token_stops_the_sync_and_leaves_the_warehouse_as_it_was(
    pipeline_factory: PipelineFactory, state: str, code: str
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    assert pipeline.sync().success
    before = pipeline.query("SELECT * FROM license_facts ORDER BY tenant_id, sku_id")
    customers_before = pipeline.query("SELECT * FROM customers ORDER BY tenant_id")

    pipeline.sim.control.set_partner_refresh_token_state(state)
    pipeline.token_cache.unlink()  # force a redemption instead of a cached access token
    outcome = pipeline.sync()

    assert not outcome.success
    assert outcome.failure is not None
    assert code in outcome.failure
    assert "sync365 consent" in outcome.failure, "the message says what to do"
    assert pipeline.query("SELECT * FROM license_facts ORDER BY tenant_id, sku_id") == before
    assert pipeline.query("SELECT * FROM customers ORDER BY tenant_id") == customers_before
    partner_status = pipeline.query(
        "SELECT status, error_code FROM partner_status ORDER BY checked_at DESC LIMIT 1"
    )
    assert partner_status == [(f"refresh_token_{state}", code)]


def test_rejected_client_secret_is_a_partner_level_failure(
    pipeline_factory: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    assert pipeline.sync().success
    before = pipeline.query("SELECT * FROM license_facts ORDER BY tenant_id, sku_id")

    monkeypatch.setenv("SYNC365_CLIENT_SECRET", "an-old-secret-that-was-rotated")
    pipeline.token_cache.unlink()
    outcome = pipeline.sync()

    assert not outcome.success
    assert "AADSTS7000215" in (outcome.failure or "")
    assert "an-old-secret-that-was-rotated" not in (outcome.failure or "")
    assert pipeline.query("SELECT * FROM license_facts ORDER BY tenant_id, sku_id") == before


def test_sign_in_without_mfa_is_refused_with_the_likely_cause(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(pipeline_scenario(partner={"mfa": False}))
    outcome = pipeline.sync()

    assert not outcome.success
    assert "MFA" in (outcome.failure or "")
    assert pipeline.query("SELECT count(*) FROM license_facts") == [(0,)]


def test_demo_scenario_statuses(pipeline_factory: PipelineFactory) -> None:
    demo = load_scenario("demo")
    pipeline = pipeline_factory(demo)
    assert pipeline.sync().success

    by_name = {
        row[0]: (row[1], row[2])
        for row in pipeline.query(
            "SELECT c.display_name, s.status, s.error_code FROM latest_tenant_status s "
            "JOIN customers c USING (partner_tenant_id, tenant_id)"
        )
    }
    assert by_name["Adatum Legal LLP"] == ("consent_revoked", "AADSTS65001")
    assert by_name["Proseware Engineering"] == ("access_removed", "AADSTS50020")
    assert by_name["Wingtip Toys"] == ("mfa_required", "AADSTS50076")
    assert by_name["Alpine Ski House"][0] == "tenant_gone"
    assert by_name["Litware Architects"] == ("access_removed", "Authorization_RequestDenied")
    assert by_name["Bluebird Veterinary Clinics"] == ("ok", None)
    assert by_name["Cedar Harbor Realty"] == ("ok", None)
    assert by_name["Summit Pharmacy Inc"] == ("ok", None)


def test_unreadable_answer_is_a_tenant_error_that_keeps_earlier_facts(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    assert pipeline.sync().success
    before = facts_by_sku(pipeline, HEALTHY_A)

    pipeline.sim.control.set_fault(HEALTHY_A, {"type": "malformed", "kind": "html"})
    assert pipeline.sync().success

    status, code = latest_statuses(pipeline)[HEALTHY_A]
    assert status == "error"
    assert code is not None
    assert facts_by_sku(pipeline, HEALTHY_A) == before
    assert latest_statuses(pipeline)[HEALTHY_B] == ("ok", None)


def test_broken_token_cache_stops_the_sync_and_is_not_overwritten(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    assert pipeline.sync().success
    pipeline.token_cache.write_text('{"RefreshToken": [not json')

    outcome = pipeline.sync()

    assert not outcome.success
    assert str(pipeline.token_cache) in (outcome.failure or "")
    assert "not json" not in (outcome.failure or ""), "the cache's content is never echoed"
    assert pipeline.token_cache.read_text() == '{"RefreshToken": [not json'


def test_rerunning_one_tenant_rewrites_only_that_tenant(pipeline_factory: PipelineFactory) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    assert pipeline.sync().success
    written = dict(pipeline.query("SELECT tenant_id, written_at FROM license_snapshots"))
    pipeline.sim.control.set_sku_units(HEALTHY_A, SPB, enabled=50, consumed=45)

    rerun = run_full_sync(defs, pipeline.instance, TenantSelection(("alpha dental",)))

    assert rerun.success
    rewritten = dict(pipeline.query("SELECT tenant_id, written_at FROM license_snapshots"))
    assert rewritten[HEALTHY_A] > written[HEALTHY_A]
    assert rewritten[HEALTHY_B] == written[HEALTHY_B]
    assert rewritten[HEALTHY_C] == written[HEALTHY_C]
    assert facts_by_sku(pipeline, HEALTHY_A)[SPB][4] == 45


def test_consent_revoked_while_the_license_run_is_fetching(
    pipeline_factory: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tenants are fetched one at a time, the first slowly; consent goes as soon as it is asked
    (from a customer with no Partner Center fallback: DAP only)."""
    slow = {"type": "latency", "ms": 400}
    scenario = outside_partner_center(pipeline_scenario(), HEALTHY_C)
    pipeline = pipeline_factory(add_fault(scenario, HEALTHY_A, slow))
    monkeypatch.setenv("SYNC365_MAX_WORKERS", "1")
    revoked = threading.Event()

    def revoke_once_fetching_starts() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if pipeline.sim.control.request_counts()["by_tenant"].get(HEALTHY_A):
                pipeline.sim.control.revoke_consent(HEALTHY_C)
                revoked.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=revoke_once_fetching_starts)
    watcher.start()
    outcome = pipeline.sync()
    watcher.join()

    assert revoked.is_set()
    assert outcome.success
    assert latest_statuses(pipeline) == {
        HEALTHY_A: ("ok", None),
        HEALTHY_B: ("ok", None),
        HEALTHY_C: ("consent_revoked", "AADSTS65001"),
    }
    assert set(pipeline.query("SELECT DISTINCT tenant_id FROM license_facts")) == {
        (HEALTHY_A,),
        (HEALTHY_B,),
    }


def test_license_facts_materialized_on_its_own_rebuilds_the_whole_day(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory(pipeline_scenario())
    assert pipeline.sync().success
    written = dict(pipeline.query("SELECT tenant_id, written_at FROM license_snapshots"))

    alone = dg.materialize([license_facts], instance=pipeline.instance, resources=defs.resources)

    assert alone.success
    rewritten = dict(pipeline.query("SELECT tenant_id, written_at FROM license_snapshots"))
    assert all(rewritten[tenant] > written[tenant] for tenant in written)
