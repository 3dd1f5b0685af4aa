"""Which flags to raise and clear (`consent_changes`): plain frames in, plain flags out."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.consent_flags import consent_changes
from sync365_pipeline.warehouse import ConsentFlag
from sync365_pipeline_tests.samples import CONTOSO, FABRIKAM, OTHER_PARTNER, PARTNER

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
