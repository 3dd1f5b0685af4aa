"""Issue 11's endpoints, raw as `requests` sees them: Partner Center's subscriptions (what the
partner sold, NCE and legacy) and Graph's `directory/subscriptions` (every seller's), kept
consistent with the tenant's SKUs."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
import requests

from sync365_pipeline.core.clock import replaying
from sync365_pipeline.simulator import ScenarioError, SimulatorServer, load_scenario
from sync365_pipeline.simulator.client import SimulatorControlError
from sync365_pipeline.simulator.scenario import validate_scenario
from sync365_pipeline.simulator.state import SimulatorState
from sync365_pipeline.simulator.subscriptions import add_months
from sync365_pipeline_tests.conftest import SimulatorFactory
from sync365_pipeline_tests.scenarios import UNIFORM_PARTNER, uniform_scenario
from sync365_pipeline_tests.simulator.helpers import (
    GRAPH_SCOPE,
    PARTNER_CENTER_SCOPE,
    bearer,
    https_session,
    msal_app,
    redeem,
)
from sync365_pipeline_tests.simulator.test_consent_and_access import assert_partner_center_error
from sync365_pipeline_tests.simulator.test_faults import assert_graph_error

SHAPES = "eeeeeeee-0000-4000-8000-000000000001"
GDAP_EXPIRED = "eeeeeeee-0000-4000-8000-000000000002"
GDAP_ONLY = "eeeeeeee-0000-4000-8000-000000000003"
ADVISOR = "eeeeeeee-0000-4000-8000-000000000004"
OTHER_RESELLER = "0f0f0f0f-0000-4000-8000-00000000000f"
NCE_OFFER = re.compile(r"^CFQ7TTC0[0-9A-Z]{4}:0001:CFQ7TTC0[0-9A-Z]{4}$")

SHAPES_SKUS: list[dict[str, Any]] = [
    {
        "part_number": "SPB",
        "enabled": 30,
        "consumed": 25,
        "warning": 2,
        "subscriptions": [
            {"seller": "other_partner", "quantity": 8, "owner_tenant_id": OTHER_RESELLER},
            {"seller": "customer", "quantity": 2},
        ],
    },
    {
        "part_number": "O365_BUSINESS_PREMIUM",
        "enabled": 10,
        "consumed": 6,
        "subscriptions": [
            {"term": "P1M", "next_term": {"quantity": 8, "term": "P1Y", "billing_cycle": "annual"}}
        ],
    },
    {
        "part_number": "SPE_E3",
        "enabled": 50,
        "consumed": 44,
        "subscriptions": [{"commerce": "legacy", "term_started_days_ago": 30}],
    },
    {
        "part_number": "Teams_Ess",
        "enabled": 5,
        "subscriptions": [{"trial": True, "term": "P1M", "renewals": 0}],
    },
    {
        "part_number": "ENTERPRISEPACK",
        "enabled": 12,
        "consumed": 3,
        "subscriptions": [{"term_started_days_ago": 2, "renewals": 0, "friendly_name": "E3 new"}],
    },
    {
        "part_number": "EMSPREMIUM",
        "enabled": 7,
        "suspended": 3,
        "subscriptions": [{"term_ends_in_days": 20, "auto_renew": False}],
    },
]


def _customer(tenant_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "display_name": name,
        "default_domain": f"{name.lower().replace(' ', '')}.onmicrosoft.com",
        "gdap_relationships": [{"ends_in_days": 300}],
        "skus": [{"part_number": "SPB", "enabled": 12, "consumed": 9}],
        **fields,
    }


ISSUE_11_CUSTOMERS = [
    _customer(SHAPES, "Every Shape", skus=SHAPES_SKUS),
    _customer(GDAP_EXPIRED, "Gdap Ended", gdap_relationships=[{"ends_in_days": -5}]),
    _customer(GDAP_ONLY, "Gdap Only", in_partner_center=False, relationship_to_partner="none"),
    _customer(ADVISOR, "Advisor Only", relationship_to_partner="advisor"),
]


@pytest.fixture
def sim(simulator_factory: SimulatorFactory) -> SimulatorServer:
    return simulator_factory(uniform_scenario(customers=ISSUE_11_CUSTOMERS))


def partner_center_get(
    sim: SimulatorServer, path: str, token: str | None = None
) -> requests.Response:
    token = token or redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)["access_token"]
    return https_session(sim).get(f"{sim.url}/v1/customers/{path}", headers=bearer(token))


def sold(sim: SimulatorServer, tenant_id: str) -> dict[str, dict[str, Any]]:
    """The partner's subscriptions of the customer, by offer name and status."""
    response = partner_center_get(sim, f"{tenant_id}/subscriptions")
    assert response.status_code == 200
    return {(item["offerName"], item["status"]): item for item in response.json()["items"]}


def graph_get(sim: SimulatorServer, tenant_id: str, path: str) -> requests.Response:
    token = redeem(sim, tenant_id, GRAPH_SCOPE)["access_token"]
    return https_session(sim).get(f"{sim.url}/v1.0/{path}", headers=bearer(token))


def day(stamp: str) -> date:
    return date.fromisoformat(stamp[:10])


# --- Partner Center ----------------------------------------------------------------------------


def test_partner_center_lists_only_what_the_partner_sold_in_one_collection(sim):
    response = partner_center_get(sim, f"{SHAPES}/subscriptions")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"totalCount", "items", "attributes"}  # no links: not paged
    assert body["attributes"] == {"objectType": "Collection"}
    assert body["totalCount"] == len(body["items"])
    quantities = {(i["offerName"], i["status"]): i["quantity"] for i in body["items"]}
    assert quantities == {
        ("Microsoft 365 Business Premium", "active"): 20,  # 8 from another reseller, 2 direct
        ("Microsoft 365 Business Premium", "expired"): 2,  # the SKU's warning units
        ("Microsoft 365 Business Standard", "active"): 10,
        ("Microsoft 365 E3", "active"): 50,
        ("Microsoft Teams Essentials", "active"): 5,
        ("Office 365 E3", "active"): 12,
        ("Enterprise Mobility + Security E5", "active"): 7,
        ("Enterprise Mobility + Security E5", "suspended"): 3,
    }


def test_new_commerce_and_legacy_shapes(sim):
    subscriptions = sold(sim, SHAPES)
    nce = subscriptions["Microsoft 365 Business Premium", "active"]
    legacy = subscriptions["Microsoft 365 E3", "active"]

    assert NCE_OFFER.match(nce["offerId"])
    assert nce["productType"]["id"] == "OnlineServicesNCE"
    assert (nce["termDuration"], nce["billingCycle"], nce["autoRenewEnabled"]) == (
        "P1Y",
        "monthly",
        True,
    )
    first = day(nce["effectiveStartDate"])
    assert day(nce["commitmentEndDate"]) == add_months(first, 12) - timedelta(days=1)  # inclusive
    assert nce["commitmentEndDateTime"].endswith("T23:59:59Z")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$", nce["creationDate"])
    assert day(nce["creationDate"]) == add_months(first, -12)  # renewed once
    assert nce["links"]["self"]["uri"] == f"/customers/{SHAPES}/subscriptions/{nce['id']}"
    assert nce["links"]["product"]["uri"].startswith("/products/CFQ7TTC0")

    assert re.match(r"^[0-9A-F]{8}-([0-9A-F]{4}-){3}[0-9A-F]{12}$", legacy["offerId"])
    assert "productType" not in legacy
    assert "cancellationAllowedUntilDate" not in legacy
    first = day(legacy["effectiveStartDate"])
    assert day(legacy["commitmentEndDate"]) == add_months(first, 12)  # exclusive
    assert legacy["links"]["offer"]["uri"] == f"/v1/offers/{legacy['offerId']}"
    assert legacy["links"]["self"]["uri"].startswith("/subscriptions?key=")


def test_monthly_term_with_a_change_scheduled_for_renewal(sim):
    monthly = sold(sim, SHAPES)["Microsoft 365 Business Standard", "active"]

    assert (monthly["termDuration"], monthly["billingCycle"]) == ("P1M", "monthly")
    first = day(monthly["effectiveStartDate"])
    assert day(monthly["commitmentEndDate"]) == add_months(first, 1) - timedelta(days=1)
    scheduled = monthly["scheduledNextTermInstructions"]
    assert scheduled["quantity"] == 8
    assert scheduled["product"]["termDuration"] == "P1Y"
    assert scheduled["product"]["billingCycle"] == "Annual"  # capitalised, as Microsoft's
    assert monthly["offerId"] == ":".join(
        scheduled["product"][key] for key in ("productId", "skuId", "availabilityId")
    )
    assert monthly["renewalTermDuration"] == "P1Y"


def test_cancellation_window_refunds_and_trials(sim):
    subscriptions = sold(sim, SHAPES)
    just_bought = subscriptions["Office 365 E3", "active"]
    long_running = subscriptions["Microsoft 365 Business Premium", "active"]
    trial = subscriptions["Microsoft Teams Essentials", "active"]

    until = just_bought["cancellationAllowedUntilDate"]
    assert day(until) - day(just_bought["effectiveStartDate"]) == timedelta(days=7)
    assert just_bought["refundOptions"] == [{"type": "Full", "expiresAt": until}]
    assert just_bought["refundableQuantity"]["totalQuantity"] == 12
    assert "cancel" in just_bought["actions"]
    assert just_bought["friendlyName"] == "E3 new"
    assert day(just_bought["creationDate"]) == day(just_bought["effectiveStartDate"])

    # 120 days in, the window has closed: the date stays, the refund and cancel action go.
    assert day(long_running["cancellationAllowedUntilDate"]) < day(
        long_running["commitmentEndDate"]
    ) - timedelta(days=300)
    assert long_running["refundOptions"] == []
    assert "refundableQuantity" not in long_running
    assert long_running["actions"] == ["edit"]

    assert (trial["isTrial"], trial["billingCycle"], trial["autoRenewEnabled"]) == (
        True,
        "none",
        False,
    )
    assert trial["cancellationAllowedUntilDate"] == trial["commitmentEndDate"]
    assert trial["refundOptions"] == []
    assert "etag" not in trial["attributes"]


def test_commitment_ending_without_renewal_and_ended_states(sim):
    subscriptions = sold(sim, SHAPES)
    ending = subscriptions["Enterprise Mobility + Security E5", "active"]
    suspended = subscriptions["Enterprise Mobility + Security E5", "suspended"]
    expired = subscriptions["Microsoft 365 Business Premium", "expired"]

    assert ending["autoRenewEnabled"] is False
    first = day(ending["effectiveStartDate"])
    assert day(ending["commitmentEndDate"]) == add_months(first, 12) - timedelta(days=1)
    assert suspended["suspensionReasons"] == ["PartnerInitiated"]
    assert (suspended["autoRenewEnabled"], suspended["actions"]) == (False, [])
    assert expired["autoRenewEnabled"] is False
    assert day(expired["commitmentEndDate"]) < day(ending["commitmentEndDate"])


def test_one_subscription_by_id_in_any_case(sim):
    wanted = sold(sim, SHAPES)["Office 365 E3", "active"]

    by_id = partner_center_get(sim, f"{SHAPES}/subscriptions/{wanted['id'].upper()}")
    unknown = partner_center_get(
        sim, f"{SHAPES}/subscriptions/a4c1340d-6911-4758-bba3-0c4c6007d161"
    )
    malformed = partner_center_get(sim, f"{SHAPES}/subscriptions/not-a-guid")

    assert by_id.status_code == 200
    assert by_id.json() == wanted
    assert_partner_center_error(unknown, 404, 20003)
    assert_partner_center_error(malformed, 400, 800002)


def test_partner_center_subscriptions_survive_the_loss_of_gdap_and_need_no_user(sim):
    app_only = msal_app(sim, UNIFORM_PARTNER, https_session(sim)).acquire_token_for_client(
        scopes=["https://api.partnercenter.microsoft.com/.default"]
    )["access_token"]

    assert_graph_error(
        graph_get(sim, GDAP_EXPIRED, "directory/subscriptions"), 403, "Authorization_RequestDenied"
    )
    assert [i["quantity"] for i in sold(sim, GDAP_EXPIRED).values()] == [12]
    assert partner_center_get(sim, f"{GDAP_EXPIRED}/subscriptions", app_only).status_code == 200


def test_customers_the_partner_does_not_sell_to_are_20002(sim):
    for tenant_id in (GDAP_ONLY, ADVISOR):
        response = partner_center_get(sim, f"{tenant_id}/subscriptions")
        assert_partner_center_error(response, 403, 20002)
        assert tenant_id in response.json()["description"]
    sim.control.remove_customer(SHAPES)
    assert_partner_center_error(partner_center_get(sim, f"{SHAPES}/subscriptions"), 403, 20002)
    unknown = "eeeeeeee-0000-4000-8000-0000000000ff"
    assert_partner_center_error(partner_center_get(sim, f"{unknown}/subscriptions"), 404, 60003)


def test_partner_center_pages_subscriptions_when_told_to(simulator_factory: SimulatorFactory):
    sim = simulator_factory(
        uniform_scenario(customers=ISSUE_11_CUSTOMERS, settings={"page_size_subscriptions": 5})
    )
    first = partner_center_get(sim, f"{SHAPES}/subscriptions").json()

    following = first["links"]["next"]
    (header,) = following["headers"]
    token = redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)["access_token"]
    second = (
        https_session(sim)
        .get(
            f"{sim.url}{following['uri']}",
            headers={**bearer(token), header["key"]: header["value"]},
        )
        .json()
    )
    assert (first["totalCount"], second["totalCount"]) == (5, 3)
    assert "next" not in second["links"]
    everything = sim.control.expected_subscriptions(SHAPES)["partner_center"]
    assert first["items"] + second["items"] == everything


# --- Graph -------------------------------------------------------------------------------------


def test_directory_subscriptions_name_every_seller(sim):
    response = graph_get(sim, SHAPES, "directory/subscriptions")
    assert response.status_code == 200
    items = response.json()["value"]
    partner_ids = {item["id"] for item in sold(sim, SHAPES).values()}

    premium = [item for item in items if item["skuPartNumber"] == "SPB"]
    owners = {
        (item["ownerTenantId"], item["ownerType"], item["status"]): item["totalLicenses"]
        for item in premium
    }
    assert owners == {
        (UNIFORM_PARTNER, "User", "Enabled"): 20,
        (UNIFORM_PARTNER, "User", "Warning"): 2,
        (OTHER_RESELLER, "User", "Enabled"): 8,
        (None, None, "Enabled"): 2,  # bought directly: no partner owner
    }
    ours = {
        item["commerceSubscriptionId"] for item in items if item["ownerTenantId"] == UNIFORM_PARTNER
    }
    assert ours == partner_ids
    trial = next(item for item in items if item["skuPartNumber"] == "Teams_Ess")
    assert trial["isTrial"] is True


def test_graph_unit_counts_are_the_sums_of_the_subscriptions(sim):
    """subscribedSkus' prepaid units per status = the quantities of its subscriptions, and its
    subscriptionIds are their ids, also after the SKU's units change."""
    sim.control.set_sku_units(SHAPES, "SPB", enabled=40)

    skus = graph_get(sim, SHAPES, "subscribedSkus").json()["value"]
    subscriptions = graph_get(sim, SHAPES, "directory/subscriptions").json()["value"]

    by_sku: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    ids: dict[str, set[str]] = defaultdict(set)
    for item in subscriptions:
        by_sku[item["skuId"]][item["status"]] += item["totalLicenses"]
        ids[item["skuId"]].add(item["id"])
    for sku in skus:
        units = sku["prepaidUnits"]
        assert dict(by_sku[sku["skuId"]]) == {
            status: count
            for status, count in (
                ("Enabled", units["enabled"]),
                ("Warning", units["warning"]),
                ("Suspended", units["suspended"]),
                ("LockedOut", units["lockedOut"]),
            )
            if count
        }
        assert set(sku["subscriptionIds"]) == ids[sku["skuId"]]
    assert sold(sim, SHAPES)["Microsoft 365 Business Premium", "active"]["quantity"] == 30
    with pytest.raises(SimulatorControlError, match="exceed the SKU's enabled units"):
        sim.control.set_sku_units(SHAPES, "SPB", enabled=9)  # 8 + 2 sold elsewhere


def test_directory_subscriptions_page_and_answer_by_either_id(simulator_factory: SimulatorFactory):
    sim = simulator_factory(
        uniform_scenario(customers=ISSUE_11_CUSTOMERS, settings={"page_size_graph": 3})
    )
    token = redeem(sim, SHAPES, GRAPH_SCOPE)["access_token"]
    session = https_session(sim)
    url: str | None = f"{sim.url}/v1.0/directory/subscriptions"
    items: list[dict[str, Any]] = []
    while url is not None:
        page = session.get(url, headers=bearer(token)).json()
        items += page["value"]
        url = page.get("@odata.nextLink")
    assert items == sim.control.expected_subscriptions(SHAPES)["graph"]
    assert (
        sim.control.request_counts()["by_route"]["graph.directorySubscriptions"] == 4
    )  # 10 in pages of 3

    wanted = items[0]
    for path in (
        f"directory/subscriptions/{wanted['id']}",
        f"directory/subscriptions/{wanted['commerceSubscriptionId']}",
        f"directory/subscriptions(commerceSubscriptionId='{wanted['commerceSubscriptionId']}')",
    ):
        found = session.get(f"{sim.url}/v1.0/{path}", headers=bearer(token)).json()
        assert {k: v for k, v in found.items() if k != "@odata.context"} == wanted
    missing = session.get(
        f"{sim.url}/v1.0/directory/subscriptions/a4c1340d-6911-4758-bba3-0c4c6007d161",
        headers=bearer(token),
    )
    assert_graph_error(missing, 404, "Request_ResourceNotFound")


# --- faults ------------------------------------------------------------------------------------


def test_faults_reach_both_endpoints(sim):
    sim.control.set_fault(SHAPES, {"type": "throttle", "times": 1, "service": "partner_center"})
    sim.control.set_fault(SHAPES, {"type": "server_error", "times": 1, "service": "graph"})
    sim.control.set_fault(
        SHAPES, {"type": "hostile_text", "times": 1, "text": "EVIL", "service": "partner_center"}
    )

    throttled = partner_center_get(sim, f"{SHAPES}/subscriptions")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert throttled.json()["statusCode"] == 429
    assert_graph_error(
        graph_get(sim, SHAPES, "directory/subscriptions"), 503, "serviceNotAvailable"
    )
    hostile = partner_center_get(sim, f"{SHAPES}/subscriptions").json()["items"]
    assert {(item["offerName"], item["friendlyName"]) for item in hostile} == {("EVIL", "EVIL")}
    assert graph_get(sim, SHAPES, "directory/subscriptions").status_code == 200


# --- scenarios ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscriptions", "message"),
    [
        ([{"quantity": 13}], r"quantities \(13\) exceed the SKU's enabled units \(12\)"),
        ([{"term": "P1M"}, {"status": "pending"}], "only one enabled subscription can omit"),
        ([{"trial": True, "term": "P1Y"}], "a trial is a one-month"),
        ([{"term": "P1M", "billing_cycle": "annual"}], "billing_cycle annual is not one of"),
        ([{"term_started_days_ago": 400}], "term_started_days_ago must be less than 365 for P1Y"),
        ([{"term_ends_in_days": -3}], "the term of a active subscription has not ended"),
        ([{"commerce": "legacy", "term": "P3Y"}], "legacy subscriptions have P1M or P1Y"),
        ([{"auto_renew": False, "next_term": {"quantity": 3}}], "next_term needs a subscription"),
        ([{"seller": "parter"}], r"seller: Input should be 'partner', 'other_partner' or"),
    ],
)
def test_bad_subscriptions_are_named(subscriptions, message):
    scenario = uniform_scenario(customers=[_customer(SHAPES, "Bad")])
    scenario["customers"][-1]["skus"][0]["subscriptions"] = subscriptions
    with pytest.raises(ScenarioError, match=r"customers\[3\]\.skus\[0\]") as caught:
        validate_scenario(scenario)
    assert re.search(message, str(caught.value))


def test_demo_shows_each_kind_of_subscription():
    state = SimulatorState(load_scenario("demo"))
    by_name = {c.display_name: c for c in state.customers.values()}

    def partner_center(name: str) -> dict[str, dict[str, Any]]:
        items = state.partner_center_subscriptions(by_name[name])
        return {item["offerName"]: item for item in items if item["status"] == "active"}

    def owners(name: str, part_number: str) -> dict[str | None, int]:
        tenant_id = by_name[name].tenant_id
        return {
            item["ownerTenantId"]: item["totalLicenses"]
            for item in state.directory_subscriptions(tenant_id)
            if item["skuPartNumber"] == part_number
        }

    partner = state.partner.tenant_id
    northwind = owners("Northwind Traders", "SPB")
    assert northwind.pop(partner) == 30
    assert [count for owner, count in northwind.items() if owner is not None] == [10]
    assert owners("Tailspin Logistics Ltd", "VISIOCLIENT") == {None: 3}
    assert partner_center("Northwind Traders")["Power BI Pro"]["scheduledNextTermInstructions"]
    fabrikam = partner_center("Fabrikam Dental Group")
    assert fabrikam["Microsoft 365 Business Standard"]["quantity"] == 18
    assert fabrikam["Microsoft Copilot for Microsoft 365"]["refundOptions"]
    assert partner_center("Tailspin Logistics Ltd")["Microsoft 365 E3"]["termDuration"] == "P3Y"
    assert not partner_center("Bluebird Veterinary Clinics")[
        "Microsoft Defender for Office 365 (Plan 1)"
    ]["autoRenewEnabled"]
    assert (
        partner_center("Harborview Marine Supply")["Exchange Online (Plan 1)"]["termDuration"]
        == "P1M"
    )
    maple = partner_center("Maple Street Bakery")
    assert "productType" not in maple["Microsoft 365 Business Basic"]
    assert maple["Microsoft Teams Essentials"]["isTrial"]
    assert partner_center("Litware Architects")  # GDAP expired: Partner Center still sells


def test_scale_subscriptions_are_deterministic_and_varied():
    first, second = (SimulatorState(load_scenario("scale")) for _ in range(2))
    customers = [c for c in first.customers.values() if c.has_commerce_relationship()][:600]

    shapes = set()
    for customer in customers:
        items = first.partner_center_subscriptions(customer)
        assert items == second.partner_center_subscriptions(second.customers[customer.tenant_id])
        shapes |= {
            (item["termDuration"], item["billingCycle"], item["isTrial"], "productType" in item)
            for item in items
        }
    assert shapes >= {
        ("P1Y", "monthly", False, True),
        ("P1Y", "annual", False, True),
        ("P1M", "monthly", False, True),
        ("P1M", "none", True, True),
        ("P1Y", "monthly", False, False),
    }
    assert any(
        item["termDuration"] == "P3Y"
        for c in customers
        for item in first.partner_center_subscriptions(c)
    )
    elsewhere = {
        item["ownerTenantId"] != first.partner.tenant_id
        for c in customers
        for item in first.directory_subscriptions(c.tenant_id)
        if item["skuPartNumber"] not in ("FLOW_FREE", "POWER_BI_STANDARD", "TEAMS_EXPLORATORY")
    }
    assert elsewhere == {True, False}


# --- a SKU bought, renewed and gone, and a clock that moves (the demo's replayed days) ------


def test_the_control_api_buys_a_sku_sets_its_term_and_takes_it_away(sim):
    bought = {"part_number": "POWER_BI_PRO", "enabled": 4, "consumed": 1}
    sim.control.add_sku(SHAPES, {**bought, "subscriptions": [{"term_ends_on": "2026-01-31"}]})

    power_bi = sold(sim, SHAPES)["Power BI Pro", "active"]
    assert (power_bi["quantity"], day(power_bi["effectiveStartDate"])) == (4, date(2025, 2, 1))
    assert day(power_bi["commitmentEndDate"]) == date(2026, 1, 31)
    with pytest.raises(SimulatorControlError, match=r"400 .*has SKU POWER_BI_PRO already"):
        sim.control.add_sku(SHAPES, bought)

    sim.control.set_sku_units(SHAPES, "POWER_BI_PRO", subscriptions=[{"term_started_days_ago": 0}])
    renewed = sold(sim, SHAPES)["Power BI Pro", "active"]
    assert day(renewed["effectiveStartDate"]) == sim.state.started_at.date()

    sim.control.remove_sku(SHAPES, "POWER_BI_PRO")
    skus = graph_get(sim, SHAPES, "subscribedSkus").json()["value"]
    assert "POWER_BI_PRO" not in {sku["skuPartNumber"] for sku in skus}
    assert ("Power BI Pro", "active") not in sold(sim, SHAPES)
    with pytest.raises(SimulatorControlError, match="404"):
        sim.control.remove_sku(SHAPES, "POWER_BI_PRO")


def test_term_dates_hold_still_while_the_clock_is_set_back(sim):
    before = sold(sim, SHAPES)
    with replaying(sim.state.started_at.date() - timedelta(days=5)):
        replayed = sold(sim, SHAPES)

    dates = ("effectiveStartDate", "commitmentEndDate", "creationDate")
    assert {key: [item[d] for d in dates] for key, item in replayed.items()} == {
        key: [item[d] for d in dates] for key, item in before.items()
    }
