"""The hostile answers, seen from `requests` exactly as the pipeline would meet them."""

from __future__ import annotations

import json

import pytest
import requests

from sync365_pipeline.simulator.scenario import HOSTILE_TEXT
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CLIENT_SECRET,
    UNIFORM_CUSTOMERS,
    UNIFORM_PARTNER,
    UNIFORM_SEED_REFRESH_TOKEN,
    uniform_scenario,
)
from sync365_pipeline_tests.simulator.helpers import (
    GRAPH_SCOPE,
    PARTNER_CENTER_SCOPE,
    bearer,
    https_session,
    redeem,
)

BROKEN = UNIFORM_CUSTOMERS[0]


def subscribed_skus(sim, tenant: str = BROKEN, **kwargs) -> requests.Response:
    token = redeem(sim, tenant, GRAPH_SCOPE)["access_token"]
    return https_session(sim).get(f"{sim.url}/v1.0/subscribedSkus", headers=bearer(token), **kwargs)


def test_redirect_points_at_another_origin_and_is_only_followed_if_the_client_does(
    simulator_factory,
):
    elsewhere = "https://127.0.0.1:9/collect"
    sim = simulator_factory(
        uniform_scenario(faults={BROKEN: [{"type": "redirect", "location": elsewhere, "times": 1}]})
    )
    response = subscribed_skus(sim, allow_redirects=False)
    assert response.status_code == 307
    assert response.headers["Location"] == elsewhere
    assert subscribed_skus(sim).status_code == 200  # `times: 1` used it up


def test_reset_drops_the_connection_before_any_answer(simulator_factory):
    sim = simulator_factory(uniform_scenario(faults={BROKEN: [{"type": "reset", "times": 1}]}))
    with pytest.raises(requests.ConnectionError):
        subscribed_skus(sim)
    assert subscribed_skus(sim).status_code == 200


def test_trickle_sends_the_real_body_slower_than_any_read_timeout(simulator_factory):
    trickle = {"type": "trickle", "interval_ms": 300, "chunk_bytes": 16, "times": 1}
    sim = simulator_factory(uniform_scenario(faults={BROKEN: [trickle]}))
    # A read timeout in the middle of the body surfaces from urllib3 as a ConnectionError.
    with pytest.raises(requests.ConnectionError):
        subscribed_skus(sim, timeout=(5, 0.05))
    trickle_again = {**trickle, "interval_ms": 1, "chunk_bytes": 64}
    sim.control.set_fault(BROKEN, trickle_again)
    slow, normal = subscribed_skus(sim), subscribed_skus(sim)
    assert slow.json()["value"] == normal.json()["value"]


def test_deep_json_is_valid_json_that_exhausts_a_recursive_parser(simulator_factory):
    sim = simulator_factory(uniform_scenario(faults={BROKEN: [{"type": "deep_json"}]}))
    response = subscribed_skus(sim)
    assert response.status_code == 200
    assert response.text.startswith("[[[[")
    assert response.text.endswith("]]]]")
    with pytest.raises(RecursionError):
        json.loads(response.text)


def test_echo_sends_the_client_secret_and_refresh_token_back_in_the_error(simulator_factory):
    sim = simulator_factory(uniform_scenario(faults={UNIFORM_PARTNER: [{"type": "echo"}]}))
    result = redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)
    assert "access_token" not in result
    assert UNIFORM_CLIENT_SECRET in result["error_description"]
    assert UNIFORM_SEED_REFRESH_TOKEN in result["error_description"]


@pytest.mark.parametrize("body", [[], "token", {"access_token": 42, "expires_in": "soon"}])
def test_odd_body_replaces_the_token_answer(simulator_factory, body):
    sim = simulator_factory(
        uniform_scenario(faults={BROKEN: [{"type": "odd_body", "body": body, "times": 1}]})
    )
    session = https_session(sim)
    response = session.post(
        f"{sim.url}/{BROKEN}/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "refresh_token": UNIFORM_SEED_REFRESH_TOKEN},
    )
    assert response.status_code == 200
    assert response.json() == body


def test_bad_record_sits_between_the_good_ones(simulator_factory):
    record = {"skuId": "not-a-guid", "prepaidUnits": "lots"}
    sim = simulator_factory(
        uniform_scenario(faults={BROKEN: [{"type": "bad_record", "record": record}]})
    )
    items = subscribed_skus(sim).json()["value"]
    assert record in items
    assert len(items) == 4  # the tenant's three real SKUs are still there


def test_hostile_text_replaces_names_with_escapes_and_a_lone_surrogate(simulator_factory):
    sim = simulator_factory(uniform_scenario(faults={UNIFORM_PARTNER: [{"type": "hostile_text"}]}))
    token = redeem(sim, UNIFORM_PARTNER, PARTNER_CENTER_SCOPE)["access_token"]
    response = https_session(sim).get(f"{sim.url}/v1/customers", headers=bearer(token))
    names = {item["companyProfile"]["companyName"] for item in response.json()["items"]}
    assert names == {HOSTILE_TEXT}
    assert "\x1b[2J" in HOSTILE_TEXT
    assert "\ud800" in HOSTILE_TEXT


def test_huge_numbers_set_every_unit_count_to_int64_max(simulator_factory):
    sim = simulator_factory(uniform_scenario(faults={BROKEN: [{"type": "huge_numbers"}]}))
    for item in subscribed_skus(sim).json()["value"]:
        assert item["consumedUnits"] == 2**63 - 1
        assert item["prepaidUnits"]["enabled"] == 2**63 - 1
