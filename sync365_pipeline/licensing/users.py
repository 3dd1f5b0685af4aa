"""Who holds each licence: Graph's licensed users checked and normalized into `user_licenses`
rows, one per user and SKU (microsoft-apis-more.md §3).

Pure, like `subscriptions`: the same field checks, and one bad user is skipped with its reason
(which names its place in the list, never the person) while the others land. A SKU counts for a
user when it is in `assignedLicenses` or in one of its `licenseAssignmentStates` (a group
assignment that failed, e.g. `CountViolation`, is only there: its row keeps the error). These are
personal data: only the columns of `USER_LICENSE_COLUMNS` are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from sync365_pipeline.core.clock import utc_naive
from sync365_pipeline.licensing.normalize import MalformedPayload, _each_record, _guid, _parsed
from sync365_pipeline.licensing.subscriptions import DatasetRows, _Fields
from sync365_pipeline.warehouse.columns import USER_LICENSE_COLUMNS
from sync365_pipeline.warehouse.rows import SkippedRecord

_USER_LICENSE_VALUES = itemgetter(*USER_LICENSE_COLUMNS)
# Microsoft's "never signed in" (§3.2): a zero date (or an empty string, which `_Fields` reads
# as none).
_NEVER = datetime(1, 1, 1)
# A successful assignment's `error` is null or the text "None" (both occur).
_NO_ERROR = (None, "None")


def user_license_rows(
    items: object,
    *,
    partner_tenant_id: str,
    tenant_id: str,
    snapshot_date: date,
    synced_at: datetime,
) -> DatasetRows:
    """One `user_licenses` row per licensed user and SKU; a user listed twice keeps its first
    record. A list that is not a list raises `MalformedPayload`."""
    tenant = _guid(tenant_id, "tenant_id", "tenant")
    common = {
        "snapshot_date": snapshot_date,
        "partner_tenant_id": _guid(partner_tenant_id, "partner_tenant_id", "partner"),
        "tenant_id": tenant,
        "synced_at": utc_naive(synced_at),
    }
    skipped: list[SkippedRecord] = []
    rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    seen: set[str] = set()
    for place, item in _each_record(items, "users", tenant, skipped):
        if (user := _parsed(_licensed_user, item, place, tenant, skipped)) is None:
            continue
        if user["user_id"] in seen:
            reason = f"{place.where} of tenant {tenant} repeats a user; first kept."
            skipped.append(SkippedRecord(place.list_name, place.index, reason))
            continue
        seen.add(user["user_id"])
        for sku_id, assignment in user.pop("skus").items():
            row = {**user, **assignment, **common, "sku_id": sku_id}
            rows[(user["user_id"], sku_id)] = _USER_LICENSE_VALUES(row)
    return DatasetRows(tuple(rows.values()), tuple(skipped))


def _licensed_user(item: Mapping[str, Any], where: str, tenant: str) -> dict[str, Any]:
    fields = _Fields(item, where, tenant)
    return {
        "user_id": fields.guid("id"),
        "user_principal_name": fields.text("userPrincipalName"),
        "display_name": fields.text("displayName"),
        "account_enabled": fields.flag("accountEnabled"),
        "user_type": fields.text("userType"),
        "last_sign_in": _last_sign_in(item.get("signInActivity"), where, tenant),
        "department": fields.text("department"),
        "office_location": fields.text("officeLocation"),
        "city": fields.text("city"),
        "skus": _assignments(item, where, tenant),
    }


def _assignments(item: Mapping[str, Any], where: str, tenant: str) -> dict[str, dict[str, Any]]:
    """{SKU id: assigned_by_group, assignment_state, assignment_error} of the user's licences.

    With several states for one SKU (direct and through a group): the group's id if any group
    assigns it, `Active` if any state is, and the first error reported."""
    by_sku: dict[str, list[Mapping[str, Any]]] = {}
    for key in ("assignedLicenses", "licenseAssignmentStates"):
        listed = item.get(key)
        if listed is None:
            continue
        if not isinstance(listed, list):
            raise MalformedPayload(
                f"{where}.{key} of tenant {tenant} is not a list.", tenant=tenant
            )
        for index, entry in enumerate(listed):
            if not isinstance(entry, Mapping):
                message = f"{where}.{key}[{index}] of tenant {tenant} is not an object."
                raise MalformedPayload(message, tenant=tenant)
            fields = _Fields(entry, f"{where}.{key}[{index}]", tenant)
            states = by_sku.setdefault(fields.guid("skuId"), [])
            if key == "licenseAssignmentStates":
                states.append(entry)
    return {sku_id: _assignment(states, where, tenant) for sku_id, states in by_sku.items()}


def _assignment(states: list[Mapping[str, Any]], where: str, tenant: str) -> dict[str, Any]:
    fields = [_Fields(state, f"{where}.licenseAssignmentStates", tenant) for state in states]
    groups = [group for field in fields if (group := field.optional_guid("assignedByGroup"))]
    kinds = [kind for field in fields if (kind := field.text("state"))]
    errors = [error for field in fields if (error := field.text("error")) not in _NO_ERROR]
    return {
        "assigned_by_group": groups[0] if groups else None,
        "assignment_state": "Active" if "Active" in kinds else (kinds[0] if kinds else None),
        "assignment_error": errors[0] if errors else None,
    }


def _last_sign_in(activity: object, where: str, tenant: str) -> datetime | None:
    """The later of the interactive and non-interactive last sign-ins; None when Graph gave no
    `signInActivity` (not asked, no Entra ID P1) or says never."""
    if activity is None:
        return None
    if not isinstance(activity, Mapping):
        raise MalformedPayload(f"{where}.signInActivity of tenant {tenant} is not an object.")
    fields = _Fields(activity, f"{where}.signInActivity", tenant)
    times = [
        moment
        for key in ("lastSignInDateTime", "lastNonInteractiveSignInDateTime")
        if (moment := fields.timestamp(key)) is not None and moment != _NEVER
    ]
    return max(times, default=None)
