"""The subscriptions behind a tenant's SKUs, as Partner Center and Graph show them
(microsoft-apis-more.md §1 and §2).

A SKU's units are split into subscriptions status by status (`SkuAssignment.subscriptions`, the
units left over going to one default subscription per nonzero count), so Graph's prepaid unit
counts are always the sums of the subscriptions' quantities. Ids derive from the tenant, the SKU
and the subscription's place (uuid5), and dates from the day the simulator started, so a scenario
stays current and its dates hold still while the clock moves (the demo's replayed days).

Catalog ids are not Microsoft's: the NCE product and availability ids are well-formed
(`CFQ7TTC0` + four characters) but derived from the SKU id, except Business Basic's, which is the
docs' own (`CFQ7TTC0LH18:0001:CFQ7TTC0K971`).
"""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sync365_pipeline.simulator.catalog import FREE_PART_NUMBERS, SkuCatalog, SkuProduct
from sync365_pipeline.simulator.payloads import plan_applies_to, stable_id
from sync365_pipeline.simulator.scenario import SkuAssignment, SubscriptionSpec

UNIT_BUCKETS = ("enabled", "warning", "suspended", "locked_out")
_DEFAULT_STATUS_OF_BUCKET = {
    "enabled": "active",
    "warning": "expired",
    "suspended": "suspended",
    "locked_out": "deleted",
}
_GRAPH_STATUS = {
    "active": "Enabled",
    "pending": "Enabled",
    "expired": "Warning",
    "suspended": "Suspended",
    "disabled": "Suspended",
    "deleted": "LockedOut",
}
# The subscription behind units no given subscription covers, by seller and unit count.
# An expired one ended ten days ago (it is in its grace period).
_DEFAULT_SPECS = {
    (seller, bucket): SubscriptionSpec(
        seller=seller, status=status, term_ends_in_days=-10 if status == "expired" else None
    )
    for seller in ("partner", "customer")
    for bucket, status in _DEFAULT_STATUS_OF_BUCKET.items()
}
_TERM_MONTHS = {"P1M": 1, "P1Y": 12, "P3Y": 36}
_GRACE_DAYS = 30  # Warning (grace) lasts about 30 days before the subscription is disabled
_DOCUMENTED_NCE_IDS = {"O365_BUSINESS_ESSENTIALS": ("CFQ7TTC0LH18", "CFQ7TTC0K971")}
_CATALOG_ID_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXZ"


@dataclass(frozen=True)
class Subscription:
    """One subscription of one tenant: its spec, its units and its place among the SKU's."""

    tenant_id: str
    product: SkuProduct
    spec: SubscriptionSpec
    quantity: int
    key: str  # "enabled", "warning", ... for a default one; the spec's index otherwise

    @property
    def commerce_id(self) -> str:
        """Partner Center's `id` = Graph's `commerceSubscriptionId`."""
        return stable_id(self.tenant_id, self.product.sku_id, "commerce-subscription", self.key)

    @property
    def directory_id(self) -> str:
        """Graph's `companySubscription.id`, listed in `subscribedSku.subscriptionIds`; a SKU's
        default subscription keeps the id the SKU always listed."""
        if self.key == "enabled":
            return stable_id(self.tenant_id, self.product.sku_id, "subscription")
        return stable_id(self.tenant_id, self.product.sku_id, "subscription", self.key)

    def owner_tenant_id(self, partner_tenant_id: str) -> str | None:
        if self.spec.seller == "partner":
            return partner_tenant_id
        if self.spec.owner_tenant_id is not None or self.spec.seller == "customer":
            return self.spec.owner_tenant_id
        return stable_id(self.tenant_id, self.product.sku_id, "other-partner")

    def term(self, today: date) -> tuple[date, date]:
        """(first day, last day) of the current term, both inclusive."""
        spec = self.spec
        months = _TERM_MONTHS[spec.term]
        if spec.term_ends_on is not None or spec.term_ends_in_days is not None:
            last = spec.term_ends_on or today + timedelta(days=spec.term_ends_in_days or 0)
            return add_months(last + timedelta(days=1), -months), last
        started_days_ago = spec.term_started_days_ago
        if started_days_ago is None:
            started_days_ago = 12 if spec.term == "P1M" else 120
        first = today - timedelta(days=started_days_ago)
        return first, add_months(first, months) - timedelta(days=1)

    def created(self, today: date) -> date:
        """The purchase: `renewals` terms before the current one (Graph's createdDateTime stays
        there through renewals, which is why a term guessed from Graph's dates misfires)."""
        first, _ = self.term(today)
        return add_months(first, -_TERM_MONTHS[self.spec.term] * self.spec.renewals)

    def cancellable_until(self, today: date) -> date | None:
        """NCE: the last day of the cancellation window (a trial's is its whole term)."""
        first, last = self.term(today)
        if self.spec.commerce != "nce" or self.spec.cancellation_window_days is None:
            return None
        if self.spec.trial:
            return last
        return first + timedelta(days=self.spec.cancellation_window_days)


def sku_subscriptions(
    tenant_id: str, sku: SkuAssignment, catalog: SkuCatalog
) -> list[Subscription]:
    """The SKU's subscriptions, count by count: those the scenario gives, then one default
    subscription for any units they leave (sold by the partner; self-service for free SKUs)."""
    product = catalog.by_id(sku.sku_id or "")
    assert product is not None, "SkuAssignment resolves its SKU in the catalog"
    found = []
    for bucket in UNIT_BUCKETS:
        units = getattr(sku, bucket)
        indexed = [(i, s) for i, s in enumerate(sku.subscriptions) if s.unit_bucket() == bucket]
        left = units - sum(spec.quantity or 0 for _, spec in indexed)
        for index, spec in indexed:
            quantity = left if spec.quantity is None else spec.quantity
            if quantity:
                found.append(Subscription(tenant_id, product, spec, quantity, str(index)))
        if left and all(spec.quantity is not None for _, spec in indexed):
            seller = "customer" if product.part_number in FREE_PART_NUMBERS else "partner"
            default = _DEFAULT_SPECS[seller, bucket]
            found.append(Subscription(tenant_id, product, default, left, bucket))
    return found


def add_months(day: date, months: int) -> date:
    """The same day `months` later (or earlier), on the month's last day when it is shorter."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- Partner Center ------------------------------------------------------------------------


def partner_center_subscription(
    subscription: Subscription, country: str, today: date
) -> dict[str, Any]:
    """One Partner Center `Subscription` (§1.2), in the NCE or the legacy shape (§1.4)."""
    if subscription.spec.commerce == "legacy":
        return _legacy_subscription(subscription, today)
    return _nce_subscription(subscription, country, today)


def _common_fields(subscription: Subscription) -> dict[str, Any]:
    spec = subscription.spec
    status = spec.status
    suspended = status in ("suspended", "disabled")
    return {
        "id": subscription.commerce_id,
        "offerName": subscription.product.display_name,
        "friendlyName": spec.friendly_name or subscription.product.display_name,
        "quantity": subscription.quantity,
        "unitType": "Licenses",
        "status": status,
        "suspensionReasons": ["PartnerInitiated"] if suspended else [],
        "autoRenewEnabled": spec.renews(),
        "isTrial": spec.trial,
        "billingType": "license",
        "billingCycle": spec.effective_billing_cycle(),
        "termDuration": spec.term,
        "isMicrosoftProduct": True,
        "contractType": "subscription",
    }


def _nce_subscription(subscription: Subscription, country: str, today: date) -> dict[str, Any]:
    spec = subscription.spec
    product_id, availability_id = nce_catalog_ids(subscription.product)
    first, last = subscription.term(today)
    until = subscription.cancellable_until(today)
    window_open = until is not None and today <= until and spec.status == "active"
    refundable = window_open and not spec.trial
    customer, sid = subscription.tenant_id, subscription.commerce_id
    body = {
        **_common_fields(subscription),
        "offerId": f"{product_id}:0001:{availability_id}",
        "productType": {"id": "OnlineServicesNCE", "displayName": "OnlineServicesNCE"},
        "hasPurchasableAddons": True,
        "creationDate": _with_ticks(subscription.created(today), subscription.commerce_id),
        "effectiveStartDate": f"{first}T00:00:00Z",
        "commitmentEndDate": f"{last}T00:00:00Z",
        "commitmentEndDateTime": f"{last}T23:59:59Z",
        "cancellationAllowedUntilDate": None if until is None else f"{until}T00:00:00Z",
        "scheduledNextTermInstructions": _next_term(subscription, product_id, availability_id),
        "renewalTermDuration": (spec.next_term.term or "") if spec.next_term else "",
        "refundOptions": [{"type": "Full", "expiresAt": f"{until}T00:00:00Z"}]
        if refundable
        else [],
        "publisherName": "Microsoft Corporation",
        "partnerId": spec.partner_id,
        "attentionNeeded": False,
        "actionTaken": False,
        "actions": (["edit", "cancel"] if window_open else ["edit"])
        if spec.status == "active"
        else [],
        "orderId": stable_id(sid, "order").replace("-", "")[:12],
        "links": {
            "product": _link(f"/products/{product_id}?country={country}"),
            "sku": _link(f"/products/{product_id}/skus/0001?country={country}"),
            "availability": _link(
                f"/products/{product_id}/skus/0001/availabilities/{availability_id}"
                f"?country={country}"
            ),
            "self": _link(f"/customers/{customer}/subscriptions/{sid}"),
        },
        "attributes": {"objectType": "Subscription"}
        if spec.trial
        else {"etag": _etag(first), "objectType": "Subscription"},
    }
    if refundable:
        # Third-party code only (§1.2 [I]): what can still be returned, and until when.
        body["refundableQuantity"] = {
            "totalQuantity": subscription.quantity,
            "details": [
                {"quantity": subscription.quantity, "allowedUntilDateTime": f"{until}T00:00:00Z"}
            ],
        }
    return body


def _legacy_subscription(subscription: Subscription, today: date) -> dict[str, Any]:
    """Legacy: an offer GUID, end dates exclusive, no window, links with and without `/v1`."""
    first, last = subscription.term(today)
    offer_id = stable_id(subscription.product.sku_id, "legacy-offer").upper()
    created = subscription.created(today)
    return {
        **_common_fields(subscription),
        "offerId": offer_id,
        "creationDate": f"{created}T06:41:12Z",
        "effectiveStartDate": f"{first}T08:00:00Z",
        "commitmentEndDate": f"{last + timedelta(days=1)}T08:00:00Z",
        "partnerId": subscription.spec.partner_id or None,
        "orderId": stable_id(subscription.commerce_id, "order"),
        "links": {
            "offer": _link(f"/v1/offers/{offer_id}"),
            "self": _link(f"/subscriptions?key={stable_id(subscription.commerce_id, 'key')}"),
        },
        "attributes": {"etag": _etag(first), "objectType": "Subscription"},
    }


def _next_term(
    subscription: Subscription, product_id: str, availability_id: str
) -> dict[str, Any] | None:
    """`scheduledNextTermInstructions`; its billing cycle is capitalised, unlike the top-level
    one (§1.4): clients must compare billing cycles case-insensitively."""
    spec = subscription.spec
    if spec.next_term is None:
        return None
    cycle = spec.next_term.billing_cycle or spec.effective_billing_cycle()
    return {
        "product": {
            "productId": product_id,
            "skuId": "0001",
            "availabilityId": availability_id,
            "billingCycle": cycle.capitalize(),
            "termDuration": spec.next_term.term or spec.term,
        },
        "quantity": spec.next_term.quantity or subscription.quantity,
    }


def nce_catalog_ids(product: SkuProduct) -> tuple[str, str]:
    """(productId, availabilityId) of the SKU's new-commerce offer."""
    if product.part_number in _DOCUMENTED_NCE_IDS:
        return _DOCUMENTED_NCE_IDS[product.part_number]
    digest = hashlib.sha256(product.sku_id.encode()).digest()
    letters = [_CATALOG_ID_ALPHABET[byte % len(_CATALOG_ID_ALPHABET)] for byte in digest[:8]]
    return "CFQ7TTC0" + "".join(letters[:4]), "CFQ7TTC0" + "".join(letters[4:])


def _with_ticks(day: date, seed: str) -> str:
    """A creation time with .NET's seven fractional digits, as Partner Center writes it."""
    number = int(hashlib.sha256(seed.encode()).hexdigest()[:12], 16)
    hours, minutes, seconds = number % 24, number // 24 % 60, number // 1440 % 60
    return f"{day}T{hours:02}:{minutes:02}:{seconds:02}.{number % 10_000_000:07}Z"


def _etag(first: date) -> str:
    return f"W/\"datetime'{first}T00%3A00%3A12Z'\""


def _link(uri: str) -> dict[str, Any]:
    return {"uri": uri, "method": "GET", "headers": []}


# --- Graph ---------------------------------------------------------------------------------


def company_subscription(
    subscription: Subscription, partner_tenant_id: str, today: date
) -> dict[str, Any]:
    """One Graph `companySubscription` (§2.2): who sold it (`ownerTenantId`), its seats and
    when it next changes status."""
    spec = subscription.spec
    status = _GRAPH_STATUS[spec.status]
    _, last = subscription.term(today)
    lifecycle = last + timedelta(days=1 if status == "Enabled" else 1 + _GRACE_DAYS)
    owner_tenant_id = subscription.owner_tenant_id(partner_tenant_id)
    provisioning = "Success" if status in ("Enabled", "Warning") else "Disabled"
    created = subscription.created(today)
    return {
        "id": subscription.directory_id,
        "commerceSubscriptionId": subscription.commerce_id,
        "createdDateTime": _with_ticks(created, subscription.commerce_id)[:19] + "Z",
        "isTrial": spec.trial,
        "nextLifecycleDateTime": f"{lifecycle}T00:00:00Z",
        "ownerId": None if owner_tenant_id is None else stable_id(owner_tenant_id, "owner"),
        "ownerTenantId": owner_tenant_id,
        "ownerType": None if owner_tenant_id is None else "User",
        "serviceStatus": [
            {
                "appliesTo": plan_applies_to(plan.name),
                "provisioningStatus": provisioning,
                "servicePlanId": plan.id,
                "servicePlanName": plan.name,
            }
            for plan in subscription.product.service_plans
        ],
        "skuId": subscription.product.sku_id,
        "skuPartNumber": subscription.product.part_number,
        "status": status,
        "totalLicenses": subscription.quantity,
    }
