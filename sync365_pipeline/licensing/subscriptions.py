"""Subscriptions: Partner Center's (what the partner sells) and Graph's (what the tenant holds,
whoever sold it), checked and normalized into rows (staged per tenant by `licensing.datasets`).

Pure, like `normalize`: the same field checks (ids GUIDs, counts whole and in range, text made
safe), and one bad record is skipped with its reason while the others land. A list that cannot
be trusted as a whole (not a list) raises `MalformedPayload`: that dataset's slice is then not
written, so the tenant keeps its last good one, and its `dataset_status` says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import Any

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.clock import utc_naive
from sync365_pipeline.licensing.normalize import (
    MalformedPayload,
    _count,
    _each_record,
    _guid,
    _parsed,
    _text,
    _timestamp,
)
from sync365_pipeline.warehouse.columns import SUBSCRIPTION_COLUMNS, TENANT_SUBSCRIPTION_COLUMNS
from sync365_pipeline.warehouse.rows import SkippedRecord

_SUBSCRIPTION_VALUES = itemgetter(*SUBSCRIPTION_COLUMNS)
_TENANT_SUBSCRIPTION_VALUES = itemgetter(*TENANT_SUBSCRIPTION_COLUMNS)


@dataclass(frozen=True)
class DatasetRows:
    """One dataset's rows of one tenant, in its table's column order, and what was skipped."""

    rows: tuple[tuple[Any, ...], ...]
    skipped: tuple[SkippedRecord, ...] = ()


def commerce_skus(graph_subscriptions: object) -> dict[str, str]:
    """{commerce subscription id: SKU id} from Graph's `directory/subscriptions` (reference
    §1.7: Graph's commerceSubscriptionId is Partner Center's subscription id); records that do
    not carry both as text are left out (the tenant-side rows report them)."""
    if not isinstance(graph_subscriptions, Sequence) or isinstance(graph_subscriptions, str):
        return {}
    return {
        item["commerceSubscriptionId"].lower(): item["skuId"].lower()
        for item in graph_subscriptions
        if isinstance(item, Mapping)
        and isinstance(item.get("commerceSubscriptionId"), str)
        and isinstance(item.get("skuId"), str)
    }


def partner_subscription_rows(
    items: object,
    *,
    partner_tenant_id: str,
    tenant_id: str,
    snapshot_date: date,
    synced_at: datetime,
    sku_by_commerce_id: Mapping[str, str],
    catalog: SkuCatalog,
) -> DatasetRows:
    """One `subscriptions` row per Partner Center subscription. `sku_id` comes from Graph's
    subscription with the same commerce id (`sku_by_commerce_id`), else from a catalog product
    whose name is the offer's, else is NULL (Partner Center carries no Graph SKU id)."""

    def with_sku(row: dict[str, Any]) -> dict[str, Any]:
        if (sku_id := sku_by_commerce_id.get(row["subscription_id"])) is None and row["offer_name"]:
            named = catalog.by_product_name(row["offer_name"])
            sku_id = named.sku_id if named else None
        return {**row, "sku_id": sku_id}

    return _dataset_rows(
        _Dataset("subscriptions", _partner_subscription, "subscription_id", _SUBSCRIPTION_VALUES),
        items,
        _Slice(partner_tenant_id, tenant_id, snapshot_date, synced_at),
        complete=with_sku,
    )


def tenant_subscription_rows(
    items: object,
    *,
    partner_tenant_id: str,
    tenant_id: str,
    snapshot_date: date,
    synced_at: datetime,
) -> DatasetRows:
    """One `tenant_subscriptions` row per Graph companySubscription, whoever sold it."""
    return _dataset_rows(
        _Dataset(
            "directory/subscriptions",
            _tenant_subscription,
            "commerce_subscription_id",
            _TENANT_SUBSCRIPTION_VALUES,
        ),
        items,
        _Slice(partner_tenant_id, tenant_id, snapshot_date, synced_at),
    )


@dataclass(frozen=True)
class _Dataset:
    """How one Microsoft list becomes rows: its name, the parse of a record, the record's key
    in the list and the row's values in table order."""

    list_name: str
    parse: Callable[[Mapping[str, Any], str, str], dict[str, Any]]
    key: str
    values: Callable[[dict[str, Any]], tuple[Any, ...]]


@dataclass(frozen=True)
class _Slice:
    partner_tenant_id: str
    tenant_id: str
    snapshot_date: date
    synced_at: datetime


def _dataset_rows(
    dataset: _Dataset,
    items: object,
    where: _Slice,
    complete: Callable[[dict[str, Any]], dict[str, Any]] = lambda row: row,
) -> DatasetRows:
    """Each valid record of `items` as a row of the slice, the first of repeated keys kept."""
    tenant = _guid(where.tenant_id, "tenant_id", "tenant")
    common = {
        "snapshot_date": where.snapshot_date,
        "partner_tenant_id": _guid(where.partner_tenant_id, "partner_tenant_id", "partner"),
        "tenant_id": tenant,
        "synced_at": utc_naive(where.synced_at),
    }
    skipped: list[SkippedRecord] = []
    rows: dict[str, tuple[Any, ...]] = {}
    for place, item in _each_record(items, dataset.list_name, tenant, skipped):
        if (row := _parsed(dataset.parse, item, place, tenant, skipped)) is None:
            continue
        key = row[dataset.key]
        if key in rows:
            reason = f"{place.where} of tenant {tenant} repeats subscription {key}; first kept."
            skipped.append(SkippedRecord(place.list_name, place.index, reason))
            continue
        rows[key] = dataset.values({**complete(row), **common})
    return DatasetRows(tuple(rows.values()), tuple(skipped))


@dataclass(frozen=True)
class _Fields:
    """The checked fields of one record: each check names `where.key` and the tenant."""

    item: Mapping[str, Any]
    where: str
    tenant: str

    def text(self, key: str, *, required: bool = False) -> str | None:
        return _text(self.item.get(key), self._name(key), self.tenant, required=required)

    def guid(self, key: str) -> str:
        return _guid(self.item.get(key), self._name(key), self.tenant)

    def optional_guid(self, key: str) -> str | None:
        return None if self.item.get(key) is None else self.guid(key)

    def count(self, key: str) -> int:
        return _count(self.item.get(key), self._name(key), self.tenant)

    def timestamp(self, key: str) -> datetime | None:
        return _timestamp(self.item.get(key), self._name(key), self.tenant)

    def flag(self, key: str) -> bool | None:
        value = self.item.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise MalformedPayload(
            f"{self._name(key)} of tenant {self.tenant} is not true or false.", tenant=self.tenant
        )

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}"


def _partner_subscription(item: Mapping[str, Any], where: str, tenant: str) -> dict[str, Any]:
    fields = _Fields(item, where, tenant)
    offer_id = fields.text("offerId")
    end = fields.timestamp("commitmentEndDate")
    new_commerce = "productType" in item or (offer_id is not None and ":" in offer_id)
    if end is not None and not new_commerce:
        end -= timedelta(days=1)  # legacy end dates are exclusive (reference §1.2)
    return {
        "subscription_id": fields.guid("id"),
        "offer_id": offer_id,
        "offer_name": fields.text("offerName"),
        "friendly_name": fields.text("friendlyName"),
        "quantity": fields.count("quantity"),
        "unit_type": fields.text("unitType"),
        "status": _lower(fields.text("status", required=True)),
        "billing_cycle": _lower(fields.text("billingCycle")),
        "term_duration": _upper(fields.text("termDuration")),
        "commitment_end_date": None if end is None else end.date(),
        "auto_renew": fields.flag("autoRenewEnabled"),
        "is_trial": bool(fields.flag("isTrial")),
        "cancellation_allowed_until": fields.timestamp("cancellationAllowedUntilDate"),
        "creation_date": fields.timestamp("creationDate"),
        "effective_start_date": fields.timestamp("effectiveStartDate"),
    }


def _tenant_subscription(item: Mapping[str, Any], where: str, tenant: str) -> dict[str, Any]:
    fields = _Fields(item, where, tenant)
    return {
        "commerce_subscription_id": _lower(fields.text("commerceSubscriptionId", required=True)),
        "sku_id": fields.guid("skuId"),
        "sku_part_number": fields.text("skuPartNumber"),
        "status": fields.text("status", required=True),
        "total_licenses": fields.count("totalLicenses"),
        "is_trial": bool(fields.flag("isTrial")),
        "created": fields.timestamp("createdDateTime"),
        "next_lifecycle": fields.timestamp("nextLifecycleDateTime"),
        "owner_tenant_id": fields.optional_guid("ownerTenantId"),
        "owner_type": fields.text("ownerType"),
    }


def _lower(text: str | None) -> str | None:
    return None if text is None else text.lower()


def _upper(text: str | None) -> str | None:
    return None if text is None else text.upper()
