"""Scenario files: bundled ones load, bad fields are named, generation is deterministic."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from sync365_pipeline.simulator import Scenario, ScenarioError, load_scenario
from sync365_pipeline.simulator.catalog import CATALOG_PATH, load_catalog
from sync365_pipeline.simulator.generator import generate_customers
from sync365_pipeline.simulator.scenario import Generate, validate_scenario
from sync365_pipeline_tests.scenarios import uniform_scenario

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


NO_AUTO_EXTEND = "PT0S"  # Graph's autoExtendDuration for a relationship that will not renew


def test_bundled_scenarios_load():
    demo = load_scenario("demo")
    assert len(demo.customers) == 17
    kinds = {fault.type for customer in demo.customers for fault in customer.faults}
    assert {"consent_revoked", "access_removed", "mfa_required", "tenant_gone", "throttle"} <= kinds
    now = datetime(2026, 12, 1, 5, tzinfo=UTC)  # scenario dates are relative to the `now` given
    by_name = {customer.display_name: customer for customer in demo.customers}
    assert not by_name["Lakeshore Fitness Studios"].consented
    assert by_name["Riverbend Montessori School"].consent_failure == "access_denied"
    harborview = by_name["Harborview Marine Supply"]
    assert [f.type for f in harborview.faults] == ["graph_forbidden"]
    assert harborview.has_delegated_access(now)  # so Partner Center answers for it
    oakridge = by_name["Oakridge Accounting Group"]
    assert oakridge.gdap_relationships[0].grants_access(now)
    assert not oakridge.has_delegated_access(now)
    (pinecrest,) = by_name["Pinecrest Hotels"].gdap_relationships
    extends_by = pinecrest.auto_extend_duration  # an ISO 8601 setting, not a measured time
    assert extends_by == NO_AUTO_EXTEND
    assert pinecrest.end(now) - now < timedelta(days=30)
    in_use = [c for c in demo.partner.password_credentials if c.hint is None]
    assert [c.end(now) - now < timedelta(days=30) for c in in_use] == [True]
    scale = load_scenario("scale")
    assert scale.generate is not None
    assert scale.generate.count == 10_000


def test_scenario_files_in_yaml_and_json(tmp_path):
    as_json = tmp_path / "mine.json"
    as_json.write_text(json.dumps(uniform_scenario()))
    assert len(load_scenario(as_json).customers) == 3
    broken = tmp_path / "broken.yaml"
    broken.write_text("partner: [unclosed")
    with pytest.raises(ScenarioError, match=r"broken\.yaml is not valid YAML"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match="neither a bundled scenario"):
        load_scenario("no-such-scenario")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["partner"].update(tenant_id="not-a-guid"),
            r"partner\.tenant_id: 'not-a-guid'",
        ),
        (lambda s: s["partner"].pop("client_secret"), r"partner\.client_secret: Field required"),
        (
            lambda s: s["partner"].update(refresh_token_state="stale"),
            r"partner\.refresh_token_state: Input should be 'valid', 'expired' or 'revoked'",
        ),
        (
            lambda s: s["customers"][1]["skus"].append({"part_number": "NOT_A_SKU"}),
            r"customers\[1\]\.skus\[3\]: part_number 'NOT_A_SKU' is not in the simulator's SKU",
        ),
        (
            lambda s: s["customers"][0]["faults"].append({"type": "throttle", "retry_after": -1}),
            r"customers\[0\]\.faults\[0\]\.retry_after: Input should be greater than or equal to 0",
        ),
        (
            lambda s: s["customers"][2]["faults"].append({"type": "meteor_strike"}),
            r"customers\[2\]\.faults\[0\]: Input tag 'meteor_strike'",
        ),
        (
            lambda s: s["customers"][0].update(colour="blue"),
            r"customers\[0\]\.colour: Extra inputs are not permitted",
        ),
        (
            lambda s: s["customers"][1].update(tenant_id=s["customers"][0]["tenant_id"]),
            r"customers\[1\]\.tenant_id repeats customers\[0\]\.tenant_id",
        ),
        (
            lambda s: s["settings"].update(page_size_customers=501),
            r"settings\.page_size_customers: Input should be less than or equal to 500",
        ),
    ],
)
def test_validation_errors_name_the_field(change, message):
    scenario = uniform_scenario()
    change(scenario)
    with pytest.raises(ScenarioError, match=message):
        validate_scenario(scenario, source="test scenario")


def test_sku_by_id_or_part_number_resolves_both():
    scenario = Scenario.model_validate(uniform_scenario())
    first, second, _ = scenario.customers[0].skus
    assert (first.sku_id, first.part_number) == ("cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "SPB")
    assert second.part_number == "POWER_BI_PRO"


def test_generation_is_deterministic_and_unique():
    spec = Generate(count=10_000, seed=7, fault_rate=0.05)
    customers = generate_customers(spec, load_catalog(), set())
    again = generate_customers(spec, load_catalog(), set())
    other = generate_customers(Generate(count=50, seed=8), load_catalog(), set())
    assert len(customers) == 10_000
    assert [c.model_dump() for c in customers[:200]] == [c.model_dump() for c in again[:200]]
    assert [c.tenant_id for c in customers] == [c.tenant_id for c in again]
    assert [c.tenant_id for c in other] != [c.tenant_id for c in customers[:50]]
    assert len({c.tenant_id for c in customers}) == 10_000
    assert len({c.default_domain for c in customers}) == 10_000
    assert all(GUID.match(c.tenant_id) for c in customers)
    assert 300 < sum(bool(c.faults) for c in customers) < 700
    # Generated customers are valid scenario customers, not just look-alikes.
    Scenario.model_validate(
        {**uniform_scenario(), "customers": [c.model_dump() for c in customers[:300]]}
    )


def test_sku_catalog_invariants():
    entries = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    assert 35 <= len(entries) <= 60
    assert len({e["sku_id"] for e in entries}) == len(entries)
    assert len({e["part_number"] for e in entries}) == len(entries)
    for entry in entries:
        assert GUID.match(entry["sku_id"])
        assert entry["display_name"]
        assert entry["service_plans"]
        plan_ids = [plan["id"] for plan in entry["service_plans"]]
        assert all(GUID.match(plan_id) for plan_id in plan_ids)
        assert len(set(plan_ids)) == len(plan_ids)
    spb = load_catalog().by_part_number("SPB")
    assert spb is not None
    assert spb.sku_id == "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"  # not O365_BUSINESS's cdd28e44-...
    assert (
        load_catalog().by_id("CDD28E44-67E3-425E-BE4C-737FAB2899D3").part_number == "O365_BUSINESS"
    )


def test_the_demo_partners_share_one_tenant_with_one_set_of_licences():
    contoso, relecloud = load_scenario("demo"), load_scenario("demo-acquired")
    shared = {c.tenant_id for c in contoso.customers} & {c.tenant_id for c in relecloud.customers}
    assert len(shared) == 1
    assert contoso.partner.tenant_id != relecloud.partner.tenant_id

    def licences(scenario: Scenario) -> list[tuple[object, ...]]:
        (customer,) = [c for c in scenario.customers if c.tenant_id in shared]
        return [
            (sku.part_number, sku.enabled, sku.consumed, sku.suspended, sku.warning)
            for sku in customer.skus
        ]

    assert licences(contoso) == licences(relecloud)
