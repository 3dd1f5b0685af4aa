"""Per-account steps: one broken partner account is recorded and never stops the others.

The sign-in check lives here too: it is the first step of every account."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.microsoft import (
    MicrosoftCloud,
    MicrosoftError,
    PartnerAccessError,
    TenantAccessError,
    Throttled,
    UnclassifiedError,
)
from sync365_pipeline.microsoft.auth import TokenFacts
from sync365_pipeline.warehouse import (
    PartnerStatusRow,
    Warehouse,
    WarehouseLocked,
    WarehouseUnwritable,
)

T = TypeVar("T")


@dataclass
class AccountResults(Generic[T]):
    """Per-account results of one step; a failed account is recorded, the others go on."""

    succeeded: dict[str, T] = field(default_factory=dict)
    failed: dict[str, MicrosoftError] = field(default_factory=dict)


def for_each_account(
    accounts: Sequence[AccountSettings],
    warehouse: Warehouse,
    connect: Callable[[AccountSettings], AbstractContextManager[MicrosoftCloud]],
    work: Callable[[AccountSettings, MicrosoftCloud], T],
) -> AccountResults[T]:
    """Run one step for every account, each with its own client from `connect` (its session and
    token cache; closing it saves the rotated refresh token).

    Any failure of one account's work (a dead refresh token, a rejected secret, no MFA, a
    Partner Center outage that outlasted the retries, or an answer our code trips over) is written
    to `partner_status` with a remedy, where the consent sensor sees it, and does not stop the
    other accounts; the caller decides what to do when all of them failed. A failure of the
    warehouse itself (locked, disk full) is not the account's and propagates.
    """
    results: AccountResults[T] = AccountResults()
    for settings in accounts:
        with connect(settings) as cloud:
            try:
                results.succeeded[settings.name] = work(settings, cloud)
            except Exception as raised:
                exc = account_failure(settings, raised)
                if not isinstance(exc, MicrosoftError):
                    raise  # the warehouse's own failure
                warehouse.record_partner_status(AccountFailure.of(exc).row(settings.tenant_id))
                results.failed[settings.name] = exc
    return results


@dataclass(frozen=True)
class AccountFailure:
    """A failed account as plain data (its text redacted): what `partner_status` records, and
    what a step in another process hands to the one that writes it."""

    status: str
    code: str | None
    message: str
    retryable: bool

    @classmethod
    def of(cls, exc: MicrosoftError) -> AccountFailure:
        return cls(
            status=partner_status_of(exc),
            code=exc.code,
            message=f"{failure_problem(exc)} {failure_remedy(exc)}",
            retryable=exc.retryable,
        )

    def row(self, partner_tenant_id: str, sync_id: str | None = None) -> PartnerStatusRow:
        return PartnerStatusRow(
            partner_tenant_id=partner_tenant_id,
            checked_at=utcnow(),
            status=self.status,
            error_code=self.code,
            message=self.message,
            sync_id=sync_id,
        )


def account_failure(settings: AccountSettings, exc: Exception) -> Exception:
    """What an exception out of an account's work is: a Microsoft error or the warehouse's own
    failure as it is; anything else (an answer our code trips over, a bug) `UnclassifiedError`."""
    if isinstance(exc, MicrosoftError) or _is_warehouse_failure(exc):
        return exc
    failure = UnclassifiedError(
        f"Account {settings.name} failed unexpectedly ({type(exc).__name__}: {exc}).",
        code=type(exc).__name__,
    )
    failure.__cause__ = exc
    return failure


def _is_warehouse_failure(exc: Exception) -> bool:
    return isinstance(exc, WarehouseLocked | WarehouseUnwritable | OSError) or type(
        exc
    ).__module__.startswith("duckdb")


def failure_problem(exc: MicrosoftError) -> str:
    return exc.problem if isinstance(exc, PartnerAccessError) else str(exc)


def failure_remedy(exc: MicrosoftError) -> str:
    """What the operator does about an account that failed."""
    if isinstance(exc, PartnerAccessError):
        return exc.remedy
    if isinstance(exc, TenantAccessError):  # a direct account's own tenant refuses its app
        return (
            "Check the account's tenant_id, and that the app registration still exists in that "
            "tenant with admin consent granted (Entra admin center > Enterprise applications), "
            "then rerun."
        )
    if exc.retryable:
        return "This is usually temporary: the next run tries again."
    return "See docs/troubleshooting.md for this code, then rerun."


def check_sign_in(
    cloud: MicrosoftCloud, warehouse: Warehouse, settings: AccountSettings
) -> TokenFacts:
    """Prove the account can sign in, and record facts about its token (never the token).

    A partner redeems its refresh token for Partner Center (which must carry MFA); a direct
    tenant's app gets a Graph token with client credentials.
    """
    checked_at = utcnow()
    if settings.kind == "direct":
        facts = cloud.tokens.graph_token(settings.tenant_id).facts
    else:
        facts = cloud.tokens.partner_center_token().facts
    warehouse.record_partner_status(
        PartnerStatusRow(
            partner_tenant_id=settings.tenant_id,
            checked_at=checked_at,
            status="ok",
            token_expires_at=facts.expires_at,
            account=facts.account,
            mfa=facts.mfa,
        )
    )
    return facts


def partner_status_of(exc: MicrosoftError) -> str:
    """`partner_status.status` for an account that failed: the sign-in error in snake case, the
    tenant status that stopped a direct account, or `throttled` / `error` for a failure that is
    not a loss of access."""
    if isinstance(exc, TenantAccessError):
        return exc.status.value
    if isinstance(exc, PartnerAccessError):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    return TenantStatus.THROTTLED.value if isinstance(exc, Throttled) else TenantStatus.ERROR.value


def account_names(accounts: Sequence[AccountSettings]) -> dict[str, str]:
    """{partner tenant id: account name}: how a person knows each partner."""
    return {account.tenant_id: account.name for account in accounts}
