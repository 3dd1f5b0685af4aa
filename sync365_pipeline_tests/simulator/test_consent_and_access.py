"""Issue 10's endpoints, raw as `requests` and MSAL see them: CPV consent and the token refusals
before it, GDAP access assignments, the app's client secrets, reseller customers that Graph
refuses, and a customer that two partners (two simulators) share."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sync365_pipeline.simulator import SimulatorServer, load_scenario
from sync365_pipeline.simulator.scenario import DIRECTORY_READERS_ROLE, LICENSE_READING_ROLES
from sync365_pipeline_tests.conftest import SimulatorFactory
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CLIENT_ID,
    UNIFORM_CLIENT_SECRET,
    UNIFORM_CUSTOMERS,
    UNIFORM_PARTNER,
    second_partner_scenario,
    uniform_scenario,
)
from sync365_pipeline_tests.simulator.helpers import (
    GRAPH_SCOPE,
    PARTNER_CENTER_SCOPE,
    bearer,
    https_session,
    msal_app,
    redeem,
)
from sync365_pipeline_tests.simulator.test_faults import assert_ests_error, assert_graph_error

GRAPH_APP = "00000003-0000-0000-c000-000000000000"
EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"
UNCONSENTED_GDAP = "dddddddd-0000-4000-8000-000000000001"
UNCONSENTED_DAP = "dddddddd-0000-4000-8000-000000000002"
REFUSES_CONSENT = "dddddddd-0000-4000-8000-000000000003"
CONSENT_SERVER_ERROR = "dddddddd-0000-4000-8000-000000000004"
NO_LICENSE_ROLE = "dddddddd-0000-4000-8000-000000000005"
RESELLER_WITHOUT_GRAPH = "dddddddd-0000-4000-8000-000000000006"
ENDING_SOON = "dddddddd-0000-4000-8000-000000000007"


def _customer(tenant_id: str, name: str, **fields: Any) -> dict[str, Any]:
    customer = {
        "tenant_id": tenant_id,
        "display_name": name,
        "default_domain": f"{name.lower().replace(' ', '')}.onmicrosoft.com",
        "gdap_relationships": [{"ends_in_days": 300}],
        "skus": [{"part_number": "SPB", "enabled": 12, "consumed": 9}],
    }
    return {**customer, **fields}


ISSUE_10_CUSTOMERS = [
    _customer(UNCONSENTED_GDAP, "Needs Consent", consented=False),
    _customer(UNCONSENTED_DAP, "Dap Needs Consent", consented=False, dap=True),
    _customer(REFUSES_CONSENT, "Refuses Consent", consented=False, consent_failure="access_denied"),
    _customer(
        CONSENT_SERVER_ERROR, "Consent Outage", consented=False, consent_failure="server_error"
    ),
    _customer(
        NO_LICENSE_ROLE,
        "No License Role",
        gdap_relationships=[
            {
                "ends_in_days": 300,
                "roles": [DIRECTORY_READERS_ROLE, EXCHANGE_ADMINISTRATOR],
                "access_assignments": [
                    {"roles": [EXCHANGE_ADMINISTRATOR]},
                    {"roles": [DIRECTORY_READERS_ROLE], "status": "deleted"},
                ],
            }
        ],
    ),
    _customer(
        RESELLER_WITHOUT_GRAPH,
        "Reseller Without Graph",
        faults=[{"type": "graph_forbidden"}],
    ),
    _customer(
        ENDING_SOON,
        "Ending Soon",
        gdap_relationships=[{"ends_in_days": 10, "auto_extend_duration": "PT0S"}],
    ),
]


@pytest.fixture
def sim(simulator_factory: SimulatorFactory) -> SimulatorServer:
    return simulator_factory(uniform_scenario(customers=ISSUE_10_CUSTOMERS))


def partner_center_token(sim: SimulatorServer) -> str:
    return redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)["access_token"]


def partner_graph_token(sim: SimulatorServer) -> str:
    return redeem(sim, UNIFORM_PARTNER, GRAPH_SCOPE)["access_token"]


def consent_body(application_id: str = UNIFORM_CLIENT_ID) -> dict[str, Any]:
    return {
        "applicationId": application_id,
        "displayName": "sync365",
        "applicationGrants": [
            {"enterpriseApplicationId": GRAPH_APP, "scope": "Directory.Read.All,User.Read.All"}
        ],
    }


def post_consent(
    sim: SimulatorServer, tenant_id: str, body: Any, token: str | None = None
) -> requests.Response:
    headers = {"MS-RequestId": "0d4c6b2e-4a55-4b8e-9d1c-7f3e2a1b0c9d"}
    if token is not None:
        headers |= bearer(token)
    return https_session(sim).post(
        f"{sim.url}/v1/customers/{tenant_id}/applicationconsents", json=body, headers=headers
    )


def subscribed_skus_from_both(
    sim: SimulatorServer, tenant_id: str
) -> tuple[requests.Response, requests.Response]:
    """A customer's SKUs from Graph (customer token) and from Partner Center (partner token)."""
    session = https_session(sim)
    graph_token = redeem(sim, tenant_id, GRAPH_SCOPE)["access_token"]
    graph = session.get(f"{sim.url}/v1.0/subscribedSkus", headers=bearer(graph_token))
    partner_center = session.get(
        f"{sim.url}/v1/customers/{tenant_id}/subscribedskus",
        headers=bearer(partner_center_token(sim)),
    )
    return graph, partner_center


def assert_partner_center_error(response: requests.Response, status: int, code: int) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert body["description"]
    assert body["data"] == []
    assert body["source"] == "PartnerFD"


# --- CPV consent -----------------------------------------------------------------------------


def test_unconsented_gdap_customer_is_refused_with_90099_until_consent_is_granted(sim):
    refused = redeem(sim, UNCONSENTED_GDAP, GRAPH_SCOPE)
    assert_ests_error(refused, "invalid_grant", 90099)
    assert f"'{UNCONSENTED_GDAP}'" in refused["error_description"]
    assert "execute the appropriate Partner Center API" in refused["error_description"]

    granted = post_consent(sim, UNCONSENTED_GDAP, consent_body(), partner_center_token(sim))

    assert granted.status_code == 201
    assert granted.json() == consent_body()
    assert granted.headers["MS-RequestId"] == "0d4c6b2e-4a55-4b8e-9d1c-7f3e2a1b0c9d"
    assert "access_token" in redeem(sim, UNCONSENTED_GDAP, GRAPH_SCOPE)


def test_unconsented_dap_customer_is_refused_with_65001_and_app_only_with_700016(sim):
    assert_ests_error(
        redeem(sim, UNCONSENTED_DAP, GRAPH_SCOPE), "invalid_grant", 65001, "consent_required"
    )
    app_only = msal_app(sim, UNCONSENTED_DAP, https_session(sim)).acquire_token_for_client(
        [GRAPH_SCOPE]
    )
    assert_ests_error(app_only, "unauthorized_client", 700016)


def test_second_consent_answers_permission_entry_already_exists(sim):
    token = partner_center_token(sim)
    already = post_consent(sim, UNIFORM_CUSTOMERS[0], consent_body(), token)  # consented at start

    assert_partner_center_error(already, 409, 409)
    assert already.json()["description"] == "Permission entry already exists."
    assert post_consent(sim, UNCONSENTED_GDAP, consent_body(), token).status_code == 201
    assert post_consent(sim, UNCONSENTED_GDAP, consent_body(), token).status_code == 409


def test_consent_of_another_app_does_not_let_ours_in(sim):
    other_app = "eeeeeeee-0000-4000-8000-000000000009"
    token = partner_center_token(sim)
    assert post_consent(sim, UNCONSENTED_GDAP, consent_body(other_app), token).status_code == 201
    assert_ests_error(redeem(sim, UNCONSENTED_GDAP, GRAPH_SCOPE), "invalid_grant", 90099)


def test_consent_that_fails_leaves_the_customer_refused(sim):
    token = partner_center_token(sim)

    assert_partner_center_error(
        post_consent(sim, REFUSES_CONSENT, consent_body(), token), 403, 2032
    )
    assert_partner_center_error(
        post_consent(sim, CONSENT_SERVER_ERROR, consent_body(), token), 500, 800003
    )
    for tenant_id in (REFUSES_CONSENT, CONSENT_SERVER_ERROR):
        assert_ests_error(redeem(sim, tenant_id, GRAPH_SCOPE), "invalid_grant", 90099)


@pytest.mark.parametrize(
    ("body", "token_kind", "status", "code"),
    [
        (consent_body(), None, 401, 800001),
        (consent_body(), "graph", 401, 400),
        ({"applicationId": UNIFORM_CLIENT_ID}, "partner_center", 400, 800002),
        ({**consent_body(), "applicationId": "not-a-guid"}, "partner_center", 400, 800002),
        (
            {**consent_body(), "applicationGrants": [{"enterpriseApplicationId": GRAPH_APP}]},
            "partner_center",
            400,
            800002,
        ),
    ],
)
def test_consent_needs_a_partner_center_token_and_a_whole_body(sim, body, token_kind, status, code):
    tokens = {"graph": partner_graph_token, "partner_center": partner_center_token}
    token = tokens[token_kind](sim) if token_kind is not None else None
    assert_partner_center_error(post_consent(sim, UNCONSENTED_GDAP, body, token), status, code)
    assert_ests_error(redeem(sim, UNCONSENTED_GDAP, GRAPH_SCOPE), "invalid_grant", 90099)


def test_consent_for_an_unknown_tenant_is_60003(sim):
    unknown = "ffffffff-0000-4000-8000-000000000000"
    response = post_consent(sim, unknown, consent_body(), partner_center_token(sim))
    assert_partner_center_error(response, 404, 60003)


# --- GDAP relationships and access assignments ----------------------------------------------


def relationships_by_customer(sim: SimulatorServer) -> dict[str, dict[str, Any]]:
    response = https_session(sim).get(
        f"{sim.url}/v1.0/tenantRelationships/delegatedAdminRelationships",
        headers=bearer(partner_graph_token(sim)),
    )
    assert response.status_code == 200
    return {item["customer"]["tenantId"]: item for item in response.json()["value"]}


def assignments_url(sim: SimulatorServer, relationship_id: str) -> str:
    return (
        f"{sim.url}/v1.0/tenantRelationships/delegatedAdminRelationships/{relationship_id}"
        "/accessAssignments"
    )


def test_access_assignments_come_in_pages_with_their_roles(sim):
    relationship = relationships_by_customer(sim)[NO_LICENSE_ROLE]
    session, token = https_session(sim), partner_graph_token(sim)

    first = session.get(
        assignments_url(sim, relationship["id"]), params={"$top": "1"}, headers=bearer(token)
    ).json()
    second = session.get(first["@odata.nextLink"], headers=bearer(token)).json()

    assert first["@odata.context"].endswith("$metadata#accessAssignments")
    assert "@odata.nextLink" not in second
    assignments = first["value"] + second["value"]
    assert [a["status"] for a in assignments] == ["active", "deleted"]
    assert [
        [r["roleDefinitionId"] for r in a["accessDetails"]["unifiedRoles"]] for a in assignments
    ] == [
        [EXCHANGE_ADMINISTRATOR],
        [DIRECTORY_READERS_ROLE],
    ]
    for assignment in assignments:
        assert assignment["@odata.type"] == "#microsoft.graph.delegatedAdminAccessAssignment"
        assert assignment["accessContainer"]["accessContainerType"] == "securityGroup"
        assert {"id", "@odata.etag", "createdDateTime", "lastModifiedDateTime"} <= set(assignment)


def test_default_assignment_grants_the_relationship_roles(sim):
    relationship = relationships_by_customer(sim)[UNIFORM_CUSTOMERS[0]]
    response = https_session(sim).get(
        assignments_url(sim, relationship["id"]),
        params={"$filter": "status eq 'active'"},
        headers=bearer(partner_graph_token(sim)),
    )
    (assignment,) = response.json()["value"]
    roles = {role["roleDefinitionId"] for role in assignment["accessDetails"]["unifiedRoles"]}
    ceiling = {role["roleDefinitionId"] for role in relationship["accessDetails"]["unifiedRoles"]}
    assert roles == ceiling
    assert roles & LICENSE_READING_ROLES


def test_customer_without_a_license_reading_assignment_is_refused_by_graph_and_partner_center(
    sim,
):
    graph, partner_center = subscribed_skus_from_both(sim, NO_LICENSE_ROLE)
    assert_graph_error(graph, 403, "Authorization_RequestDenied")
    assert_partner_center_error(partner_center, 403, 2032)


def test_unknown_relationship_or_a_customer_token_gets_bad_request(sim):
    session = https_session(sim)
    unknown = session.get(
        assignments_url(sim, "not-a-relationship"), headers=bearer(partner_graph_token(sim))
    )
    assert_graph_error(unknown, 400, "badRequest")
    assert unknown.json()["error"]["message"] == (
        "The passed in delegatedAdminRelationshipId is invalid."
    )
    relationship = relationships_by_customer(sim)[UNIFORM_CUSTOMERS[0]]
    customer_token = redeem(sim, UNIFORM_CUSTOMERS[0], GRAPH_SCOPE)["access_token"]
    from_customer = session.get(
        assignments_url(sim, relationship["id"]), headers=bearer(customer_token)
    )
    assert_graph_error(from_customer, 400, "badRequest")


def test_relationship_ending_soon_without_auto_extend(sim):
    relationship = relationships_by_customer(sim)[ENDING_SOON]
    end = datetime.fromisoformat(relationship["endDateTime"].replace("Z", "+00:00"))

    assert relationship["autoExtendDuration"] == "PT0S"
    assert relationship["status"] == "active"
    assert timedelta(days=9) < end - datetime.now(UTC) <= timedelta(days=10)
    assert relationships_by_customer(sim)[UNIFORM_CUSTOMERS[0]]["autoExtendDuration"] == "P180D"


# --- the app's client secrets ----------------------------------------------------------------


def application_url(sim: SimulatorServer, app_id: str = UNIFORM_CLIENT_ID) -> str:
    return f"{sim.url}/v1.0/applications(appId='{app_id}')"


def test_application_lists_its_password_credentials_without_secret_text(
    simulator_factory: SimulatorFactory,
):
    credentials = [
        {"display_name": "sync365 2026", "ends_in_days": 20},
        {"display_name": "retired", "hint": "Old", "ends_in_days": -40},
    ]
    sim = simulator_factory(uniform_scenario(partner={"password_credentials": credentials}))

    response = https_session(sim).get(
        application_url(sim),
        params={"$select": "id,appId,displayName,passwordCredentials"},
        headers=bearer(partner_graph_token(sim)),
    )

    assert response.status_code == 200
    body = response.json()
    assert body["appId"] == UNIFORM_CLIENT_ID
    assert "keyCredentials" not in body  # not selected
    in_use, retired = body["passwordCredentials"]
    assert (in_use["displayName"], in_use["hint"]) == ("sync365 2026", UNIFORM_CLIENT_SECRET[:3])
    assert retired["hint"] == "Old"
    now = datetime.now(UTC)
    in_use_end = datetime.fromisoformat(in_use["endDateTime"].replace("Z", "+00:00"))
    assert timedelta(days=19) < in_use_end - now <= timedelta(days=20)
    assert datetime.fromisoformat(retired["endDateTime"].replace("Z", "+00:00")) < now
    for credential in (in_use, retired):
        assert credential["secretText"] is None
        assert {"keyId", "startDateTime", "customKeyIdentifier"} <= set(credential)
        assert UNIFORM_CLIENT_SECRET not in response.text


def test_application_is_not_found_for_another_app_or_in_a_customer_tenant(sim):
    session = https_session(sim)
    other = session.get(
        application_url(sim, "eeeeeeee-0000-4000-8000-000000000009"),
        headers=bearer(partner_graph_token(sim)),
    )
    assert_graph_error(other, 404, "Request_ResourceNotFound")
    customer_token = redeem(sim, UNIFORM_CUSTOMERS[0], GRAPH_SCOPE)["access_token"]
    in_customer = session.get(application_url(sim), headers=bearer(customer_token))
    assert_graph_error(in_customer, 404, "Request_ResourceNotFound")


def test_an_ended_client_secret_is_refused_at_the_token_endpoint(
    simulator_factory: SimulatorFactory,
):
    sim = simulator_factory(
        uniform_scenario(partner={"password_credentials": [{"ends_in_days": -1}]})
    )
    refused = redeem(sim, UNIFORM_PARTNER, GRAPH_SCOPE)
    assert_ests_error(refused, "invalid_client", 7000222)


# --- reseller customers that Graph refuses ---------------------------------------------------


def test_reseller_customer_without_graph_access_still_answers_in_partner_center(sim):
    graph, partner_center = subscribed_skus_from_both(sim, RESELLER_WITHOUT_GRAPH)
    assert_graph_error(graph, 403, "Authorization_RequestDenied")
    assert partner_center.status_code == 200
    (sku,) = partner_center.json()["items"]
    assert (sku["productSku"]["skuPartNumber"], sku["activeUnits"], sku["consumedUnits"]) == (
        "SPB",
        12,
        9,
    )


# --- one customer, two partners ---------------------------------------------------------------


def test_a_customer_shared_by_two_partners_is_served_by_each_partners_simulator(
    simulator_factory: SimulatorFactory,
):
    """One simulator is one partner; a customer both partners reach is the same tenant id in
    both scenarios, and each world changes on its own."""
    shared = UNIFORM_CUSTOMERS[0]
    first = simulator_factory(uniform_scenario())
    second_scenario = second_partner_scenario()
    (customer,) = [c for c in uniform_scenario()["customers"] if c["tenant_id"] == shared]
    second_scenario["customers"].append(copy.deepcopy(customer) | {"faults": []})
    second = simulator_factory(second_scenario)

    first.control.revoke_consent(shared)

    assert_ests_error(
        redeem(first, shared, GRAPH_SCOPE), "invalid_grant", 65001, "consent_required"
    )
    token = redeem(second, shared, GRAPH_SCOPE)["access_token"]
    served = https_session(second).get(f"{second.url}/v1.0/subscribedSkus", headers=bearer(token))
    assert served.status_code == 200
    assert {sku["skuPartNumber"] for sku in served.json()["value"]} == {
        "SPB",
        "POWER_BI_PRO",
        "FLOW_FREE",
    }


# --- the demo shows each kind ------------------------------------------------------------------


def test_demo_has_one_customer_of_each_new_kind(simulator_factory: SimulatorFactory):
    sim = simulator_factory("demo")
    env = sim.environment()
    by_name = {c.display_name: c.tenant_id for c in load_scenario("demo").customers}
    session = https_session(sim)
    pc_token = redeem(sim, env["SYNC365_PARTNER_TENANT_ID"], PARTNER_CENTER_SCOPE)["access_token"]
    body = consent_body(env["SYNC365_CLIENT_ID"])

    def consent(name: str) -> int:
        url = f"{sim.url}/v1/customers/{by_name[name]}/applicationconsents"
        return session.post(url, json=body, headers=bearer(pc_token)).status_code

    def graph_status(name: str) -> int:
        token = redeem(sim, by_name[name], GRAPH_SCOPE)["access_token"]
        return session.get(f"{sim.url}/v1.0/subscribedSkus", headers=bearer(token)).status_code

    def partner_center_status(name: str) -> int:
        url = f"{sim.url}/v1/customers/{by_name[name]}/subscribedskus"
        return session.get(url, headers=bearer(pc_token)).status_code

    lakeshore = redeem(sim, by_name["Lakeshore Fitness Studios"], GRAPH_SCOPE)
    assert lakeshore["error_codes"] == [90099]
    assert consent("Lakeshore Fitness Studios") == 201
    assert graph_status("Lakeshore Fitness Studios") == 200
    assert consent("Riverbend Montessori School") == 403
    assert redeem(sim, by_name["Riverbend Montessori School"], GRAPH_SCOPE)["error_codes"] == [
        90099
    ]
    assert (
        graph_status("Harborview Marine Supply"),
        partner_center_status("Harborview Marine Supply"),
    ) == (403, 200)
    assert (
        graph_status("Oakridge Accounting Group"),
        partner_center_status("Oakridge Accounting Group"),
    ) == (403, 403)
    assert graph_status("Pinecrest Hotels") == 200
