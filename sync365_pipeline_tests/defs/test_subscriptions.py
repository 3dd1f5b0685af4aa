"""Subscriptions in the bulk sync (issue 11): what the partner sells (Partner Center) and what
each tenant holds (Graph) land unit by unit and date by date, survive the loss of GDAP, and feed
the renewal list, sold_by_us, the paid-only unused licences and the over-assigned SKUs. The
simulator's `expected_subscriptions` is the truth; the demo scenario holds every case."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.licensing import chunks
from sync365_pipeline.microsoft import MicrosoftCloud

from .conftest import Pipeline, PipelineFactory

NORTHWIND = "a51c8ac0-98f8-4206-9aaa-ef644b70e6e6"  # 10 SPB seats from another reseller
FABRIKAM = "ea387754-8c47-4f92-84a1-7ac22ee21a16"  # annual ends in 25 days; Copilot's window
TAILSPIN = "17712324-64a7-4045-946f-b4f030aa97c8"  # Visio bought directly
LITWARE = "9961c4cc-4731-4eab-af64-96a953a7e159"  # GDAP ended 12 days ago
BLUEBIRD = "03c41dcd-c3af-4cc9-afcb-1ad46e6b07e4"  # Defender ends in 40 days, no renewal
CEDAR_HARBOR = "e3d50498-e749-4170-ae77-39c67dbf46b5"  # Power BI Pro suspended, 3 assigned
SUMMIT = "aefac2e1-1ad7-4c55-9a3d-3e67597ef908"  # GDAP only: no commerce relationship
MAPLE_STREET = "7512e666-d1a5-4b6a-beb7-0a941d07b46a"  # legacy offer, Teams Essentials trial
ALPINE = "f756e85d-42c8-45ca-8397-093bc5bf27d8"  # its tenant is gone
HARBORVIEW = "2a7b9c4d-6e1f-4a83-b5c2-9d0e8f7a6b53"  # Graph 403; Exchange month to month

PARTNER_ROWS = (
    "SELECT subscription_id, quantity, status, term_duration, billing_cycle, auto_renew, is_trial "
    "FROM subscriptions WHERE tenant_id = ? AND snapshot_date = ? ORDER BY subscription_id"
)
TENANT_ROWS = (
    "SELECT commerce_subscription_id, sku_id, total_licenses, status, owner_tenant_id "
    "FROM tenant_subscriptions WHERE tenant_id = ? AND snapshot_date = ? "
    "ORDER BY commerce_subscription_id"
)


def expected_partner_rows(pipeline: Pipeline, tenant_id: str) -> list[tuple[Any, ...]]:
    items = pipeline.sim.control.expected_subscriptions(tenant_id)["partner_center"]
    return sorted(
        (
            item["id"].lower(),
            item["quantity"],
            item["status"].lower(),
            item["termDuration"],
            item["billingCycle"].lower(),
            item["autoRenewEnabled"],
            item["isTrial"],
        )
        for item in items
    )


def expected_tenant_rows(pipeline: Pipeline, tenant_id: str) -> list[tuple[Any, ...]]:
    items = pipeline.sim.control.expected_subscriptions(tenant_id)["graph"]
    return sorted(
        (
            item["commerceSubscriptionId"].lower(),
            item["skuId"].lower(),
            item["totalLicenses"],
            item["status"],
            item["ownerTenantId"] and item["ownerTenantId"].lower(),
        )
        for item in items
    )


def today() -> date:
    return datetime.now(UTC).date()


@pytest.fixture
def synced(pipeline_factory: PipelineFactory) -> Pipeline:
    pipeline = pipeline_factory("demo")
    assert pipeline.sync().success
    return pipeline


def test_every_customers_subscriptions_land_unit_by_unit(synced: Pipeline) -> None:
    graph_ok = {
        tenant_id
        for (tenant_id,) in synced.query(
            "SELECT tenant_id FROM latest_tenant_status WHERE status = 'ok'"
        )
    }
    customers = [tenant_id for (tenant_id,) in synced.query("SELECT tenant_id FROM customers")]
    sold_ok = {
        tenant_id
        for (tenant_id,) in synced.query(
            "SELECT tenant_id FROM dataset_status WHERE dataset = 'subscriptions' AND status = 'ok'"
        )
    }
    assert NORTHWIND in graph_ok
    assert not {HARBORVIEW, LITWARE} & graph_ok
    assert set(customers) - sold_ok == {ALPINE}, "its tenant is gone: Partner Center says so"
    for tenant_id in customers:
        expected = expected_partner_rows(synced, tenant_id) if tenant_id in sold_ok else []
        assert synced.query(PARTNER_ROWS, [tenant_id, today()]) == expected, tenant_id
        if tenant_id in graph_ok:
            assert synced.query(TENANT_ROWS, [tenant_id, today()]) == expected_tenant_rows(
                synced, tenant_id
            ), tenant_id
        else:
            assert synced.query(TENANT_ROWS, [tenant_id, today()]) == [], tenant_id
    slices = dict(
        synced.query(
            "SELECT dataset, count(*) FROM dataset_snapshots WHERE snapshot_date = ? GROUP BY 1",
            [today()],
        )
    )
    assert slices == {
        "subscriptions": len(sold_ok),
        "tenant_subscriptions": len(graph_ok),
        "user_licenses": len(graph_ok),  # the users are read where the SKUs were
    }
    assert synced.query(
        "SELECT status, message FROM dataset_status WHERE tenant_id = ? AND dataset = ?",
        [SUMMIT, "subscriptions"],
    ) == [("ok", "Not a reseller customer of the partner: it sells it nothing.")]


def test_a_customer_whose_gdap_ended_keeps_current_partner_side_subscriptions(
    synced: Pipeline,
) -> None:
    assert synced.query(
        "SELECT status FROM latest_tenant_status WHERE tenant_id = ?", [LITWARE]
    ) == [("access_removed",)]
    expected = expected_partner_rows(synced, LITWARE)
    assert expected, "Litware buys through the partner"
    assert synced.query(PARTNER_ROWS, [LITWARE, today()]) == expected
    statuses = dict(
        synced.query("SELECT dataset, status FROM dataset_status WHERE tenant_id = ?", [LITWARE])
    )
    assert statuses == {
        "subscriptions": "ok",
        "tenant_subscriptions": "access_removed",
        "user_licenses": "access_removed",
    }


def test_losing_gdap_keeps_the_last_good_tenant_subscriptions(synced: Pipeline) -> None:
    before = synced.query(TENANT_ROWS, [FABRIKAM, today()])
    assert before == expected_tenant_rows(synced, FABRIKAM)
    synced.sim.control.update_gdap_relationship(FABRIKAM, status="terminated")

    assert synced.sync().success

    assert synced.query(
        "SELECT status FROM latest_tenant_status WHERE tenant_id = ?", [FABRIKAM]
    ) != [("ok",)]
    current = synced.query(
        "SELECT commerce_subscription_id, sku_id, total_licenses, status, owner_tenant_id "
        "FROM current_tenant_subscriptions WHERE tenant_id = ? ORDER BY 1",
        [FABRIKAM],
    )
    assert current == before
    assert synced.query(PARTNER_ROWS, [FABRIKAM, today()]) == expected_partner_rows(
        synced, FABRIKAM
    )
    latest = synced.query(
        "SELECT dataset, status FROM dataset_status WHERE tenant_id = ? "
        "QUALIFY row_number() OVER (PARTITION BY dataset ORDER BY checked_at DESC) = 1",
        [FABRIKAM],
    )
    assert dict(latest)["subscriptions"] == "ok"
    assert dict(latest)["tenant_subscriptions"] != "ok"


def test_a_later_day_adds_its_own_slices_and_leaves_the_earlier_ones(
    synced: Pipeline, tmp_path: Path
) -> None:
    first_partner = synced.query(PARTNER_ROWS, [NORTHWIND, today()])
    first_tenant = synced.query(TENANT_ROWS, [NORTHWIND, today()])
    ((sku_id,),) = synced.query(
        "SELECT DISTINCT sku_id FROM license_facts WHERE tenant_id = ? AND sku_part_number = 'SPB'",
        [NORTHWIND],
    )
    synced.sim.control.set_sku_units(NORTHWIND, sku_id, enabled=45, consumed=40)
    later = today() + timedelta(days=1)

    settings = AccountSettings.from_env(dict(os.environ))
    (chunk,) = chunks.plan_chunks(
        synced.warehouse,
        [settings],
        {settings.tenant_id: [NORTHWIND]},
        snapshot_date=later,
        sync_id="a-later-sync",
        staging_dir=tmp_path / "stage",
    )
    with MicrosoftCloud.from_settings(settings) as cloud:
        staged = chunks.fetch_chunk(cloud, settings, chunk, SkuCatalog.load())
    chunks.store_chunks(synced.warehouse, [staged], [settings])

    assert synced.query(PARTNER_ROWS, [NORTHWIND, today()]) == first_partner
    assert synced.query(TENANT_ROWS, [NORTHWIND, today()]) == first_tenant
    assert synced.query(PARTNER_ROWS, [NORTHWIND, later]) == expected_partner_rows(
        synced, NORTHWIND
    )
    assert synced.query(TENANT_ROWS, [NORTHWIND, later]) == expected_tenant_rows(synced, NORTHWIND)
    assert synced.query(PARTNER_ROWS, [NORTHWIND, later]) != first_partner, "5 more SPB seats"
    assert synced.query(
        "SELECT DISTINCT snapshot_date FROM current_subscriptions WHERE tenant_id = ?", [NORTHWIND]
    ) == [(later,)]


def test_the_renewal_list_holds_the_annual_commitment_ending_soon_with_its_spare_seats(
    synced: Pipeline,
) -> None:
    actions = synced.query(
        "SELECT tenant_id, sku_part_number, commitment, action, quantity, consumed_units, "
        "reducible_units, act_by = commitment_end_date, is_monthly_rollover "
        "FROM renewal_actions ORDER BY ALL"
    )
    assert (
        FABRIKAM,
        "O365_BUSINESS_PREMIUM",
        "annual",
        "reduce_before_renewal",
        18,
        15,
        3,
        True,
        False,
    ) in actions
    assert (
        FABRIKAM,
        "Microsoft_365_Copilot",
        "annual",
        "reduce_or_cancel_now",
        2,
        1,
        1,
        False,
        False,
    ) in actions
    assert (
        BLUEBIRD,
        "ATP_ENTERPRISE",
        "annual",
        "ends_without_renewal",
        10,
        3,
        7,
        True,
        False,
    ) in actions
    trials = [row for row in actions if row[0] == MAPLE_STREET]
    assert [row[1:4] for row in trials] == [("Teams_Ess", "monthly", "trial_ends")]
    rollovers = {row[1] for row in actions if row[8]}
    assert "POWER_BI_PRO" in rollovers, "Northwind's month-to-month Power BI"
    assert all(row[2] == "monthly" for row in actions if row[8])
    listed = synced.warehouse.renewal_actions()
    assert not listed["is_monthly_rollover"].any(), "rollovers only when asked"
    assert len(synced.warehouse.renewal_actions(monthly_rollovers=True)) == len(actions)
    assert synced.warehouse.subscription_counts()["renewal_actions"] == len(listed)


def test_units_bought_elsewhere_show_in_sold_by_us(synced: Pipeline) -> None:
    rows = synced.query(
        "SELECT tenant_id, sku_part_number, units_in_use, units_sold_by_us, "
        "units_bought_elsewhere, difference FROM sold_by_us "
        "WHERE (tenant_id = ? AND sku_part_number = 'SPB') "
        "OR (tenant_id = ? AND sku_part_number = 'VISIOCLIENT') ORDER BY ALL",
        [NORTHWIND, TAILSPIN],
    )
    assert set(rows) == {
        (NORTHWIND, "SPB", 37, 30, 10, 7),  # 10 of its 40 seats from another reseller
        (TAILSPIN, "VISIOCLIENT", 1, 0, 3, 1),  # bought from Microsoft directly
    }


def test_free_skus_and_trials_are_out_of_unused_licenses(synced: Pipeline) -> None:
    unused = set(synced.query("SELECT tenant_id, sku_part_number FROM unused_licenses"))
    assert (NORTHWIND, "SPB") in unused, "3 paid seats unassigned"
    assert (NORTHWIND, "FLOW_FREE") not in unused
    assert (BLUEBIRD, "TEAMS_EXPLORATORY") not in unused
    assert (MAPLE_STREET, "Teams_Ess") not in unused, "a trial"
    classes = dict(
        synced.query(
            "SELECT sku_part_number, sku_class FROM license_classes WHERE tenant_id = ?",
            [NORTHWIND],
        )
    )
    assert classes["FLOW_FREE"] == "free"
    assert classes["SPB"] == "paid"


def test_over_assigned_skus_show_in_their_view(synced: Pipeline) -> None:
    rows = synced.query(
        "SELECT tenant_id, sku_part_number, enabled_units, consumed_units, reason "
        "FROM over_assigned_licenses ORDER BY ALL"
    )
    assert (CEDAR_HARBOR, "POWER_BI_PRO", 0, 3, "suspended_still_assigned") in rows
    assert all(row[3] > row[2] or row[4] == "suspended_still_assigned" for row in rows)
