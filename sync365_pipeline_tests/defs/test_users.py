"""Who holds each licence in the bulk sync (issue 12): every licensed user lands exactly, the
licences add up to the SKUs' consumed units, a tenant without Entra ID P1 lands without sign-ins
and is not asked for them again, the setting `users` stops the calls, and the views list the
right people. The simulator's `expected_users` is the truth."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync365_pipeline_tests.scenarios import (
    UNIFORM_CUSTOMERS,
    USERS_TENANT,
    uniform_scenario,
    users_customer,
)

from .conftest import Pipeline, PipelineFactory

NO_P1 = "dddddddd-0000-4000-8000-000000000002"
NEVER = "0001-01-01T00:00:00Z"
USERS_STATUS = (
    "SELECT status, error_code, message FROM dataset_status "
    "WHERE dataset = 'user_licenses' AND tenant_id = ? ORDER BY checked_at"
)


def graph_users_requests(pipeline: Pipeline) -> int:
    return pipeline.sim.control.request_counts()["by_route"].get("graph.users", 0)


def expected_licences(pipeline: Pipeline, tenant_id: str) -> set[tuple[str, str, str, bool]]:
    """(user id, SKU id, principal name, enabled) of every licence Graph holds, an assignment
    state's SKU (a failed group assignment) included."""
    return {
        (user["id"], sku_id, user["userPrincipalName"], user["accountEnabled"])
        for user in pipeline.sim.control.expected_users(tenant_id)["users"]
        for sku_id in {entry["skuId"] for entry in user["assignedLicenses"]}
        | {state["skuId"] for state in user["licenseAssignmentStates"]}
    }


def last_sign_in(user: dict[str, Any]) -> datetime | None:
    activity = user.get("signInActivity") or {}
    times = [
        datetime.fromisoformat(text)
        for key in ("lastSignInDateTime", "lastNonInteractiveSignInDateTime")
        if (text := activity.get(key)) and text != NEVER
    ]
    return max(times, default=None)


def test_every_licensed_user_of_a_multi_page_tenant_lands_exactly(
    pipeline_factory: PipelineFactory,
) -> None:
    """1,240 licensed users: three pages of 500 with sign-in activity. Each SKU's consumed units
    are the users holding it, a failed group assignment (state Error) consuming nothing."""
    pipeline = pipeline_factory(
        uniform_scenario(customers=[users_customer({"SPE_E3": (1200, 1200), "SPB": (50, 40)})])
    )
    outcome = pipeline.sync()
    assert outcome.success, outcome.failure

    landed = pipeline.query(
        "SELECT user_id, sku_id, user_principal_name, account_enabled FROM user_licenses "
        "WHERE tenant_id = ?",
        [USERS_TENANT],
    )
    assert len(landed) == len(set(landed))
    assert set(landed) == expected_licences(pipeline, USERS_TENANT)
    assert len({row[0] for row in landed}) > 999, "more users than one page holds"
    holders = dict(
        pipeline.query(
            "SELECT sku_id, count(*) FROM user_licenses WHERE tenant_id = ? "
            "AND assignment_state IS DISTINCT FROM 'Error' GROUP BY sku_id",
            [USERS_TENANT],
        )
    )
    consumed = dict(
        pipeline.query(
            "SELECT sku_id, consumed_units FROM license_facts WHERE tenant_id = ?", [USERS_TENANT]
        )
    )
    assert holders == consumed
    expected_sign_ins = {
        user["id"]: last_sign_in(user)
        for user in pipeline.sim.control.expected_users(USERS_TENANT)["users"]
        if user["assignedLicenses"]
    }
    sign_ins = dict(
        pipeline.query(
            "SELECT DISTINCT user_id, last_sign_in FROM user_licenses "
            "WHERE tenant_id = ? AND assignment_state IS DISTINCT FROM 'Error'",
            [USERS_TENANT],
        )
    )
    assert sign_ins == {
        user_id: None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)
        for user_id, moment in expected_sign_ins.items()
    }
    assert any(sign_ins.values()), "a tenant with Entra ID P1 has sign-ins"
    groups = pipeline.query(
        "SELECT count(*) FROM user_licenses WHERE tenant_id = ? AND assigned_by_group IS NOT NULL",
        [USERS_TENANT],
    )
    assert groups[0][0] > 0, "licences assigned through a group name it"
    assert pipeline.query(USERS_STATUS, [USERS_TENANT]) == [("ok", None, "")]
    assert graph_users_requests(pipeline) == 3 + len(UNIFORM_CUSTOMERS), (
        "three pages for the large tenant, one for each small one"
    )


def test_a_tenant_without_p1_lands_without_sign_ins_and_is_not_asked_again(
    pipeline_factory: PipelineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Also the privacy test: no principal name in the info-level log (the pipeline's loggers
    and Dagster's event log of both runs)."""
    caplog.set_level(logging.INFO)
    pipeline = pipeline_factory(
        uniform_scenario(
            customers=[users_customer({"O365_BUSINESS_PREMIUM": (10, 10)}, tenant_id=NO_P1)]
        )
    )
    pipeline.sim.control.reset_request_counts()
    first = pipeline.sync()
    assert first.success, first.failure
    first_requests = graph_users_requests(pipeline)

    assert pipeline.query(
        "SELECT count(DISTINCT user_id), count(last_sign_in) FROM user_licenses "
        "WHERE tenant_id = ?",
        [NO_P1],
    ) == [(10, 0)]
    ((status, code, message),) = pipeline.query(USERS_STATUS, [NO_P1])
    assert (status, code) == ("ok", "SignInActivityUnavailable")
    assert "Entra ID P1" in message
    assert first_requests == 2 + len(UNIFORM_CUSTOMERS), "refused, then read without sign-ins"

    pipeline.sim.control.reset_request_counts()
    second = pipeline.sync()
    assert second.success, second.failure
    assert graph_users_requests(pipeline) == 1 + len(UNIFORM_CUSTOMERS), "not asked again"
    assert [row[:2] for row in pipeline.query(USERS_STATUS, [NO_P1])] == [
        ("ok", "SignInActivityUnavailable"),
        ("ok", "SignInActivityNotAsked"),
    ]
    events = [
        entry.user_message
        for run in pipeline.instance.get_runs()
        for entry in pipeline.instance.all_logs(run.run_id)
    ]
    logged = "\n".join([*(record.getMessage() for record in caplog.records), *events])
    assert "Fetching every active tenant" in logged, "Dagster's event log is read"
    assert any(record.name.startswith("sync365_pipeline") for record in caplog.records)
    names = [row[0] for row in pipeline.query("SELECT user_principal_name FROM user_licenses")]
    assert names
    assert not [name for name in names if name in logged]


def test_users_off_sends_no_users_request(
    pipeline_factory: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = pipeline_factory(uniform_scenario())
    monkeypatch.setenv("SYNC365_USERS", "false")
    outcome = pipeline.sync()

    assert outcome.success, outcome.failure
    assert graph_users_requests(pipeline) == 0
    assert pipeline.sim.control.request_counts()["by_route"].get("graph.usersDelta", 0) == 0
    assert pipeline.query("SELECT count(*) FROM user_licenses") == [(0,)]
    assert pipeline.query("SELECT count(*) FROM user_delta_links") == [(0,)]
    assert pipeline.query(
        "SELECT count(*) FROM dataset_status WHERE dataset = 'user_licenses'"
    ) == [(0,)]
    assert pipeline.query("SELECT count(*) FROM license_facts")[0][0] > 0, "the SKUs still land"


def test_the_views_list_the_inactive_users_and_count_each_user_once_on_the_demo(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory("demo")
    outcome = pipeline.sync()
    assert outcome.success, outcome.failure
    read = pipeline.query("SELECT DISTINCT tenant_id FROM current_user_licenses")
    assert len(read) > 3
    paid = {
        (tenant, sku)
        for tenant, sku in pipeline.query(
            "SELECT tenant_id, sku_id FROM license_classes WHERE sku_class = 'paid'"
        )
    }
    cutoff = datetime.now(UTC) - timedelta(days=30)
    expected_inactive = set()
    expected_counts: Counter[tuple[str, str | None]] = Counter()
    for (tenant,) in read:
        expected = pipeline.sim.control.expected_users(tenant)
        for user in expected["users"]:
            held = {entry["skuId"] for entry in user["assignedLicenses"]}
            expected_counts.update((tenant, sku) for sku in held)
            expected_counts.update([(tenant, None)] if held else [])
            moment = last_sign_in(user) if expected["premium"] else None  # unknown without P1
            idle = not user["accountEnabled"] or (moment is not None and moment <= cutoff)
            if idle and any((tenant, sku) in paid for sku in held):
                expected_inactive.add((tenant, user["id"]))

    inactive = set(pipeline.query("SELECT tenant_id, user_id FROM inactive_licensed_users"))
    assert inactive == expected_inactive
    assert len(inactive) > 0
    reasons = dict(
        pipeline.query("SELECT reason, count(*) FROM inactive_licensed_users GROUP BY reason")
    )
    assert set(reasons) == {"disabled", "no_recent_sign_in"}
    counts = {
        (tenant, sku): users
        for tenant, sku, users in pipeline.query(
            "SELECT tenant_id, sku_id, licensed_users FROM licensed_user_counts"
        )
    }
    assert counts == dict(expected_counts)
