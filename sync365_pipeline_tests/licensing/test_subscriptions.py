"""Subscriptions from payloads to rows (no servers): checked like SKUs, a bad record skipped with
its reason, legacy end dates made inclusive, the SKU id mapped; a dataset's failure its own."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from sync365_pipeline.catalog import SkuCatalog, SkuName
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.datasets import stage_datasets
from sync365_pipeline.licensing.normalize import MalformedPayload
from sync365_pipeline.licensing.subscriptions import (
    commerce_skus,
    partner_subscription_rows,
    tenant_subscription_rows,
)
from sync365_pipeline.licensing.tenants import DatasetFetch, TenantFetch
from sync365_pipeline.microsoft import NoCommerceRelationship, PartnerAccessError, Throttled
from sync365_pipeline.warehouse.columns import SUBSCRIPTION_COLUMNS, TENANT_SUBSCRIPTION_COLUMNS
from sync365_pipeline_tests.samples import PARTNER, SPB

TENANT = "a51c8ac0-98f8-4206-9aaa-ef644b70e6e6"
DAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
NCE_ID = "A4C1340D-6911-4758-BBA3-0C4C6007D161"
LEGACY_ID = "5e1c9d05-4169-4ef9-9657-0e86b1eab1de"
CATALOG = SkuCatalog([SkuName(SPB, "SPB", "Microsoft 365 Business Premium")])


def nce(**changes: Any) -> dict[str, Any]:
    return {
        "id": NCE_ID,
        "offerId": "CFQ7TTC0LCHC:0002:CFQ7TTC0LDPB",
        "offerName": "Microsoft 365 Business Premium",
        "friendlyName": "Business Premium",
        "productType": {"id": "OnlineServicesNCE"},
        "quantity": 25,
        "unitType": "Licenses",
        "status": "Active",
        "billingCycle": "Monthly",
        "termDuration": "P1Y",
        "commitmentEndDate": "2027-03-13T00:00:00Z",
        "cancellationAllowedUntilDate": "2026-03-21T00:00:00Z",
        "autoRenewEnabled": True,
        "isTrial": False,
        "creationDate": "2025-03-14T16:57:15.0966728Z",
        "effectiveStartDate": "2026-03-14T00:00:00Z",
        **changes,
    }


def partner_rows(items: object, **options: Any) -> Any:
    return partner_subscription_rows(
        items,
        partner_tenant_id=PARTNER,
        tenant_id=TENANT,
        snapshot_date=DAY,
        synced_at=NOW,
        sku_by_commerce_id=options.get("sku_by_commerce_id", {}),
        catalog=CATALOG,
    )


def column(row: tuple[Any, ...], name: str) -> Any:
    return row[SUBSCRIPTION_COLUMNS.index(name)]


def test_a_new_commerce_subscription_becomes_one_row_with_its_terms() -> None:
    (row,) = partner_rows([nce()]).rows
    assert column(row, "subscription_id") == NCE_ID.lower()
    assert column(row, "status") == "active"
    assert column(row, "billing_cycle") == "monthly"
    assert column(row, "commitment_end_date") == date(2027, 3, 13), "inclusive, as sent"
    assert column(row, "cancellation_allowed_until") == datetime(2026, 3, 21)
    assert column(row, "sku_id") == SPB, "by the offer's name, without Graph"


def test_a_legacy_end_date_is_made_inclusive_and_graph_maps_the_sku() -> None:
    legacy = nce(id=LEGACY_ID, offerId="0CCA44D6-68E9-4762-94EE-31ECE98783B9", offerName="Odd")
    del legacy["productType"]
    legacy["commitmentEndDate"] = "2026-11-24T08:00:00Z"
    (row,) = partner_rows([legacy], sku_by_commerce_id={LEGACY_ID: "some-sku"}).rows
    assert column(row, "commitment_end_date") == date(2026, 11, 23)
    assert column(row, "sku_id") == "some-sku"


def test_bad_records_are_skipped_with_their_reason_and_the_others_land() -> None:
    hostile = [nce(quantity=-1), "not an object", nce(isTrial="yes"), nce(), nce()]
    normalized = partner_rows(hostile)
    assert len(normalized.rows) == 1
    reasons = [record.reason for record in normalized.skipped]
    assert len(reasons) == 4
    assert "subscriptions[0].quantity" in reasons[0]
    assert "subscriptions[2].isTrial" in reasons[2]
    assert "repeats subscription" in reasons[3]


def test_a_list_that_is_not_a_list_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        partner_rows({"items": []})


def test_graph_subscriptions_keep_who_sold_them() -> None:
    items = [
        {
            "commerceSubscriptionId": NCE_ID,
            "skuId": SPB.upper(),
            "status": "Enabled",
            "totalLicenses": 30,
            "ownerTenantId": PARTNER.upper(),
            "isTrial": False,
        },
        {
            "commerceSubscriptionId": LEGACY_ID,
            "skuId": SPB,
            "status": "Enabled",
            "totalLicenses": 10,
            "ownerTenantId": None,
        },
        {"commerceSubscriptionId": None, "skuId": SPB, "status": "Enabled", "totalLicenses": 1},
    ]
    normalized = tenant_subscription_rows(
        items, partner_tenant_id=PARTNER, tenant_id=TENANT, snapshot_date=DAY, synced_at=NOW
    )
    owner = TENANT_SUBSCRIPTION_COLUMNS.index("owner_tenant_id")
    assert [row[owner] for row in normalized.rows] == [PARTNER.lower(), None]
    assert len(normalized.skipped) == 1
    assert commerce_skus(items) == {NCE_ID.lower(): SPB, LEGACY_ID: SPB}


def test_no_commerce_relationship_is_an_empty_ok_list_and_other_failures_their_status() -> None:
    def refused() -> list[dict[str, Any]]:
        raise NoCommerceRelationship("20002", code="20002")

    def throttled() -> list[dict[str, Any]]:
        raise Throttled("slow down", code="429")

    def partner_gone() -> list[dict[str, Any]]:
        raise PartnerAccessError("the refresh token died")

    assert DatasetFetch.of(refused).payload == []
    assert DatasetFetch.of(refused).status is TenantStatus.OK
    assert DatasetFetch.of(throttled).status is TenantStatus.THROTTLED
    assert DatasetFetch.of(throttled).payload is None
    with pytest.raises(PartnerAccessError):
        DatasetFetch.of(partner_gone)


def test_a_failed_dataset_writes_no_slice_and_leaves_the_tenant_status_alone() -> None:
    fetched = TenantFetch(
        TENANT,
        TenantStatus.OK,
        NOW,
        graph_skus=[],
        datasets={
            "subscriptions": DatasetFetch(TenantStatus.OK, NOW, [nce()]),
            "tenant_subscriptions": DatasetFetch(TenantStatus.THROTTLED, NOW, message="429"),
        },
    )
    staged = stage_datasets(
        [fetched], catalog=CATALOG, partner_tenant_id=PARTNER, snapshot_date=DAY, sync_id="s"
    )
    assert [piece.dataset for piece in staged.slices] == ["subscriptions"]
    assert len(staged.rows["subscriptions"]) == 1
    assert staged.rows["tenant_subscriptions"] == []
    assert {row.dataset: row.status for row in staged.statuses} == {
        "subscriptions": TenantStatus.OK,
        "tenant_subscriptions": TenantStatus.THROTTLED,
    }
    assert fetched.status is TenantStatus.OK
