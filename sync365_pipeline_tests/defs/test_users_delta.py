"""The users delta query in the bulk sync (issue 12): the first sync reads every user and keeps a
delta link per tenant; the next day's sync fetches only the changes (an added, a changed and a
removed user) and its slice equals what Graph holds; a link Graph no longer knows, or one off the
Graph origin, means a full read in the same sync, still exact; and a full read comes when the
last one is `USERS_FULL_READ_EVERY_DAYS` old. The simulator's `expected_users` is the truth."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import duckdb
import pytest

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.licensing import tenants
from sync365_pipeline.licensing.tenants import (
    USERS_DELTA_UNUSABLE,
    USERS_FULL_READ_EVERY_DAYS,
)
from sync365_pipeline.warehouse.columns import USER_LICENSE_COLUMNS
from sync365_pipeline_tests.scenarios import (
    UNIFORM_CUSTOMERS,
    USERS_TENANT,
    uniform_scenario,
    users_customer,
)

from .conftest import Pipeline, PipelineFactory
from .test_users import NO_P1, USERS_STATUS, last_sign_in

TENANTS = 1 + len(UNIFORM_CUSTOMERS)  # every tenant of the scenario has users
# Columns the delta query does not keep current (sign-ins) or that say where and when; the others
# (assignment states included: untracked, yet no change to them alone is made here) must equal
# Graph's users after every sync.
NOT_COMPARED = frozenset(
    {"snapshot_date", "partner_tenant_id", "tenant_id", "synced_at", "last_sign_in"}
)
TRACKED = tuple(column for column in USER_LICENSE_COLUMNS if column not in NOT_COMPARED)
CURRENT_SLICE = f"SELECT {', '.join(TRACKED)} FROM current_user_licenses WHERE tenant_id = ?"


def users_requests(pipeline: Pipeline) -> tuple[int, int]:
    """(full `/users` pages, `/users/delta` requests) since the counts were reset."""
    by_route = pipeline.sim.control.request_counts()["by_route"]
    return by_route.get("graph.users", 0), by_route.get("graph.usersDelta", 0)


def expected_slice(pipeline: Pipeline, tenant_id: str) -> set[tuple[Any, ...]]:
    """What the slice must hold for the tracked columns: one row per licensed user and SKU
    (an assignment state's SKU included), as Graph holds them now."""
    rows = set()
    for user in pipeline.sim.control.expected_users(tenant_id)["users"]:
        if not user["assignedLicenses"]:
            continue
        for sku_id in {entry["skuId"] for entry in user["assignedLicenses"]} | {
            state["skuId"] for state in user["licenseAssignmentStates"]
        }:
            properties = {
                "user_id": user["id"],
                "sku_id": sku_id,
                "user_principal_name": user["userPrincipalName"],
                "display_name": user["displayName"],
                "account_enabled": user["accountEnabled"],
                "user_type": user["userType"],
                "department": user["department"],
                "office_location": user.get("officeLocation"),
                "city": user["city"],
                **expected_assignment(user, sku_id),
            }
            rows.add(tuple(properties[column] for column in TRACKED))
    return rows


def expected_assignment(user: dict[str, Any], sku_id: str) -> dict[str, str | None]:
    """The SKU's assignment columns from the user's states: a group that assigns it, `Active`
    if any state is, the first real error (a success says None or "None")."""
    states = [state for state in user["licenseAssignmentStates"] if state["skuId"] == sku_id]
    groups = [state["assignedByGroup"] for state in states if state["assignedByGroup"]]
    kinds = [state["state"] for state in states]
    errors = [state["error"] for state in states if state["error"] not in (None, "None")]
    return {
        "assigned_by_group": groups[0] if groups else None,
        "assignment_state": "Active" if "Active" in kinds else (kinds[0] if kinds else None),
        "assignment_error": errors[0] if errors else None,
    }


def sign_ins(pipeline: Pipeline, tenant_id: str) -> dict[str, datetime | None]:
    return dict(
        pipeline.query(
            "SELECT DISTINCT user_id, last_sign_in FROM current_user_licenses WHERE tenant_id = ?",
            [tenant_id],
        )
    )


def held_skus(pipeline: Pipeline) -> dict[str, set[str]]:
    """{user id: the SKUs of its rows} in the users tenant's current slice."""
    held: dict[str, set[str]] = {}
    for user_id, sku_id in pipeline.query(
        "SELECT user_id, sku_id FROM current_user_licenses WHERE tenant_id = ?", [USERS_TENANT]
    ):
        held.setdefault(user_id, set()).add(sku_id)
    return held


def age_warehouse(pipeline: Pipeline, days: int, *, full_read_days: int | None = None) -> None:
    """Make the warehouse's users slices (and their links' full reads) `days` older, as if
    the last sync had run that many days ago."""
    with duckdb.connect(str(pipeline.warehouse.path)) as con:
        for table in ("user_licenses", "dataset_snapshots"):
            con.execute(
                f"UPDATE {table} SET snapshot_date = snapshot_date - ?::INTEGER",
                [days],
            )
        con.execute(
            "UPDATE user_delta_links SET full_read_at = full_read_at - to_days(?::INTEGER)",
            [full_read_days if full_read_days is not None else days],
        )


def synced(pipeline: Pipeline) -> tuple[int, int]:
    """Sync once from fresh request counts; the users requests it sent."""
    pipeline.sim.control.reset_request_counts()
    outcome = pipeline.sync()
    assert outcome.success, outcome.failure
    return users_requests(pipeline)


@pytest.fixture
def first_day(pipeline_factory: PipelineFactory, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """A tenant of 40 licensed users (some holding both its SKUs), synced once: every user read,
    a delta link kept; the
    small tenants of these tests go by delta (`USERS_DELTA_ABOVE` lowered: by default one page
    of users is read in full every day)."""
    monkeypatch.setattr(tenants, "USERS_DELTA_ABOVE", 0)
    pipeline = pipeline_factory(
        uniform_scenario(customers=[users_customer({"SPE_E3": (45, 40), "SPB": (30, 20)})])
    )
    assert synced(pipeline) == (TENANTS, TENANTS), "one page each, and one latest delta link"
    assert pipeline.query(
        "SELECT count(*), count(DISTINCT tenant_id) FROM user_delta_links "
        "WHERE delta_link LIKE ? AND obtained_at = full_read_at",
        [f"{pipeline.sim.url}/v1.0/users/delta?$deltatoken=%"],
    ) == [(TENANTS, TENANTS)]
    return pipeline


def test_the_next_day_fetches_only_the_changes_and_lands_exactly(first_day: Pipeline) -> None:
    pipeline = first_day
    assert set(pipeline.query(CURRENT_SLICE, [USERS_TENANT])) == expected_slice(
        pipeline, USERS_TENANT
    )
    assert pipeline.query(
        "SELECT count(*) FROM current_user_licenses WHERE tenant_id = ? "
        "AND assigned_by_group IS NOT NULL",
        [USERS_TENANT],
    )[0][0], "the comparison covers licences a group assigns"
    before = sign_ins(pipeline, USERS_TENANT)
    licensed = set(before)
    held_before = held_skus(pipeline)
    changes = pipeline.sim.control.change_users(
        USERS_TENANT, added=1, removed=1, changed=1, relicensed=3
    )
    # The tenant's random changes touch licensed users (else the test would show less).
    assert set(changes["removed"]) <= licensed
    assert set(changes["changed"]) <= licensed
    gained, lost_one, lost_all = changes["relicensed"]
    age_warehouse(pipeline, days=1)

    assert synced(pipeline) == (0, TENANTS), "no full read: one delta request per tenant"
    assert set(pipeline.query(CURRENT_SLICE, [USERS_TENANT])) == expected_slice(
        pipeline, USERS_TENANT
    )
    held_after = held_skus(pipeline)
    assert held_after[gained] > held_before[gained], "a SKU gained"
    assert set() < held_after[lost_one] < held_before[lost_one], "one of several SKUs lost"
    assert lost_all not in held_after, "every licence lost: no rows"
    after = sign_ins(pipeline, USERS_TENANT)
    (added,) = changes["added"]
    assert set(after) == licensed - {*changes["removed"], lost_all} | {added}
    assert after[added] is None, "a new user's sign-in is unknown until the next full read"
    assert {user: after[user] for user in licensed & set(after)} == {
        user: before[user] for user in licensed & set(after)
    }, "the changed and unchanged users keep the full read's sign-ins"
    assert any(before.values())
    ((status, code, message),) = pipeline.query(USERS_STATUS, [USERS_TENANT])[-1:]
    assert (status, code) == ("ok", None)
    named = {user for ids in changes.values() for user in ids}
    assert len(named) == 6
    assert f"delta query: {len(named)} users changed or removed" in message
    assert pipeline.query(
        "SELECT row_count FROM dataset_snapshots WHERE dataset = 'user_licenses' "
        "AND tenant_id = ? AND snapshot_date = current_date",
        [USERS_TENANT],
    ) == [(len(expected_slice(pipeline, USERS_TENANT)),)]
    assert pipeline.query(
        "SELECT count(DISTINCT snapshot_date) FROM user_licenses WHERE tenant_id = ?",
        [USERS_TENANT],
    ) == [(2,)], "yesterday's slice is kept as it was"
    assert pipeline.query(
        "SELECT count(*) FROM user_delta_links WHERE obtained_at > full_read_at"
    ) == [(TENANTS,)], "each link comes from today's delta round, after yesterday's full read"
    assert pipeline.query("SELECT count(*) FROM inactive_licensed_users")[0][0] > 0

    pipeline.sim.control.change_users(USERS_TENANT, changed=1)
    assert synced(pipeline) == (0, TENANTS), "the same day again: the delta from today's slice"
    assert set(pipeline.query(CURRENT_SLICE, [USERS_TENANT])) == expected_slice(
        pipeline, USERS_TENANT
    )


@pytest.mark.parametrize("link", ["expired", "foreign"])
def test_a_link_that_is_no_good_means_a_full_read_in_the_same_sync(
    first_day: Pipeline, link: str
) -> None:
    pipeline = first_day
    pipeline.sim.control.change_users(USERS_TENANT, added=2, removed=2, changed=2)
    age_warehouse(pipeline, days=1)
    if link == "expired":
        pipeline.sim.control.update_settings(delta_token_lifetime_s=0)
        delta_requests = 2 * TENANTS  # refused, then a latest link before the full read
    else:
        with duckdb.connect(str(pipeline.warehouse.path)) as con:
            con.execute(
                "UPDATE user_delta_links SET delta_link = replace(delta_link, ?, ?)",
                [pipeline.sim.url, "https://graph.example.invalid"],
            )
        delta_requests = TENANTS  # never sent off the Graph origin; a latest link each

    assert synced(pipeline) == (TENANTS, delta_requests)
    assert set(pipeline.query(CURRENT_SLICE, [USERS_TENANT])) == expected_slice(
        pipeline, USERS_TENANT
    )
    ((status, _, message),) = pipeline.query(USERS_STATUS, [USERS_TENANT])[-1:]
    assert status == "ok"
    assert USERS_DELTA_UNUSABLE in message
    assert "$deltatoken" not in message, "the status names the path, never the link"
    assert pipeline.query(
        "SELECT count(*) FROM user_delta_links WHERE delta_link LIKE ?", [f"{pipeline.sim.url}%"]
    ) == [(TENANTS,)], "a new link from the full read"


def test_a_full_read_comes_when_the_last_one_is_a_week_old(first_day: Pipeline) -> None:
    """The staleness rule: sign-ins (absent from delta) are read again on the day the last
    full read is `USERS_FULL_READ_EVERY_DAYS` old; the day before, the delta is enough."""
    pipeline = first_day
    age_warehouse(pipeline, days=1, full_read_days=USERS_FULL_READ_EVERY_DAYS - 1)
    assert synced(pipeline) == (0, TENANTS)

    age_warehouse(pipeline, days=1)
    assert synced(pipeline) == (TENANTS, TENANTS), "every user again, and a latest link"
    expected = {
        user["id"]: last_sign_in(user)
        for user in pipeline.sim.control.expected_users(USERS_TENANT)["users"]
        if user["assignedLicenses"]
    }
    assert sign_ins(pipeline, USERS_TENANT) == {
        user: None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)
        for user, moment in expected.items()
    }


def test_a_tenant_of_one_page_is_read_in_full_every_day_without_a_link(
    first_day: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default: one full page (1 request, fresh sign-ins) beats a delta round without them."""
    pipeline = first_day
    monkeypatch.setattr(tenants, "USERS_DELTA_ABOVE", tenants.MAX_SIGN_IN_PAGE)
    pipeline.sim.control.change_users(USERS_TENANT, added=1, removed=1, changed=1)
    age_warehouse(pipeline, days=1)

    assert synced(pipeline) == (TENANTS, 0), "a full read each, no delta, no link taken"
    assert set(pipeline.query(CURRENT_SLICE, [USERS_TENANT])) == expected_slice(
        pipeline, USERS_TENANT
    )
    assert pipeline.query("SELECT count(*) FROM user_delta_links") == [(0,)], "links dropped"


def test_a_tenant_refused_sign_ins_is_asked_again_with_its_weekly_full_read(
    pipeline_factory: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant without Entra ID P1 (read by delta) buys it: its sign-ins come with the next full
    read, even when the refusal and that read are 7 calendar days but under 7 x 24 hours apart
    (the refusal is remembered by the same UTC days as the full read, else it would be asked
    a day later and the full read for it 7 days after that)."""
    monkeypatch.setattr(tenants, "USERS_DELTA_ABOVE", 0)
    pipeline = pipeline_factory(
        uniform_scenario(
            customers=[users_customer({"O365_BUSINESS_PREMIUM": (10, 10)}, tenant_id=NO_P1)]
        )
    )
    synced(pipeline)
    assert [row[1] for row in pipeline.query(USERS_STATUS, [NO_P1])] == [
        tenants.SIGN_INS_UNAVAILABLE
    ]
    pipeline.sim.control.add_sku(NO_P1, {"part_number": "AAD_PREMIUM", "enabled": 10})
    age_warehouse(pipeline, days=USERS_FULL_READ_EVERY_DAYS)
    # The last second of the UTC day a week ago: a calendar week, yet not 7 x 24 hours, old.
    week_ago = datetime.combine(
        utcnow().date() - timedelta(days=USERS_FULL_READ_EVERY_DAYS - 1), time()
    ) - timedelta(seconds=1)
    with duckdb.connect(str(pipeline.warehouse.path)) as con:
        con.execute("UPDATE user_delta_links SET full_read_at = ?", [week_ago])
        con.execute("UPDATE dataset_status SET checked_at = ?", [week_ago])

    assert synced(pipeline) == (TENANTS, TENANTS), "the full read: one page each, a latest link"
    assert [row[:2] for row in pipeline.query(USERS_STATUS, [NO_P1])][-1] == ("ok", None)
    assert pipeline.query(
        "SELECT count(DISTINCT user_id), count(last_sign_in) > 0 FROM current_user_licenses "
        "WHERE tenant_id = ?",
        [NO_P1],
    ) == [(10, True)], "sign-ins asked, and read"
