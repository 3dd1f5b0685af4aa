"""Paging to the end in both styles, and the control API changing the world mid-run."""

from __future__ import annotations

import pytest

from sync365_pipeline.simulator import SimulatorControlError
from sync365_pipeline_tests.scenarios import UNIFORM_CUSTOMERS, UNIFORM_PARTNER, uniform_scenario
from sync365_pipeline_tests.simulator.helpers import (
    GRAPH_SCOPE,
    PARTNER_CENTER_SCOPE,
    bearer,
    https_session,
    redeem,
)


def test_partner_center_customers_page_with_continuation_tokens(demo_simulator):
    session = https_session(demo_simulator)
    env = demo_simulator.environment()
    token = redeem(demo_simulator, env["SYNC365_PARTNER_TENANT_ID"], PARTNER_CENTER_SCOPE)
    headers = bearer(token["access_token"])
    url, extra, seen, pages = f"{demo_simulator.url}/v1/customers?size=4", {}, [], 0
    while url:
        page = session.get(url, headers={**headers, **extra}).json()
        pages += 1
        assert page["attributes"] == {"objectType": "Collection"}
        assert page["totalCount"] == len(page["items"])
        seen += [item["id"] for item in page["items"]]
        following = page["links"].get("next")
        if following is None:
            break
        assert following["uri"] == "/v1/customers?size=4&seekOperation=Next"  # host-relative
        url = demo_simulator.url + following["uri"]
        extra = {h["key"]: h["value"] for h in following["headers"]}
        assert set(extra) == {"MS-ContinuationToken"}
    assert pages == 4
    assert len(seen) == len(set(seen)) == 16  # the GDAP-only customer is not in Partner Center
    edited = session.get(
        f"{demo_simulator.url}/v1/customers?size=4&seekOperation=Next",
        headers={**headers, "MS-ContinuationToken": "forged,token,value"},
    )
    assert (edited.status_code, edited.json()["code"]) == (400, 800002)


def test_graph_next_links_are_absolute_and_followed_verbatim(simulator_factory):
    sim = simulator_factory(uniform_scenario(settings={"page_size_graph": 2}))
    session = https_session(sim)
    headers = bearer(redeem(sim, UNIFORM_PARTNER, GRAPH_SCOPE)["access_token"])
    url = (
        f"{sim.url}/v1.0/tenantRelationships/delegatedAdminRelationships?$filter=status eq 'active'"
    )
    relationships, pages = [], 0
    while url:
        page = session.get(url, headers=headers).json()
        pages += 1
        relationships += page["value"]
        url = page.get("@odata.nextLink")
        assert url is None or url.startswith(f"{sim.url}/v1.0/tenantRelationships/")
    assert pages == 2
    assert sorted(r["customer"]["tenantId"] for r in relationships) == sorted(UNIFORM_CUSTOMERS)
    assert {r["status"] for r in relationships} == {"active"}
    customer = bearer(redeem(sim, UNIFORM_CUSTOMERS[0], GRAPH_SCOPE)["access_token"])
    first = session.get(
        f"{sim.url}/v1.0/subscribedSkus?$top=2&$select=skuId,consumedUnits", headers=customer
    ).json()
    assert [set(sku) for sku in first["value"]] == [{"id", "skuId", "consumedUnits"}] * 2
    second = session.get(first["@odata.nextLink"], headers=customer).json()  # keeps $select
    assert [set(sku) for sku in second["value"]] == [{"id", "skuId", "consumedUnits"}]
    assert "@odata.nextLink" not in second


def test_subscribed_skus_match_the_expected_view(demo_simulator):
    tenant = "a51c8ac0-98f8-4206-9aaa-ef644b70e6e6"
    token = redeem(demo_simulator, tenant, GRAPH_SCOPE)["access_token"]
    served = https_session(demo_simulator).get(
        f"{demo_simulator.url}/v1.0/subscribedSkus", headers=bearer(token)
    )
    assert served.json()["value"] == demo_simulator.control.expected_subscribed_skus(tenant)
    spb = next(s for s in served.json()["value"] if s["skuPartNumber"] == "SPB")
    assert spb["skuId"] == "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
    assert spb["prepaidUnits"] == {"enabled": 40, "lockedOut": 0, "suspended": 0, "warning": 0}
    assert spb["id"] == f"{tenant}_{spb['skuId']}"


def test_control_api_changes_state_mid_run(simulator_factory):
    sim = simulator_factory(uniform_scenario())
    control, tenant = sim.control, UNIFORM_CUSTOMERS[0]
    session = https_session(sim)

    control.revoke_consent(tenant)
    assert redeem(sim, tenant, GRAPH_SCOPE)["error_codes"] == [65001]
    control.restore_consent(tenant)
    token = redeem(sim, tenant, GRAPH_SCOPE)["access_token"]

    updated = control.set_sku_units(tenant, "SPB", enabled=3, consumed=5, warning=1)
    assert (updated["enabled"], updated["consumed"]) == (3, 5)
    skus = session.get(f"{sim.url}/v1.0/subscribedSkus", headers=bearer(token)).json()["value"]
    spb = next(s for s in skus if s["skuPartNumber"] == "SPB")
    assert (spb["prepaidUnits"]["enabled"], spb["consumedUnits"]) == (3, 5)
    with pytest.raises(SimulatorControlError, match="enabled"):
        control.set_sku_units(tenant, "SPB", enabled=-1)

    control.set_fault(tenant, {"type": "throttle", "times": 1, "retry_after": 1})
    assert session.get(f"{sim.url}/v1.0/organization", headers=bearer(token)).status_code == 429
    control.set_fault(tenant, {"type": "graph_forbidden"})
    control.clear_faults(tenant)
    assert session.get(f"{sim.url}/v1.0/organization", headers=bearer(token)).status_code == 200
    with pytest.raises(SimulatorControlError, match="retry_after"):
        control.set_fault(tenant, {"type": "throttle", "retry_after": "soon"})

    control.set_partner_refresh_token_state("expired")
    assert redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)["error_codes"] == [700082]
    control.set_partner_refresh_token_state("valid")
    assert "access_token" in redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)


def test_customers_come_and_go(simulator_factory):
    sim = simulator_factory(uniform_scenario())
    newcomer = "dddddddd-0000-4000-8000-000000000042"
    sim.control.add_customer(
        {
            "tenant_id": newcomer,
            "display_name": "Newcomer GmbH",
            "default_domain": "newcomer.onmicrosoft.com",
            "gdap_relationships": [{"status": "active"}],
            "skus": [{"part_number": "EXCHANGESTANDARD", "enabled": 4, "consumed": 1}],
        }
    )
    token = redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)["access_token"]
    customers = https_session(sim).get(f"{sim.url}/v1/customers", headers=bearer(token)).json()
    assert newcomer in [c["id"] for c in customers["items"]]
    assert [s["skuPartNumber"] for s in sim.control.expected_subscribed_skus(newcomer)] == [
        "EXCHANGESTANDARD"
    ]
    sim.control.remove_customer(newcomer)
    assert redeem(sim, newcomer, GRAPH_SCOPE)["error_codes"] == [50020]
    with pytest.raises(SimulatorControlError, match="404"):
        sim.control.remove_customer(newcomer)
    with pytest.raises(SimulatorControlError, match=r"skus\[0\]"):
        sim.control.add_customer({**customers["items"][0], "skus": [{"part_number": "NOPE"}]})


def test_request_counts_by_route_tenant_and_status(simulator_factory):
    sim = simulator_factory(uniform_scenario())
    tenant = UNIFORM_CUSTOMERS[1]
    token = redeem(sim, tenant, GRAPH_SCOPE)["access_token"]
    https_session(sim).get(f"{sim.url}/v1.0/subscribedSkus", headers=bearer(token))
    counts = sim.control.request_counts()
    assert counts["total"] == 3  # discovery, token, subscribedSkus (control calls not counted)
    assert counts["by_route"] == {
        "identity.openid_configuration": 1,
        "identity.token": 1,
        "graph.subscribedSkus": 1,
    }
    assert counts["by_tenant"] == {tenant: 3}
    assert counts["by_status"] == {"200": 3}
    assert counts["max_in_flight"] >= 1
    log = sim.control.request_log()
    assert [entry["path"] for entry in log][-1] == "/v1.0/subscribedSkus"
    assert all(set(entry) == {"method", "path", "status", "route"} for entry in log)
    sim.control.reset_request_counts()
    assert sim.control.request_counts()["total"] == 0


def test_issued_secrets_lists_every_token_issued_only_when_recording(simulator_factory):
    sim = simulator_factory(uniform_scenario(settings={"record_issued_tokens": True}))
    first = redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)
    second = redeem(sim, UNIFORM_CUSTOMERS[0], GRAPH_SCOPE, first["refresh_token"])
    issued = sim.control.issued_secrets()
    env = sim.environment()
    assert issued[:2] == [env["SYNC365_CLIENT_SECRET"], env["SYNC365_REFRESH_TOKEN"]]
    for result in (first, second):
        for name in ("access_token", "refresh_token", "id_token"):
            assert result[name] in issued, name
    assert len(issued) == 2 + 6

    quiet = simulator_factory(uniform_scenario())
    redeem(quiet, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)
    with pytest.raises(SimulatorControlError, match="record_issued_tokens"):
        quiet.control.issued_secrets()
