"""The clients' issue-11 calls against the simulator: Partner Center's subscriptions through the
partner's rate limiter, Graph's directory subscriptions with the customer's token, every page,
and their failures as typed errors."""

from __future__ import annotations

import pytest

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.microsoft import (
    AccessRemoved,
    NoCommerceRelationship,
    Throttled,
    tenant_outcome,
)
from sync365_pipeline_tests.conftest import SimulatorFactory
from sync365_pipeline_tests.microsoft.test_against_simulator import cloud_for, settings_for
from sync365_pipeline_tests.scenarios import uniform_scenario
from sync365_pipeline_tests.simulator.test_subscriptions import (
    ADVISOR,
    GDAP_EXPIRED,
    GDAP_ONLY,
    ISSUE_11_CUSTOMERS,
    SHAPES,
)

SUBSCRIPTIONS_ROUTE = "partner_center.subscriptions"
DIRECTORY_ROUTE = "graph.directorySubscriptions"


def test_every_page_of_both_lists_unchanged(simulator_factory: SimulatorFactory, tmp_path):
    sim = simulator_factory(
        uniform_scenario(
            customers=ISSUE_11_CUSTOMERS,
            settings={"page_size_subscriptions": 3, "page_size_graph": 5},
        )
    )
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        sold = cloud.partner_center.subscriptions(SHAPES)
        in_tenant = cloud.graph.directory_subscriptions(SHAPES)

    expected = sim.control.expected_subscriptions(SHAPES)
    assert sold == expected["partner_center"]
    assert in_tenant == expected["graph"]
    assert (len(sold), len(in_tenant)) == (8, 10)
    pages = sim.control.request_counts()["by_route"]
    assert (pages[SUBSCRIPTIONS_ROUTE], pages[DIRECTORY_ROUTE]) == (3, 2)


def test_partner_center_subscriptions_wait_for_the_rate_limiter(
    simulator_factory: SimulatorFactory, tmp_path, monkeypatch
):
    sim = simulator_factory(
        uniform_scenario(customers=ISSUE_11_CUSTOMERS, settings={"page_size_subscriptions": 4})
    )
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        limiter = cloud.partner_center.limiter
        assert limiter is not None
        acquired: list[None] = []
        original = limiter.acquire
        monkeypatch.setattr(limiter, "acquire", lambda: acquired.append(None) or original())
        cloud.partner_center.subscriptions(SHAPES)
        cloud.partner_center.subscriptions(GDAP_EXPIRED)
    assert len(acquired) == sim.control.request_counts()["by_route"][SUBSCRIPTIONS_ROUTE] == 3


def test_lost_gdap_keeps_the_partner_side_and_loses_the_tenant_side(
    simulator_factory: SimulatorFactory, tmp_path
):
    sim = simulator_factory(uniform_scenario(customers=ISSUE_11_CUSTOMERS))
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        sold = cloud.partner_center.subscriptions(GDAP_EXPIRED)
        with pytest.raises(AccessRemoved) as refused:
            cloud.graph.directory_subscriptions(GDAP_EXPIRED)
    assert [item["quantity"] for item in sold] == [12]
    assert (refused.value.code, refused.value.tenant_id) == (
        "Authorization_RequestDenied",
        GDAP_EXPIRED,
    )


@pytest.mark.parametrize("tenant_id", [GDAP_ONLY, ADVISOR])
def test_no_commerce_relationship_is_its_own_typed_error(
    simulator_factory: SimulatorFactory, tmp_path, tenant_id
):
    sim = simulator_factory(uniform_scenario(customers=ISSUE_11_CUSTOMERS))
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        with pytest.raises(NoCommerceRelationship) as refused:
            cloud.partner_center.subscriptions(tenant_id)
        assert cloud.graph.directory_subscriptions(tenant_id)  # Graph still serves the tenant
    error = refused.value
    assert (error.code, error.http_status, error.tenant_id) == ("20002", 403, tenant_id)
    assert tenant_outcome(error)[0] is TenantStatus.ACCESS_REMOVED
    assert sim.control.request_counts()["by_route"][SUBSCRIPTIONS_ROUTE] == 1  # not retried


def test_throttling_is_retried_then_throttled(simulator_factory: SimulatorFactory, tmp_path):
    throttle = {"type": "throttle", "retry_after": 0, "service": "partner_center"}
    sim = simulator_factory(uniform_scenario(customers=ISSUE_11_CUSTOMERS))
    sim.control.set_fault(SHAPES, {**throttle, "times": 1})
    sim.control.set_fault(GDAP_EXPIRED, throttle)
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        assert len(cloud.partner_center.subscriptions(SHAPES)) == 8
        with pytest.raises(Throttled):
            cloud.partner_center.subscriptions(GDAP_EXPIRED)
    statuses = sim.control.request_counts()["by_status"]
    assert statuses["429"] == 1 + 3  # FAST_RETRY: three attempts
