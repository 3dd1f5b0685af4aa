"""Which flags to raise and clear (`consent_changes`, `gdap_expiry_changes`,
`client_secret_changes`): plain frames in, plain flags out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.consent_flags import (
    client_secret_changes,
    consent_changes,
    gdap_expiry_changes,
)
from sync365_pipeline.warehouse import ConsentFlag
from sync365_pipeline_tests.samples import CONTOSO, FABRIKAM, NORTHWIND, OTHER_PARTNER, PARTNER

NOW = datetime(2026, 7, 2, 5, tzinfo=UTC)
EARLIER = datetime(2026, 7, 1, 5, tzinfo=UTC)
LOST = "access_lost"


def tenants(*rows: tuple[str, str, str | None]) -> pd.DataFrame:
    """Latest tenant statuses: (tenant_id, status, error_code) of PARTNER's tenants."""
    return pd.DataFrame(
        [
            {
                "partner_tenant_id": PARTNER,
                "tenant_id": tenant,
                "status": status,
                "error_code": code,
                "message": f"{code} said Microsoft" if code else None,
            }
            for tenant, status, code in rows
        ],
        columns=["partner_tenant_id", "tenant_id", "status", "error_code", "message"],
    )


def of_partner(*tenant_ids: str) -> set[tuple[str, str]]:
    """PARTNER's active customers among `tenant_ids`."""
    return {(PARTNER, tenant) for tenant in tenant_ids}


def partner(status: str | None = None, code: str | None = None) -> pd.DataFrame:
    """PARTNER's latest sign-in outcome (none at all when `status` is None)."""
    rows = [] if status is None else [(PARTNER, status, code, None)]
    return pd.DataFrame(rows, columns=["partner_tenant_id", "status", "error_code", "message"])


def open_flag(tenant: str | None, status: str = "consent_revoked") -> ConsentFlag:
    return ConsentFlag(PARTNER, tenant, status, raised_at=EARLIER)


def test_an_access_loss_raises_a_flag_with_microsofts_code_and_message() -> None:
    changes = consent_changes(
        tenants((CONTOSO, "ok", None), (FABRIKAM, "consent_revoked", "AADSTS65001")),
        partner("ok"),
        [],
        NOW,
        active_customers=of_partner(CONTOSO, FABRIKAM),
    )

    (flag,) = changes.raised
    assert flag == ConsentFlag(
        PARTNER,
        FABRIKAM,
        "consent_revoked",
        raised_at=NOW,
        error_code="AADSTS65001",
        message="AADSTS65001 said Microsoft",
    )
    assert changes.cleared == []


@pytest.mark.parametrize(
    "status",
    sorted(status.value for status in TenantStatus if status.is_access_loss),
)
def test_every_access_loss_status_raises_and_an_open_flag_is_not_raised_again(status: str) -> None:
    statuses = tenants((CONTOSO, status, "X"))

    first = consent_changes(statuses, partner(), [], NOW, active_customers=of_partner(CONTOSO))
    again = consent_changes(
        statuses, partner(), [open_flag(CONTOSO, status)], NOW, active_customers=of_partner(CONTOSO)
    )

    assert [(flag.tenant_id, flag.status) for flag in first.raised] == [(CONTOSO, status)]
    assert (again.raised, again.cleared) == ([], [])


@pytest.mark.parametrize("status", ["error", "throttled", "tenant_gone"])
def test_a_fault_that_is_not_an_access_loss_neither_raises_nor_clears(status: str) -> None:
    changes = consent_changes(
        tenants((CONTOSO, status, "X"), (FABRIKAM, status, "X")),
        partner(),
        [open_flag(FABRIKAM)],
        NOW,
        active_customers=of_partner(CONTOSO, FABRIKAM),
    )

    assert (changes.raised, changes.cleared) == ([], [])


def test_ok_again_clears_the_open_flag_only() -> None:
    changes = consent_changes(
        tenants((CONTOSO, "ok", None), (FABRIKAM, "ok", None)),
        partner("ok"),
        [open_flag(CONTOSO)],
        NOW,
        active_customers=of_partner(CONTOSO, FABRIKAM),
    )

    assert changes.raised == []
    assert changes.cleared == [(PARTNER, CONTOSO, LOST)]


def test_a_departed_customer_raises_nothing_and_its_open_flag_is_cleared() -> None:
    changes = consent_changes(
        tenants((CONTOSO, "consent_revoked", "AADSTS65001"), (FABRIKAM, "mfa_required", "X")),
        partner("ok"),
        [open_flag(CONTOSO)],
        NOW,
        active_customers=set(),
    )

    assert changes.raised == []
    assert changes.cleared == [(PARTNER, CONTOSO, LOST)]


def test_a_tenant_one_partner_left_and_another_still_reaches_is_two_customers() -> None:
    statuses = pd.concat(
        [
            tenants((CONTOSO, "consent_revoked", "AADSTS65001")),
            tenants((CONTOSO, "access_removed", "X")).assign(partner_tenant_id=OTHER_PARTNER),
        ]
    )
    changes = consent_changes(
        statuses,
        partner("ok"),
        [open_flag(CONTOSO)],
        NOW,
        active_customers={(OTHER_PARTNER, CONTOSO)},  # PARTNER's Contoso departed
    )

    assert [flag.key for flag in changes.raised] == [(OTHER_PARTNER, CONTOSO, LOST)]
    assert changes.cleared == [(PARTNER, CONTOSO, LOST)]


@pytest.mark.parametrize(
    ("status", "raised"),
    [
        ("refresh_token_expired", True),
        ("refresh_token_revoked", True),
        ("invalid_client", True),
        ("error", False),
        ("throttled", False),
        ("ok", False),
    ],
)
def test_partner_level_loss_of_consent_is_a_flag_without_a_tenant(
    status: str, raised: bool
) -> None:
    changes = consent_changes(
        tenants(), partner(status, "AADSTS700082"), [], NOW, active_customers=set()
    )

    expected = [(PARTNER, None, status)] if raised else []
    assert [(f.partner_tenant_id, f.tenant_id, f.status) for f in changes.raised] == expected
    assert changes.cleared == []


def test_the_partner_signing_in_again_clears_its_flag() -> None:
    changes = consent_changes(
        tenants(),
        partner("ok"),
        [open_flag(None, "refresh_token_expired")],
        NOW,
        active_customers=set(),
    )

    assert (changes.raised, changes.cleared) == ([], [(PARTNER, None, LOST)])


def test_missing_codes_and_messages_become_none_not_nan() -> None:
    changes = consent_changes(
        tenants((CONTOSO, "access_removed", None)),
        partner(),
        [],
        NOW,
        active_customers=of_partner(CONTOSO),
    )

    (flag,) = changes.raised
    assert (flag.error_code, flag.message) == (None, None)


# -- expiry flags --------------------------------------------------------------------------------

GDAP = "gdap_expiring"
SECRET = "client_secret_expiring"
OTHER_CUSTOMER = "0e0e0e0e-0000-4000-8000-00000000000e"


def gdap_ends(*rows: tuple[str, float, bool | None]) -> pd.DataFrame:
    """Active customers of PARTNER whose GDAP relationship ends: (tenant, days from NOW,
    auto-extends)."""
    return pd.DataFrame(
        [
            {
                "partner_tenant_id": PARTNER,
                "tenant_id": tenant,
                "display_name": None,
                "gdap_status": "active" if days > 0 else "expired",
                "gdap_end_date": (NOW + timedelta(days=days)).replace(tzinfo=None),
                "gdap_auto_extend": auto_extend,
            }
            for tenant, days, auto_extend in rows
        ]
    )


def secrets(*rows: tuple[float | None, bool | None], partner_id: str = PARTNER) -> pd.DataFrame:
    """One partner's latest check of its app's secrets: (days from NOW to the end, in use);
    (None, None) is a check that could not read them."""
    return pd.DataFrame(
        [
            {
                "partner_tenant_id": partner_id,
                "checked_at": EARLIER.replace(tzinfo=None),
                "key_id": None if in_use is None else f"0000000{index}-0000-4000-8000-000000000000",
                "display_name": None if in_use is None else f"secret {index}",
                "end_date": None
                if days is None
                else (NOW + timedelta(days=days)).replace(tzinfo=None),
                "in_use": in_use,
                "message": "Graph refused: Application.Read.All" if in_use is None else None,
            }
            for index, (days, in_use) in enumerate(rows)
        ]
    )


def expiry_flag(tenant: str | None, kind: str) -> ConsentFlag:
    return ConsentFlag(PARTNER, tenant, "expiring", raised_at=EARLIER, kind=kind)  # type: ignore[arg-type]


def test_gdap_ending_within_30_days_without_auto_extend_or_ended_raises() -> None:
    changes = gdap_expiry_changes(
        gdap_ends(
            (CONTOSO, 9, False),  # ends soon, will not extend
            (FABRIKAM, 20, True),  # ends soon but extends itself
            (NORTHWIND, -3, True),  # ended: it did not extend, whatever it said
            (OTHER_CUSTOMER, 31, False),  # not within the notice yet
        ),
        [],
        NOW,
    )

    assert [(flag.tenant_id, flag.kind, flag.status) for flag in changes.raised] == [
        (CONTOSO, GDAP, "expiring"),
        (NORTHWIND, GDAP, "expired"),
    ]
    soon, ended = changes.raised
    assert soon.ends_at == datetime(2026, 7, 11, 5)
    assert soon.message == (
        "The GDAP relationship ends on 2026-07-11 (in 9 days) and does not extend itself."
    )
    assert ended.message == (
        "The GDAP relationship ended on 2026-06-29 (3 days ago) and did not extend itself."
    )
    assert changes.cleared == []


def test_an_unknown_auto_extend_counts_as_not_extending() -> None:
    changes = gdap_expiry_changes(gdap_ends((CONTOSO, 5, None)), [], NOW)
    assert [flag.tenant_id for flag in changes.raised] == [CONTOSO]


def test_gdap_flag_stays_open_without_repeat_and_clears_when_renewed_extended_or_departed() -> None:
    still_due = gdap_expiry_changes(
        gdap_ends((CONTOSO, 8, False)), [expiry_flag(CONTOSO, GDAP)], NOW
    )
    assert (still_due.raised, still_due.cleared) == ([], [])

    open_flags = [
        expiry_flag(CONTOSO, GDAP),
        expiry_flag(FABRIKAM, GDAP),
        expiry_flag(NORTHWIND, GDAP),
    ]
    settled = gdap_expiry_changes(
        gdap_ends((CONTOSO, 400, False), (FABRIKAM, 8, True)),  # renewed; auto-extend turned on
        open_flags,
        NOW,  # NORTHWIND departed: not among the active customers
    )
    assert settled.raised == []
    assert sorted(settled.cleared) == sorted(
        [(PARTNER, CONTOSO, GDAP), (PARTNER, FABRIKAM, GDAP), (PARTNER, NORTHWIND, GDAP)]
    )


def test_expiry_and_access_flags_of_one_customer_are_independent() -> None:
    access = consent_changes(
        tenants((CONTOSO, "ok", None)),
        partner("ok"),
        [expiry_flag(CONTOSO, GDAP)],
        NOW,
        active_customers=of_partner(CONTOSO),
    )
    expiry = gdap_expiry_changes(gdap_ends((CONTOSO, 9, False)), [open_flag(CONTOSO)], NOW)

    assert (access.raised, access.cleared) == ([], []), "ok does not clear an expiry flag"
    assert [flag.key for flag in expiry.raised] == [(PARTNER, CONTOSO, GDAP)]
    assert expiry.cleared == [], "an expiry check does not clear a lost-access flag"


def test_the_secret_in_use_ending_within_30_days_raises_a_partner_flag() -> None:
    changes = client_secret_changes(secrets((20, True), (-45, False), (700, False)), [], NOW)

    (flag,) = changes.raised
    assert (flag.key, flag.status) == ((PARTNER, None, SECRET), "expiring")
    assert flag.message == (
        'The app\'s client secret in use ("secret 0" key id '
        "00000000-0000-4000-8000-000000000000) ends on 2026-07-22 (in 20 days)."
    )
    assert changes.cleared == []


def test_a_later_secret_not_in_use_raises_and_a_later_one_in_use_clears() -> None:
    not_yet = client_secret_changes(secrets((10, True), (700, False)), [], NOW)
    assert [flag.key for flag in not_yet.raised] == [(PARTNER, None, SECRET)]

    renewed = client_secret_changes(
        secrets((10, False), (700, True)), [expiry_flag(None, SECRET)], NOW
    )
    assert (renewed.raised, renewed.cleared) == ([], [(PARTNER, None, SECRET)])


def test_an_ended_secret_raises_expired_and_several_in_use_count_by_the_last_to_end() -> None:
    ended = client_secret_changes(secrets((-1, True)), [], NOW)
    assert [flag.status for flag in ended.raised] == ["expired"]

    ambiguous = client_secret_changes(secrets((5, True), (300, True)), [], NOW)
    assert ambiguous.raised == []


def test_unknown_secrets_neither_raise_nor_clear() -> None:
    flags = [expiry_flag(None, SECRET)]
    unreadable = client_secret_changes(secrets((None, None)), flags, NOW)
    none_in_use = client_secret_changes(secrets((3, False)), flags, NOW)
    other_partner = client_secret_changes(secrets((3, True), partner_id=OTHER_PARTNER), flags, NOW)

    assert (unreadable.raised, unreadable.cleared) == ([], [])
    assert (none_in_use.raised, none_in_use.cleared) == ([], [])
    assert [flag.key for flag in other_partner.raised] == [(OTHER_PARTNER, None, SECRET)]
    assert other_partner.cleared == [], "PARTNER's flag is not the other partner's to clear"
