"""Microsoft payloads -> rows shaped like the warehouse tables. Pure: no I/O.

License facts come out as plain tuples (`FactRows`): the normalizer runs once per tenant, and a
pandas frame per tenant would cost far more than the validation itself; the writer builds one
frame for all tenants. The customer list (one payload per partner) comes out as a frame.

Payloads come from the network, so every field is checked: ids must be GUIDs, counts whole
non-negative numbers within int64 after every sum, text valid (control characters and lone
surrogates replaced, length bounded). A bad field names the field and the tenant, never echoing
the value (it may be huge or hostile). One bad record in a list is skipped with its reason
(`skipped`) and the others go on; a list that cannot be trusted as a whole (not a list,
conflicting duplicates, a sum out of range) raises `MalformedPayload`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any, TypeVar

import pandas as pd

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.clock import utc_naive
from sync365_pipeline.core.text import safe_text
from sync365_pipeline.warehouse.columns import CUSTOMER_COLUMNS, LICENSE_FACT_COLUMNS
from sync365_pipeline.warehouse.rows import AppCredentialRow, PayloadSource, SkippedRecord

MAX_TEXT_LENGTH = 1024  # product names, company names and domains are far shorter; longer is cut
MAX_COUNT = 2**63 - 1  # BIGINT; Microsoft documents Int32
NAME_SOURCE_PARTNER_CENTER = "partner_center"
T = TypeVar("T")

# When one skuId comes in several billing-account rows, the combined status is the first of these
# that any row has: "Enabled" means at least one prepaid unit is usable, and so on down.
CAPABILITY_PRECEDENCE = ("Enabled", "Warning", "Suspended", "LockedOut", "Deleted")

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WORD = re.compile(r"[A-Za-z][A-Za-z_]{0,63}")
_PREPAID_KEYS = {
    "enabled": "enabled_units",
    "suspended": "suspended_units",
    "warning": "warning_units",
    "lockedOut": "locked_out_units",
}
_FACT_VALUES = itemgetter(*LICENSE_FACT_COLUMNS)  # a fact's values, in table order


class MalformedPayload(ValueError):  # noqa: N818 (the name other layers catch)
    """A Microsoft payload does not have the documented shape; names the field and tenant."""

    def __init__(self, message: str, *, tenant: str | None = None) -> None:
        super().__init__(message)
        self.tenant = tenant  # whose field is bad, when the record got as far as naming it


@dataclass(frozen=True)
class Normalized:
    """A table's rows from one payload, and why each record that could not be used was skipped."""

    frame: pd.DataFrame
    skipped: tuple[SkippedRecord, ...] = ()


@dataclass(frozen=True)
class FactRows:
    """A tenant's license facts as tuples in `LICENSE_FACT_COLUMNS` order, holding Python values
    (int, str or None, date, naive-UTC datetime), and why each record that could not be used was
    skipped."""

    rows: tuple[tuple[Any, ...], ...]
    skipped: tuple[SkippedRecord, ...] = ()


def customers_frame(
    partner_tenant_id: str,
    partner_center_customers: Sequence[Mapping[str, Any]],
    gdap_relationships: Sequence[Mapping[str, Any]],
    contracts: Sequence[Mapping[str, Any]],
) -> Normalized:
    """One row per customer tenant reachable by any route, merged on tenant id.

    Sources: Partner Center `/v1/customers` items (reseller/advisor relationships), Graph GDAP
    `delegatedAdminRelationships` and Graph `contracts` (DAP). `relationship` is the sorted
    '+'-joined set of routes (e.g. `dap+gdap+reseller`). Names prefer Partner Center, then GDAP,
    then contracts (contracts keep a stale copy from when the partnership began). Of several GDAP
    relationships the active one wins, then the latest `endDateTime`; `MLT_*` ones (Microsoft-led
    transition, not the partner's own) are ignored, as CIPP does. A bad record is skipped (its
    reason in `skipped`); the customers of every other record are kept.
    """
    partner = _guid(partner_tenant_id, "partner_tenant_id", "partner")
    skipped: list[SkippedRecord] = []
    names: dict[str, list[str | None]] = {}  # tenant -> [pc name, gdap name, contract name]
    domains: dict[str, list[str | None]] = {}  # tenant -> [pc domain, contract domain]
    routes: dict[str, set[str]] = {}
    gdap_by_tenant: dict[str, GdapRelationship] = {}
    active_relationships: dict[str, list[str]] = {}  # tenant -> ids of its active relationships

    for place, item in _each_record(partner_center_customers, "customers", partner, skipped):
        if (customer := _parsed(_partner_center_customer, item, place, partner, skipped)) is None:
            continue
        tenant, name, domain, relation = customer
        names.setdefault(tenant, [None, None, None])[0] = name
        domains.setdefault(tenant, [None, None])[0] = domain
        routes.setdefault(tenant, set()).update([relation] if relation else [])

    relationships = "delegatedAdminRelationships"
    for place, item in _each_record(gdap_relationships, relationships, partner, skipped):
        if (relationship := _parsed(_gdap_relationship, item, place, partner, skipped)) is None:
            continue
        tenant = relationship.tenant_id
        routes.setdefault(tenant, set()).add("gdap")
        names.setdefault(tenant, [None, None, None])
        names[tenant][1] = names[tenant][1] or relationship.customer_name
        if relationship.status == "active" and relationship.relationship_id:
            active_relationships.setdefault(tenant, []).append(relationship.relationship_id)
        if tenant not in gdap_by_tenant or relationship.rank > gdap_by_tenant[tenant].rank:
            gdap_by_tenant[tenant] = relationship

    for place, item in _each_record(contracts, "contracts", partner, skipped):
        if (contract := _parsed(_contract, item, place, partner, skipped)) is None:
            continue
        tenant, name, domain = contract
        routes.setdefault(tenant, set()).add("dap")
        names.setdefault(tenant, [None, None, None])[2] = name
        domains.setdefault(tenant, [None, None])[1] = domain

    rows = [
        {
            "partner_tenant_id": partner,
            "tenant_id": tenant,
            "display_name": _first(names.get(tenant, ())),
            "default_domain": _first(domains.get(tenant, ())),
            "relationship": "+".join(sorted(routes[tenant])) or "none",
            "gdap_status": chosen.status if (chosen := gdap_by_tenant.get(tenant)) else None,
            "gdap_end_date": chosen.end if chosen else None,
            "gdap_relationship_ids": sorted(active_relationships.get(tenant, ())) or None,
            "gdap_auto_extend": chosen.auto_extend if chosen else None,
        }
        for tenant in sorted(routes)
    ]
    frame = pd.DataFrame(rows, columns=list(CUSTOMER_COLUMNS))
    frame["gdap_end_date"] = pd.to_datetime(frame["gdap_end_date"]).astype("datetime64[us]")
    return Normalized(frame, tuple(skipped))


def _partner_center_customer(
    item: Mapping[str, Any], where: str, partner: str
) -> tuple[str, str | None, str | None, str | None] | None:
    """(tenant, name, domain, relationship route) of one Partner Center customer."""
    profile = _mapping(item.get("companyProfile", {}), f"{where}.companyProfile", partner)
    raw_tenant = profile.get("tenantId") or item.get("id")
    tenant = _guid(raw_tenant, f"{where}.companyProfile.tenantId", partner)
    name = _text(profile.get("companyName"), f"{where}.companyProfile.companyName", tenant)
    domain = _text(profile.get("domain"), f"{where}.companyProfile.domain", tenant)
    relation = _text(item.get("relationshipToPartner"), f"{where}.relationshipToPartner", tenant)
    if relation and relation.lower() not in ("none", "unknown"):
        if not _WORD.fullmatch(relation):
            raise MalformedPayload(
                f"{where}.relationshipToPartner of tenant {tenant} is not a word.", tenant=tenant
            )
        return tenant, name, domain, relation.lower()
    return tenant, name, domain, None


@dataclass(frozen=True)
class GdapRelationship:
    """What discovery keeps of one GDAP relationship."""

    tenant_id: str
    relationship_id: str | None  # None: not auditable (Microsoft always sends one)
    customer_name: str | None
    status: str | None
    end: datetime | None
    auto_extend: bool  # `autoExtendDuration` is a non-zero duration (`PT0S`, `P0D`: no)

    @property
    def rank(self) -> tuple[bool, datetime]:
        """Of a customer's relationships, the active one wins, then the latest end."""
        return (self.status == "active", self.end or datetime.min)


def _gdap_relationship(
    item: Mapping[str, Any], where: str, partner: str
) -> GdapRelationship | None:
    """One GDAP relationship; None for `MLT_*` ones."""
    label = _text(item.get("displayName"), f"{where}.displayName", partner) or ""
    if label.startswith("MLT_"):
        return None
    customer = _mapping(item.get("customer"), f"{where}.customer", partner, required=True)
    tenant = _guid(customer.get("tenantId"), f"{where}.customer.tenantId", partner)
    extend = _text(item.get("autoExtendDuration"), f"{where}.autoExtendDuration", tenant)
    return GdapRelationship(
        tenant_id=tenant,
        relationship_id=_text(item.get("id"), f"{where}.id", tenant),
        customer_name=_text(customer.get("displayName"), f"{where}.customer.displayName", tenant),
        status=_text(item.get("status"), f"{where}.status", tenant),
        end=_timestamp(item.get("endDateTime"), f"{where}.endDateTime", tenant),
        auto_extend=bool(extend) and any(digit in "123456789" for digit in extend),
    )


def _contract(
    item: Mapping[str, Any], where: str, partner: str
) -> tuple[str, str | None, str | None]:
    """(tenant, name, domain) of one DAP contract."""
    tenant = _guid(item.get("customerId"), f"{where}.customerId", partner)
    return (
        tenant,
        _text(item.get("displayName"), f"{where}.displayName", tenant),
        _text(item.get("defaultDomainName"), f"{where}.defaultDomainName", tenant),
    )


def direct_tenant_frame(tenant_id: str, organization: Mapping[str, Any]) -> Normalized:
    """The one "customer" of a direct account: its own tenant, from Graph `/v1.0/organization`.

    A direct tenant is its own partner (`partner_tenant_id == tenant_id`), reached by an app
    registered in it rather than by a delegated relationship.
    """
    tenant = _guid(tenant_id, "tenant_id", "direct tenant")
    organization = _mapping(organization, "organization", tenant, required=True)
    skipped: list[SkippedRecord] = []
    default_domain = next(
        (
            _text(domain.get("name"), f"{place.where}.name", tenant)
            for place, domain in _each_record(
                organization.get("verifiedDomains", []), "verifiedDomains", tenant, skipped
            )
            if domain.get("isDefault") is True
        ),
        None,
    )
    row = {
        "partner_tenant_id": tenant,
        "tenant_id": tenant,
        "display_name": _text(organization.get("displayName"), "displayName", tenant),
        "default_domain": default_domain,
        "relationship": "direct",
        "gdap_status": None,
        "gdap_end_date": None,
        "gdap_relationship_ids": None,
        "gdap_auto_extend": None,
    }
    frame = pd.DataFrame([row], columns=list(CUSTOMER_COLUMNS))
    frame["gdap_end_date"] = pd.to_datetime(frame["gdap_end_date"]).astype("datetime64[us]")
    return Normalized(frame, tuple(skipped))


def app_credential_rows(
    partner_tenant_id: str,
    checked_at: datetime,
    password_credentials: Sequence[Mapping[str, Any]],
    secret_hint: str,
) -> tuple[list[AppCredentialRow], tuple[SkippedRecord, ...]]:
    """The app's client secrets (Graph `passwordCredentials`) as rows, and the records skipped.

    `secret_hint` is the configured secret's first three characters: a secret whose `hint` is
    the same is the one in use (Microsoft shows no more of it). The hint is compared, never
    kept. No usable secret at all is one row that says so.
    """
    skipped: list[SkippedRecord] = []
    rows = [
        row
        for place, item in _each_record(
            password_credentials, "passwordCredentials", partner_tenant_id, skipped
        )
        if (row := _parsed(_app_credential, item, place, partner_tenant_id, skipped)) is not None
    ]
    found = [
        AppCredentialRow(partner_tenant_id, checked_at, key_id, name, end, hint == secret_hint)
        for key_id, name, end, hint in rows
    ]
    if not found:
        message = "The app registration lists no client secret Graph could show."
        found = [AppCredentialRow(partner_tenant_id, checked_at, message=message)]
    return found, tuple(skipped)


def _app_credential(
    item: Mapping[str, Any], where: str, partner: str
) -> tuple[str, str | None, datetime | None, str | None]:
    """(keyId, displayName, endDateTime, hint) of one passwordCredential."""
    return (
        _guid(item.get("keyId"), f"{where}.keyId", partner),
        _text(item.get("displayName"), f"{where}.displayName", partner),
        _timestamp(item.get("endDateTime"), f"{where}.endDateTime", partner),
        item.get("hint") if isinstance(item.get("hint"), str) else None,
    )


def license_fact_rows(
    *,
    partner_tenant_id: str,
    tenant_id: str,
    snapshot_date: date,
    synced_at: datetime,
    graph_skus: Sequence[Mapping[str, Any]],
    partner_center_skus: Sequence[Mapping[str, Any]] | None,
    catalog: SkuCatalog,
    source: PayloadSource = "graph",
) -> FactRows:
    """One row per skuId of a tenant's Graph `subscribedSkus`, every unit count within int64.

    `source` is where the counts came from, kept on every row: 'graph', or 'partner_center' for
    Partner Center's `subscribedskus` read in Graph's shape when Graph cannot be read.

    Graph is the source of counts; Partner Center only improves `product_name` (its
    `productSku.name` for the same id), then the catalog, then the part number
    (`product_name_source` says which). Partner Center SKUs that Graph does not list are ignored.

    Duplicate skuIds: newer tenants can return one object per billing account for the same skuId
    (`accountId`). The table's key is (snapshot date, partner, tenant, sku), and the question
    analysts ask is "how many units does this customer have", so the counts of distinct objects
    are **summed**, `billing_accounts` says how many were combined, and `capability_status` is
    the most usable one (`CAPABILITY_PRECEDENCE`). An object is identified by its `id` (else
    `accountId`); the same object seen twice (a paging overlap) counts once if identical and is
    rejected if it differs, so nothing is double-counted silently. Differing part numbers for one
    skuId are rejected, and so is a sum beyond int64. A SKU object that does not validate is
    skipped with its reason.
    """
    partner = _guid(partner_tenant_id, "partner_tenant_id", "partner")
    tenant = _guid(tenant_id, "tenant_id", "tenant")
    synced = utc_naive(synced_at)
    skipped: list[SkippedRecord] = []
    pc_names = _partner_center_names(partner_center_skus, tenant, skipped)

    objects: dict[tuple[str, str | None], dict[str, Any]] = {}
    for place, item in _each_record(graph_skus, "subscribedSkus", tenant, skipped):
        if (row := _parsed(_graph_sku_row, item, place, tenant, skipped)) is None:
            continue
        identity = (row["sku_id"], row.pop("object_id"))
        if identity in objects and objects[identity] != row:
            raise MalformedPayload(
                f"{place.where} of tenant {tenant} repeats object "
                f"{identity[1] or identity[0]} with different values."
            )
        objects[identity] = row

    combined: dict[str, dict[str, Any]] = {}
    for row in objects.values():
        if (total := combined.get(row["sku_id"])) is None:
            combined[row["sku_id"]] = {**row, "billing_accounts": 1}
            continue
        if total["sku_part_number"] != row["sku_part_number"]:
            raise MalformedPayload(
                f"subscribedSkus of tenant {tenant} give skuId {row['sku_id']} two part numbers."
            )
        for column in (*_PREPAID_KEYS.values(), "consumed_units"):
            total[column] = _checked_sum(total[column], row[column], column, row["sku_id"], tenant)
        total["billing_accounts"] += 1
        total["capability_status"] = min(
            total["capability_status"], row["capability_status"], key=_capability_rank
        )

    rows = []
    for sku_id in sorted(combined):
        fact = combined[sku_id]
        if sku_id in pc_names:
            name, name_source = pc_names[sku_id], NAME_SOURCE_PARTNER_CENTER
        else:
            name, name_source = catalog.name_for(sku_id, fact["sku_part_number"])
        fact.update(
            snapshot_date=snapshot_date,
            partner_tenant_id=partner,
            tenant_id=tenant,
            product_name=name,
            product_name_source=name_source,
            source=source,
            # Both within 0..MAX_COUNT, so the difference is within int64 too.
            available_units=fact["enabled_units"] - fact["consumed_units"],
            synced_at=synced,
        )
        rows.append(_FACT_VALUES(fact))
    return FactRows(tuple(rows), tuple(skipped))


def graph_shaped_partner_center_skus(items: object) -> object:
    """Partner Center `subscribedskus` items in Graph's `subscribedSkus` shape, for
    `license_fact_rows(..., source="partner_center")` when Graph cannot be read.

    Unit for unit what Partner Center gives: `activeUnits` -> enabled, `suspendedUnits`,
    `warningUnits`, `consumedUnits`; `productSku` gives the id and part number. Partner Center has
    no locked-out count, so lockedOut is omitted (zero, as when Graph omits it). Its `totalUnits`
    (active + warning) and `availableUnits` (total - consumed) are not kept: `available_units` is
    enabled - consumed for every source. A value that is not a list of objects passes through
    unchanged, for `license_fact_rows` to reject (its reasons name Graph's fields)."""
    if not isinstance(items, list):
        return items
    return [_graph_shaped(item) if isinstance(item, Mapping) else item for item in items]


def _graph_shaped(item: Mapping[str, Any]) -> dict[str, Any]:
    product = item.get("productSku")
    product = product if isinstance(product, Mapping) else {}
    return {
        "skuId": product.get("id"),
        "skuPartNumber": product.get("skuPartNumber"),
        "capabilityStatus": item.get("capabilityStatus"),
        "consumedUnits": item.get("consumedUnits"),
        "prepaidUnits": {
            "enabled": item.get("activeUnits"),
            "suspended": item.get("suspendedUnits"),
            "warning": item.get("warningUnits"),
        },
    }


def _graph_sku_row(item: Mapping[str, Any], where: str, tenant: str) -> dict[str, Any]:
    sku_id = _guid(item.get("skuId"), f"{where}.skuId", tenant)
    where = f"{where} (skuId {sku_id})"
    prepaid = _mapping(item.get("prepaidUnits"), f"{where}.prepaidUnits", tenant, required=True)
    row: dict[str, Any] = {
        "sku_id": sku_id,
        "object_id": _text(item.get("id"), f"{where}.id", tenant)
        or _text(item.get("accountId"), f"{where}.accountId", tenant),
        "sku_part_number": _text(
            item.get("skuPartNumber"), f"{where}.skuPartNumber", tenant, required=True
        ),
        "capability_status": _text(
            item.get("capabilityStatus"), f"{where}.capabilityStatus", tenant, required=True
        ),
        "consumed_units": _count(item.get("consumedUnits"), f"{where}.consumedUnits", tenant),
    }
    for key, column in _PREPAID_KEYS.items():
        # lockedOut only exists in newer payloads; older ones mean zero by omitting it.
        value = prepaid.get(key, 0 if key == "lockedOut" else None)
        row[column] = _count(value, f"{where}.prepaidUnits.{key}", tenant)
    return row


def _partner_center_names(
    items: Sequence[Mapping[str, Any]] | None, tenant: str, skipped: list[SkippedRecord]
) -> dict[str, str]:
    names: dict[str, str] = {}
    for place, item in _each_record(items or [], "Partner Center subscribedskus", tenant, skipped):
        if (named := _parsed(_partner_center_name, item, place, tenant, skipped)) is not None:
            sku_id, name = named
            if name:
                names[sku_id] = name
    return names


def _partner_center_name(
    item: Mapping[str, Any], where: str, tenant: str
) -> tuple[str, str | None]:
    product = _mapping(item.get("productSku"), f"{where}.productSku", tenant, required=True)
    sku_id = _guid(product.get("id"), f"{where}.productSku.id", tenant)
    return sku_id, _text(product.get("name"), f"{where}.productSku.name", tenant)


@dataclass(frozen=True)
class _Place:
    """Where a record sits: its list and index (`where` is how reasons name it)."""

    list_name: str
    index: int

    @property
    def where(self) -> str:
        return f"{self.list_name}[{self.index}]"


def _each_record(
    items: object, field: str, tenant: str, skipped: list[SkippedRecord]
) -> Iterator[tuple[_Place, Mapping[str, Any]]]:
    """(place, record) for each object of a list; a non-object is skipped with its reason.

    A value that is not a list at all cannot be trusted as a whole: `MalformedPayload`.
    """
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise MalformedPayload(f"{field} for tenant {tenant} is not a list.")
    for index, item in enumerate(items):
        place = _Place(field, index)
        if isinstance(item, Mapping):
            yield place, item
        else:
            reason = f"{place.where} for tenant {tenant} is not an object."
            skipped.append(SkippedRecord(field, index, reason))


def _parsed(
    parse: Callable[[Mapping[str, Any], str, str], T],
    item: Mapping[str, Any],
    place: _Place,
    owner: str,
    skipped: list[SkippedRecord],
) -> T | None:
    """`parse(item, where, owner)`, or None with the reason recorded when the record is bad.

    `owner` is the tenant whose list it is; a bad field of a record already known to be about
    another tenant (a customer) keys the skipped record by that tenant."""
    try:
        return parse(item, place.where, owner)
    except MalformedPayload as exc:
        key = exc.tenant if exc.tenant != owner else None
        skipped.append(SkippedRecord(place.list_name, place.index, str(exc), key))
        return None


def _checked_sum(total: int, value: int, column: str, sku_id: str, tenant: str) -> int:
    """A running sum of unit counts that stays a BIGINT, or `MalformedPayload`."""
    result = total + value
    if result > MAX_COUNT:
        raise MalformedPayload(
            f"{column} of skuId {sku_id} of tenant {tenant} sums beyond {MAX_COUNT}."
        )
    return result


def _mapping(
    value: object, field: str, tenant: str, *, required: bool = False
) -> Mapping[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        problem = "is missing" if value is None else "is not an object"
        raise MalformedPayload(f"{field} of tenant {tenant} {problem}.", tenant=tenant)
    return value


def _guid(value: object, field: str, tenant: str) -> str:
    if not isinstance(value, str) or not _GUID.fullmatch(value):
        problem = "is missing" if value is None else "is not a GUID"
        raise MalformedPayload(f"{field} of tenant {tenant} {problem}.", tenant=tenant)
    return value.lower()


def _text(value: object, field: str, tenant: str, *, required: bool = False) -> str | None:
    """Stripped text, safe to store and print: control characters and lone surrogates become
    U+FFFD, and text past `MAX_TEXT_LENGTH` is cut (marked with an ellipsis)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise MalformedPayload(f"{field} of tenant {tenant} is missing.", tenant=tenant)
        return None
    if not isinstance(value, str):
        raise MalformedPayload(
            f"{field} of tenant {tenant} is a {type(value).__name__}, not text.", tenant=tenant
        )
    text = safe_text(value.strip())
    if len(text) > MAX_TEXT_LENGTH:
        text = text[: MAX_TEXT_LENGTH - 1] + "\u2026"
    return text


def _count(value: object, field: str, tenant: str) -> int:
    # bool is an int subclass and floats like 2.5 or 1e300 are not counts: accept real ints only.
    if value is None:
        raise MalformedPayload(f"{field} of tenant {tenant} is missing.", tenant=tenant)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedPayload(f"{field} of tenant {tenant} is not a whole number.", tenant=tenant)
    if not 0 <= value <= MAX_COUNT:
        raise MalformedPayload(
            f"{field} of tenant {tenant} is out of range (0 to {MAX_COUNT}).", tenant=tenant
        )
    return value


def _timestamp(value: object, field: str, tenant: str) -> datetime | None:
    text = _text(value, field, tenant)
    if text is None:
        return None
    try:
        return utc_naive(datetime.fromisoformat(text))
    except ValueError:
        raise MalformedPayload(
            f"{field} of tenant {tenant} is not an ISO 8601 time.", tenant=tenant
        ) from None


def _capability_rank(status: str) -> int:
    try:
        return CAPABILITY_PRECEDENCE.index(status)
    except ValueError:
        return len(CAPABILITY_PRECEDENCE)


def _first(values: Sequence[str | None]) -> str | None:
    return next((value for value in values if value), None)
