"""Licensed users from payloads to `user_licenses` rows (no servers): one row per user and SKU,
a group assignment named, a failed one kept with its error, Microsoft's "never" a NULL sign-in,
and a bad user skipped with a reason that does not name the person."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from sync365_pipeline.licensing.normalize import MalformedPayload
from sync365_pipeline.licensing.users import user_license_rows
from sync365_pipeline.warehouse.columns import USER_LICENSE_COLUMNS
from sync365_pipeline_tests.samples import PARTNER, SPB

TENANT = "a51c8ac0-98f8-4206-9aaa-ef644b70e6e6"
E3 = "05e9a617-0261-4cee-bb44-138d3ef5d965"
GROUP = "2f0c4a51-6b1e-4c7e-9d1a-3b5e8f7a6c42"
ADA = "6b4e1a2c-0f3d-4e5b-8a7c-9d1e2f3a4b5c"
BOB = "7c5f2b3d-1e4a-4f6c-9b8d-0e2f3a4b5c6d"
WHERE = {
    "partner_tenant_id": PARTNER,
    "tenant_id": TENANT,
    "snapshot_date": date(2026, 12, 1),
    "synced_at": datetime(2026, 12, 1, 6, 0, tzinfo=UTC),
}


def state(sku_id: str, group: str | None = None, **values: Any) -> dict[str, Any]:
    return {"skuId": sku_id, "assignedByGroup": group, "state": "Active", "error": "None", **values}


def user(user_id: str, upn: str, **values: Any) -> dict[str, Any]:
    return {
        "id": user_id,
        "userPrincipalName": upn,
        "displayName": upn.split("@")[0],
        "accountEnabled": True,
        "userType": "Member",
        "assignedLicenses": [],
        "licenseAssignmentStates": [],
        **values,
    }


def rows_by_key(items: object) -> dict[tuple[str, str], dict[str, Any]]:
    normalized = user_license_rows(items, **WHERE)
    return {
        (row["user_id"], row["sku_id"]): row
        for row in (
            dict(zip(USER_LICENSE_COLUMNS, values, strict=True)) for values in normalized.rows
        )
    }


def test_one_row_per_user_and_sku_with_group_and_failed_assignments() -> None:
    ada = user(
        ADA,
        "ada@contoso.example",
        assignedLicenses=[{"skuId": SPB.upper(), "disabledPlans": []}],
        licenseAssignmentStates=[
            state(SPB, error=None),
            state(SPB, GROUP),
            state(E3, GROUP, state="Error", error="CountViolation"),
        ],
        signInActivity={
            "lastSignInDateTime": "2026-11-20T08:00:00Z",
            "lastNonInteractiveSignInDateTime": "2026-11-28T09:30:00Z",
        },
    )
    bob = user(
        BOB,
        "bob@contoso.example",
        accountEnabled=False,
        assignedLicenses=[{"skuId": E3, "disabledPlans": []}],
        licenseAssignmentStates=[state(E3)],
        signInActivity={
            "lastSignInDateTime": "0001-01-01T00:00:00Z",
            "lastNonInteractiveSignInDateTime": "0001-01-01T00:00:00Z",
            "lastSuccessfulSignInDateTime": "",
        },
    )
    rows = rows_by_key([ada, bob])

    assert set(rows) == {(ADA, SPB), (ADA, E3), (BOB, E3)}
    direct_and_group = rows[(ADA, SPB)]
    assert direct_and_group["assigned_by_group"] == GROUP
    assert (direct_and_group["assignment_state"], direct_and_group["assignment_error"]) == (
        "Active",
        None,
    )
    assert direct_and_group["last_sign_in"] == datetime(2026, 11, 28, 9, 30), "the later one"
    failed = rows[(ADA, E3)]
    assert (failed["assignment_state"], failed["assignment_error"]) == ("Error", "CountViolation")
    never = rows[(BOB, E3)]
    assert never["last_sign_in"] is None
    assert never["account_enabled"] is False
    assert never["assigned_by_group"] is None


def test_a_bad_user_is_skipped_without_naming_anyone_and_a_repeat_keeps_the_first() -> None:
    good = user(ADA, "ada@contoso.example", assignedLicenses=[{"skuId": SPB}])
    bad = user("not-a-guid", "carol@contoso.example", assignedLicenses=[{"skuId": SPB}])
    repeated = user(ADA, "ada.again@contoso.example", assignedLicenses=[{"skuId": E3}])
    normalized = user_license_rows([good, bad, repeated, "text"], **WHERE)

    assert [(row[3], row[4], row[5]) for row in normalized.rows] == [
        (ADA, SPB, "ada@contoso.example")
    ]
    assert [record.list_index for record in normalized.skipped] == [1, 2, 3]
    reasons = " ".join(record.reason for record in normalized.skipped)
    assert "carol" not in reasons
    assert "ada" not in reasons


def test_a_list_that_is_not_a_list_cannot_be_trusted() -> None:
    with pytest.raises(MalformedPayload):
        user_license_rows({"value": []}, **WHERE)
