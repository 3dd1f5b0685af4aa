"""`GraphClient.licensed_users` and `GraphClient.users_delta` against the simulator: every page,
the sign-in premium rule, a second day's delta, an expired delta token, and links kept on Graph.

The large-tenant test prints what a full read and a next-day delta cost (requests, bytes); it
asserts counts only.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import requests

from sync365_pipeline.microsoft import (
    DeltaTokenExpired,
    MicrosoftCloud,
    SignInActivityUnavailable,
    TenantAccessError,
)
from sync365_pipeline_tests.microsoft.test_against_simulator import cloud_for, settings_for
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CUSTOMERS,
    USERS_TENANT,
    uniform_scenario,
    users_customer,
)


def graph_requests(sim: Any, route: str) -> int:
    return sim.control.request_counts()["by_route"].get(route, 0)


def licensed_ids(sim: Any, tenant_id: str) -> set[str]:
    return {
        u["id"] for u in sim.control.expected_users(tenant_id)["users"] if u["assignedLicenses"]
    }


def test_licensed_users_reads_every_page_of_a_large_tenant(simulator_factory, tmp_path):
    sim = simulator_factory(
        uniform_scenario(customers=[users_customer({"SPE_E3": (1300, 1200), "SPB": (50, 40)})])
    )
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        sim.control.reset_request_counts()
        users = cloud.graph.licensed_users(USERS_TENANT, sign_in_activity=False)
        assert graph_requests(sim, "graph.users") == 2  # pages of 999
        with_sign_ins = cloud.graph.licensed_users(USERS_TENANT, sign_in_activity=True)
        assert graph_requests(sim, "graph.users") == 2 + 3  # pages of 500
    assert len(users) == len({u["id"] for u in users}) == 1200
    assert {u["id"] for u in users} == licensed_ids(sim, USERS_TENANT)
    holders = Counter(sku["skuId"] for user in users for sku in user["assignedLicenses"])
    skus = sim.control.expected_subscribed_skus(USERS_TENANT)
    assert holders == {sku["skuId"]: sku["consumedUnits"] for sku in skus}
    assert all("signInActivity" not in user for user in users)
    assert {u["id"] for u in with_sign_ins} == {u["id"] for u in users}
    assert any(user.get("signInActivity") for user in with_sign_ins)


def test_a_tenant_without_entra_id_p1_has_users_but_no_sign_ins(simulator_factory, tmp_path):
    sim = simulator_factory(
        uniform_scenario(customers=[users_customer({"O365_BUSINESS_PREMIUM": (12, 12)})])
    )
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        with pytest.raises(SignInActivityUnavailable) as caught:
            cloud.graph.licensed_users(USERS_TENANT, sign_in_activity=True)
        users = cloud.graph.licensed_users(USERS_TENANT, sign_in_activity=False)
    assert caught.value.code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    assert not isinstance(caught.value, TenantAccessError)  # the tenant is readable
    assert "Entra ID P1" in str(caught.value)
    assert len(users) == 12


def test_delta_on_the_second_day_fetches_only_the_changes(simulator_factory, tmp_path):
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(uniform_scenario(settings={"page_size_users_delta": 4}))
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        first = cloud.graph.users_delta(tenant, None)
        assert first.removed == []
        assert {u["id"] for u in first.changed} == {
            u["id"] for u in sim.control.expected_users(tenant)["users"]
        }
        changes = sim.control.change_users(tenant, added=1, removed=1, changed=1)
        sim.control.reset_request_counts()
        second = cloud.graph.users_delta(tenant, first.delta_link)
        assert graph_requests(sim, "graph.usersDelta") == 1
        third = cloud.graph.users_delta(tenant, second.delta_link)
    assert second.removed == changes["removed"]
    assert {u["id"] for u in second.changed} == {*changes["added"], *changes["changed"]}
    assert second.delta_link.startswith(f"{sim.url}/v1.0/users/delta?$deltatoken=")
    assert (third.changed, third.removed) == ([], [])


@pytest.mark.parametrize("answer", ["sync_state_not_found", "gone"])
def test_an_expired_delta_link_is_a_typed_error_and_a_full_read_follows(
    simulator_factory, tmp_path, answer
):
    tenant = UNIFORM_CUSTOMERS[0]
    sim = simulator_factory(uniform_scenario(settings={"delta_expired_answer": answer}))
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        first = cloud.graph.users_delta(tenant, None)
        sim.control.update_settings(delta_token_lifetime_s=0)
        with pytest.raises(DeltaTokenExpired) as caught:
            cloud.graph.users_delta(tenant, first.delta_link)
        again = cloud.graph.users_delta(tenant, None)
    assert caught.value.tenant_id == tenant
    assert "$deltatoken" not in str(caught.value)  # the message names the path, not the token
    assert {u["id"] for u in again.changed} == {u["id"] for u in first.changed}


def test_a_delta_link_off_the_graph_origin_is_never_called(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        first = cloud.graph.users_delta(UNIFORM_CUSTOMERS[0], None)
        sim.control.reset_request_counts()
        elsewhere = first.delta_link.replace("https://127.0.0.1", "https://localhost")
        with pytest.raises(ValueError, match="delta link must be on"):
            cloud.graph.users_delta(UNIFORM_CUSTOMERS[0], elsewhere)
    assert sim.control.request_counts()["total"] == 0


def test_cost_of_a_full_read_and_a_next_day_delta_for_10000_users(simulator_factory, tmp_path):
    """Measured, printed (run with -s); asserted: the users each read returns, and that the next
    day's delta needs a small fraction of the first day's requests and bytes."""
    sim = simulator_factory(
        uniform_scenario(customers=[users_customer({"SPE_E3": (10_200, 10_000)})])
    )
    with cloud_for(settings_for(sim, tmp_path)) as cloud:
        cloud.tokens.graph_token(USERS_TENANT)
        received = _count_bytes(cloud)
        costs: dict[str, tuple[int, int]] = {}

        def measured(name: str, read: Any) -> Any:
            sim.control.reset_request_counts()
            received.clear()
            result = read()
            costs[name] = (sim.control.request_counts()["total"], sum(received))
            return result

        full = measured(
            "full /users, licensed, no sign-ins",
            lambda: cloud.graph.licensed_users(USERS_TENANT, sign_in_activity=False),
        )
        with_sign_ins = measured(
            "full /users, licensed, with signInActivity",
            lambda: cloud.graph.licensed_users(USERS_TENANT, sign_in_activity=True),
        )
        day_one = measured(
            "delta, first round (every user)", lambda: cloud.graph.users_delta(USERS_TENANT, None)
        )
        latest = measured(
            "delta link from now ($deltatoken=latest)",
            lambda: cloud.graph.latest_users_delta_link(USERS_TENANT),
        )
        users = len(sim.control.expected_users(USERS_TENANT)["users"])
        sim.control.change_users(USERS_TENANT, added=30, removed=30, changed=40)  # ~1 %
        day_two = measured(
            "delta, next day (~1 % changed)",
            lambda: cloud.graph.users_delta(USERS_TENANT, day_one.delta_link),
        )
        from_latest = measured(
            "delta, next day from the latest link",
            lambda: cloud.graph.users_delta(USERS_TENANT, latest),
        )
    for name, (count, size) in costs.items():
        print(f"{name:45} {count:4d} requests {size / 1e6:8.2f} MB")
    assert len(full) == len(with_sign_ins) == 10_000
    assert len(day_one.changed) == users
    assert (len(day_two.changed), len(day_two.removed)) == (70, 30)
    assert from_latest.changed == day_two.changed
    assert from_latest.removed == day_two.removed
    assert costs["delta link from now ($deltatoken=latest)"][0] == 1
    first_day, next_day = (
        costs["delta, first round (every user)"],
        costs["delta, next day (~1 % changed)"],
    )
    assert next_day[0] * 20 <= first_day[0]
    assert next_day[1] * 20 <= first_day[1]


def _count_bytes(cloud: MicrosoftCloud) -> list[int]:
    """The body sizes of the Graph answers the cloud's session receives, as they arrive."""
    sizes: list[int] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        sizes.append(len(response.content))

    cloud.session.hooks["response"].append(hook)
    return sizes
