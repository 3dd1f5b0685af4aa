"""Graph users and the users delta query as the simulator serves them (microsoft-apis-more.md §3):
licences that add up to the SKUs, the advanced-query rules, the sign-in premium rule, paging,
delta rounds with changes made through the control API, token expiry and throttling."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.simulator import SimulatorServer, load_scenario
from sync365_pipeline.simulator import state as state_module
from sync365_pipeline.simulator.state import SimulatorState
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CUSTOMERS,
    USERS_TENANT,
    uniform_scenario,
    users_customer,
)
from sync365_pipeline_tests.simulator.helpers import GRAPH_SCOPE, bearer, https_session, redeem

SELECT = "id,userPrincipalName,accountEnabled,userType,assignedLicenses,licenseAssignmentStates"
LICENSED = f"/v1.0/users?$select={SELECT}&$filter=assignedLicenses/$count ne 0&$count=true"
SIGN_INS = LICENSED.replace(SELECT, SELECT + ",signInActivity")
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
EVENTUAL = {"ConsistencyLevel": "eventual"}


class Graph:
    """GETs at one tenant with the partner's delegated Graph token."""

    def __init__(self, sim: SimulatorServer, tenant_id: str) -> None:
        self.sim = sim
        self.session = https_session(sim)
        self.headers = bearer(redeem(sim, tenant_id, GRAPH_SCOPE)["access_token"])

    def get(self, path_or_url: str, headers: dict[str, str] | None = None) -> requests.Response:
        url = path_or_url if path_or_url.startswith("https://") else self.sim.url + path_or_url
        return self.session.get(url, headers={**self.headers, **(headers or {})})

    def pages(self, path: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every page to the end, checking that each link stays on the simulator."""
        url: str | None = path
        found = []
        while url is not None:
            response = self.get(url, headers)
            assert response.status_code == 200, response.text
            found.append(response.json())
            url = found[-1].get("@odata.nextLink")
            assert url is None or url.startswith(f"{self.sim.url}{urlsplit(url).path}")
        return found

    def delta_round(self, url: str) -> tuple[list[dict[str, Any]], str, int]:
        """(users, delta link, pages) of one delta round from `url`."""
        pages = self.pages(url)
        assert all("@odata.deltaLink" not in page for page in pages[:-1])
        return (
            [user for page in pages for user in page["value"]],
            pages[-1]["@odata.deltaLink"],
            len(pages),
        )


def values(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [user for page in pages for user in page["value"]]


def test_licensed_users_add_up_to_the_consumed_units_across_pages(simulator_factory):
    sim = simulator_factory(uniform_scenario())
    tenant = UNIFORM_CUSTOMERS[0]
    graph = Graph(sim, tenant)
    pages = graph.pages(LICENSED + "&$top=4", EVENTUAL)
    users = values(pages)
    assert len(pages) > 2
    assert [page.get("@odata.count") for page in pages] == [len(users)] + [None] * (len(pages) - 1)
    assert len({user["id"] for user in users}) == len(users)
    assert all(user["assignedLicenses"] for user in users)
    holders = Counter(sku["skuId"] for user in users for sku in user["assignedLicenses"])
    skus = graph.get("/v1.0/subscribedSkus").json()["value"]
    assert holders == {sku["skuId"]: sku["consumedUnits"] for sku in skus}
    expected = sim.control.expected_users(tenant)["users"]
    assert {u["id"] for u in users} == {u["id"] for u in expected if u["assignedLicenses"]}
    assert len(expected) > len(users)  # unlicensed users exist and are filtered out


def test_advanced_query_rules(simulator_factory):
    sim = simulator_factory(uniform_scenario())
    graph = Graph(sim, UNIFORM_CUSTOMERS[0])
    without_header = graph.get(LICENSED)
    assert without_header.status_code == 400
    assert without_header.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert without_header.json()["error"]["message"] == "Unsupported Query."
    next_link = graph.get(LICENSED + "&$top=2", EVENTUAL).json()["@odata.nextLink"]
    assert graph.get(next_link).status_code == 400  # the header is needed on every page
    counted_without_header = graph.get("/v1.0/users?$count=true").json()
    assert "@odata.count" not in counted_without_header
    too_big = graph.get("/v1.0/users?$top=1000").json()["error"]
    assert too_big == {
        **too_big,
        "code": "Request_UnsupportedQuery",
        "message": "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.",
    }
    by_sku = values(graph.pages(f"/v1.0/users?$filter=assignedLicenses/any(x:x/skuId eq {SPB})"))
    assert len(by_sku) == 11  # SPB's consumed units; this filter needs no advanced options
    default = graph.get("/v1.0/users").json()["value"][0]
    assert set(default) == {
        "businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone",
        "officeLocation", "preferredLanguage", "surname", "userPrincipalName",
    }  # fmt: skip
    unknown = graph.get("/v1.0/users?$select=id,favouriteColour").json()["error"]
    assert "favouriteColour" in unknown["message"]


def test_sign_in_activity_needs_entra_id_p1(simulator_factory):
    no_p1 = "dddddddd-0000-4000-8000-000000000002"
    sim = simulator_factory(
        uniform_scenario(
            customers=[
                users_customer({"O365_BUSINESS_PREMIUM": (10, 10)}, tenant_id=no_p1),
                users_customer({"SPB": (10, 10)}, users={"premium": False}),
            ]
        )
    )
    for tenant in (no_p1, USERS_TENANT):
        graph = Graph(sim, tenant)
        refused = graph.get(SIGN_INS, EVENTUAL)
        assert refused.status_code == 403
        assert refused.json()["error"] == {
            **refused.json()["error"],
            "code": "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "message": "Neither tenant is B2C or tenant doesn't have premium license",
        }
        assert len(values(graph.pages(LICENSED, EVENTUAL))) == 10  # the same without sign-ins
        assert sim.control.expected_users(tenant)["premium"] is False


def test_sign_in_activity_forms_and_the_users_a_partner_asks_about(simulator_factory):
    sim = simulator_factory(
        uniform_scenario(
            customers=[
                users_customer(
                    {"SPE_E3": (400, 400), "POWER_BI_PRO": (20, 20)},
                    users={"group_share": 1.0, "shared_mailboxes": 2, "guest_share": 0.05},
                )
            ]
        )
    )
    graph = Graph(sim, USERS_TENANT)
    users = values(graph.pages(SIGN_INS + "&$top=999", EVENTUAL))
    assert len(users) == 400
    forms = Counter(_sign_in_form(user) for user in users)
    assert set(forms) == {"recent", "30+ days", "absent", "null", "sentinel"}
    assert any(not user["accountEnabled"] for user in users)
    assert any(
        user["userType"] == "Guest" and "#EXT#@" in user["userPrincipalName"] for user in users
    )
    states = [state for user in users for state in user["licenseAssignmentStates"]]
    assert {state["error"] for state in states if state["state"] == "Active"} == {None, "None"}
    for user in users:  # group_share 1: every licence from a group, a few directly as well
        by_group = {s["skuId"] for s in user["licenseAssignmentStates"] if s["assignedByGroup"]}
        assert {sku["skuId"] for sku in user["assignedLicenses"]} <= by_group
    assert any(state["assignedByGroup"] is None for state in states)
    # A full SKU's group met no free unit: the member's state is an error, not a licence.
    (failed,) = [state for state in states if state["state"] == "Error"]
    assert failed["error"] == "CountViolation"
    holder_of_failed = next(u for u in users if failed in u["licenseAssignmentStates"])
    assert failed["skuId"] not in {sku["skuId"] for sku in holder_of_failed["assignedLicenses"]}
    expected = sim.control.expected_users(USERS_TENANT)
    shared = set(expected["shared_mailboxes"])
    assert len(shared & {user["id"] for user in users}) == 2  # licensed shared mailboxes
    assert all(not u["accountEnabled"] for u in users if u["id"] in shared)


def _sign_in_form(user: dict[str, Any]) -> str:
    if "signInActivity" not in user:
        return "absent"
    activity = user["signInActivity"]
    if activity is None:
        return "null"
    if activity["lastSignInDateTime"] == "0001-01-01T00:00:00Z":
        return "sentinel"
    when = datetime.fromisoformat(activity["lastSignInDateTime"].replace("Z", "+00:00"))
    return "30+ days" if utcnow() - when >= timedelta(days=30) else "recent"


def test_sign_in_pages_are_capped_silently_or_refused(simulator_factory):
    sim = simulator_factory(uniform_scenario(settings={"users_sign_in_page_cap": 4}))
    graph = Graph(sim, UNIFORM_CUSTOMERS[0])
    with_sign_ins = SIGN_INS + "&$top=999"
    pages = graph.pages(with_sign_ins, EVENTUAL)
    assert [len(page["value"]) for page in pages[:-1]] == [4] * (len(pages) - 1)
    assert len(values(pages)) == 11
    assert len(graph.get(LICENSED + "&$top=999", EVENTUAL).json()["value"]) == 11
    sim.control.update_settings(users_sign_in_over_cap="error")
    refused = graph.get(with_sign_ins, EVENTUAL)
    assert refused.status_code == 400
    assert refused.json()["value"] == "Cannot query data for more than 4 users at a time."
    assert graph.get(SIGN_INS + "&$top=4", EVENTUAL).status_code == 200


def test_the_same_tenant_has_the_same_users_on_every_server(simulator_factory):
    first = simulator_factory(uniform_scenario()).control.expected_users(UNIFORM_CUSTOMERS[1])
    second = simulator_factory(uniform_scenario()).control.expected_users(UNIFORM_CUSTOMERS[1])
    assert [u["id"] for u in first["users"]] == [u["id"] for u in second["users"]]
    assert first["users"][0] == second["users"][0]


def test_users_are_generated_on_first_use_only(monkeypatch):
    made: list[str] = []
    real = state_module.TenantDirectory

    def counting(tenant_id: str, *args: Any) -> Any:
        made.append(tenant_id)
        return real(tenant_id, *args)

    monkeypatch.setattr(state_module, "TenantDirectory", counting)
    scale = load_scenario("scale")
    world = SimulatorState(scale)
    assert made == []
    large = [c for c in scale.customers if max(s.consumed for s in c.skus) >= 10_000]
    assert len(large) >= 2
    directory = world.directory(large[0].tenant_id)
    assert made == [large[0].tenant_id]
    assert sum(1 for user in directory.alive() if user.holdings) == max(
        sku.consumed for sku in large[0].skus
    )


# --- delta -------------------------------------------------------------------------------------

DELTA_SELECT = "id,displayName,userPrincipalName,accountEnabled,assignedLicenses,department,city"
DELTA = f"/v1.0/users/delta?$select={DELTA_SELECT}"


def test_delta_rounds_list_only_the_changes(simulator_factory):
    sim = simulator_factory(uniform_scenario(settings={"page_size_users_delta": 5}))
    tenant = UNIFORM_CUSTOMERS[0]
    graph = Graph(sim, tenant)
    everyone, delta_link, pages = graph.delta_round(DELTA)
    expected = sim.control.expected_users(tenant)["users"]
    assert sorted(u["id"] for u in everyone) == [u["id"] for u in expected]
    assert pages == -(-len(expected) // 5)
    assert set(everyone[0]) == set(DELTA_SELECT.split(","))

    changes = sim.control.change_users(tenant, added=1, removed=1, changed=1)
    changed, delta_link, pages = graph.delta_round(delta_link)
    assert pages == 1
    by_id = {user["id"]: user for user in changed}
    assert set(by_id) == {*changes["added"], *changes["removed"], *changes["changed"]}
    (removed,) = changes["removed"]
    assert by_id[removed] == {"id": removed, "@removed": {"reason": "changed"}}
    (added,) = changes["added"]
    assert len(by_id[added]["assignedLicenses"]) == 1
    # The licences followed the users: consumed units are the holders again.
    licensed = values(graph.pages(LICENSED, EVENTUAL))
    holders = Counter(sku["skuId"] for user in licensed for sku in user["assignedLicenses"])
    skus = graph.get("/v1.0/subscribedSkus").json()["value"]
    assert holders == {sku["skuId"]: sku["consumedUnits"] for sku in skus}

    nothing, _, pages = graph.delta_round(delta_link)
    assert (nothing, pages) == ([], 1)


def test_delta_follows_consumed_units_set_through_the_control_api(simulator_factory):
    sim = simulator_factory(uniform_scenario())
    tenant = UNIFORM_CUSTOMERS[0]
    graph = Graph(sim, tenant)
    _, delta_link, _ = graph.delta_round(DELTA)
    sim.control.set_sku_units(tenant, "SPB", consumed=13)  # was 11
    changed, _, _ = graph.delta_round(delta_link)
    assert len(changed) == 2
    assert all(SPB in {sku["skuId"] for sku in user["assignedLicenses"]} for user in changed)
    licensed = values(graph.pages(LICENSED, EVENTUAL))
    assert sum(SPB in {s["skuId"] for s in u["assignedLicenses"]} for u in licensed) == 13


def test_delta_rules_latest_and_refused_options(simulator_factory):
    sim = simulator_factory(uniform_scenario())
    tenant = UNIFORM_CUSTOMERS[0]
    graph = Graph(sim, tenant)
    refused = graph.get("/v1.0/users/delta?$select=id,signInActivity").json()["error"]
    assert refused["code"] == "BadRequest"
    assert refused["message"] == (
        "Invalid request for delta query: for this entity set, $expand/$select is not supported "
        "for the following properties: signInActivity"
    )
    assert graph.get("/v1.0/users/delta?$top=5").status_code == 400
    latest = graph.get(DELTA + "&$deltatoken=latest").json()
    assert latest["value"] == []
    assert "@odata.nextLink" not in latest
    changes = sim.control.change_users(tenant, changed=2)
    changed, _, _ = graph.delta_round(latest["@odata.deltaLink"])
    assert {user["id"] for user in changed} == set(changes["changed"])


@pytest.mark.parametrize(("answer", "status", "code"), [
    ("sync_state_not_found", 400, "syncStateNotFound"),
    ("gone", 410, "resyncRequired"),
])  # fmt: skip
def test_an_expired_delta_token_is_refused(simulator_factory, answer, status, code):
    sim = simulator_factory(uniform_scenario(settings={"delta_expired_answer": answer}))
    graph = Graph(sim, UNIFORM_CUSTOMERS[0])
    _, delta_link, _ = graph.delta_round(DELTA)
    assert graph.get(delta_link).status_code == 200  # within the lifetime
    sim.control.update_settings(delta_token_lifetime_s=0)
    expired = graph.get(delta_link)
    assert (expired.status_code, expired.json()["error"]["code"]) == (status, code)
    if status == 410:
        restart = expired.headers["Location"]
        assert restart.startswith(f"{sim.url}/v1.0/users/delta?$select=")
        assert len(graph.delta_round(restart)[0]) == len(
            sim.control.expected_users(UNIFORM_CUSTOMERS[0])["users"]
        )
    other_tenant = Graph(sim, UNIFORM_CUSTOMERS[1]).get(delta_link)
    assert other_tenant.status_code == 400  # a token is the tenant's own


# --- throttling --------------------------------------------------------------------------------


def test_resource_units_and_the_sign_in_reporting_limit(simulator_factory):
    sim = simulator_factory(uniform_scenario(settings={"identity_throttling": True}))
    graph = Graph(sim, UNIFORM_CUSTOMERS[0])
    assert graph.get("/v1.0/users").headers["x-ms-resource-unit"] == "2"
    assert graph.get("/v1.0/users?$select=id").headers["x-ms-resource-unit"] == "1"
    sign_ins = SIGN_INS + "&$top=1"
    statuses = [graph.get(sign_ins, EVENTUAL) for _ in range(6)]
    assert [r.status_code for r in statuses] == [200] * 5 + [429]
    throttled = statuses[-1]
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.headers["x-ms-throttle-scope"].endswith(f"/{UNIFORM_CUSTOMERS[0]}")
    assert graph.get(LICENSED, EVENTUAL).status_code == 200  # other reads go on


def test_throttle_faults_apply_to_users(simulator_factory):
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(
        uniform_scenario(faults={tenant: [{"type": "throttle", "times": 1, "retry_after": 3}]})
    )
    graph = Graph(sim, tenant)
    first = graph.get("/v1.0/users/delta")
    assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
    assert graph.get("/v1.0/users/delta").status_code == 200
