"""Plain rows the pipeline hands to the warehouse (and gets back from it). No secrets: tokens never
reach these; `PartnerStatusRow` carries only facts about the token (expiry, account, MFA)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sync365_pipeline.core.status import TenantStatus

# Where a raw payload, and the license facts made from it, came from.
PayloadSource = Literal["graph", "partner_center"]


@dataclass(frozen=True)
class TenantStatusRow:
    """Outcome of one sync attempt for one tenant (`tenant_status`)."""

    partner_tenant_id: str
    tenant_id: str
    checked_at: datetime
    status: TenantStatus
    error_code: str | None = None
    message: str | None = None
    sync_id: str | None = None


@dataclass(frozen=True)
class DatasetStatusRow:
    """Outcome of one attempt at one dataset beside a tenant's SKUs (`dataset_status`)."""

    partner_tenant_id: str
    tenant_id: str
    dataset: str  # warehouse.columns.DATASETS
    checked_at: datetime
    status: TenantStatus
    error_code: str | None = None
    message: str | None = None
    sync_id: str | None = None


@dataclass(frozen=True)
class DatasetSlice:
    """One (snapshot date, partner, tenant) slice of a dataset to replace (`dataset_snapshots`):
    written even when empty, so 'none that day' differs from 'not fetched that day'."""

    snapshot_date: date
    partner_tenant_id: str
    tenant_id: str
    dataset: str
    row_count: int


@dataclass(frozen=True)
class UserDeltaLink:
    """A customer's users delta link (`user_delta_links`): a Graph URL, only ever sent to the
    Graph origin and never logged whole (it names the directory's sync state); when it was
    obtained, and when the customer's users were last read in full (with sign-in activity)."""

    partner_tenant_id: str
    tenant_id: str
    delta_link: str = field(repr=False)
    obtained_at: datetime
    full_read_at: datetime


@dataclass(frozen=True)
class UserDeltaSlice:
    """Today's users slice of a customer made from its latest one and a delta round: the users
    the round named (changed or removed) leave it, the changed ones' new rows come in."""

    snapshot_date: date
    partner_tenant_id: str
    tenant_id: str
    named_users: tuple[str, ...]


@dataclass(frozen=True)
class CustomerAccessRow:
    """The partner's access to one customer as one sync attempt found it (`customer_access`):
    the roles its active GDAP assignments grant (None: not a GDAP customer, or not audited), what
    the sync did about CPV consent (`licensing.access.CpvConsent`), and when the access ends."""

    partner_tenant_id: str
    tenant_id: str
    checked_at: datetime
    cpv_consent: str
    gdap_roles: tuple[str, ...] | None = None
    can_read_licenses: bool | None = None
    gdap_end_date: datetime | None = None
    auto_extend: bool | None = None
    message: str | None = None
    sync_id: str | None = None


@dataclass(frozen=True)
class PartnerStatusRow:
    """Outcome of one partner-level sign-in (`partner_status`); e.g. ok, refresh_token_expired."""

    partner_tenant_id: str
    checked_at: datetime
    status: str
    error_code: str | None = None
    message: str | None = None
    token_expires_at: datetime | None = None
    account: str | None = None
    mfa: bool | None = None
    sync_id: str | None = None


@dataclass(frozen=True)
class RawPayload:
    """A raw Microsoft response kept for audit and re-normalization (`raw_subscribed_skus`)."""

    snapshot_date: date
    partner_tenant_id: str
    tenant_id: str
    source: PayloadSource
    fetched_at: datetime
    payload: Any  # JSON-serializable, or already-serialized JSON text


@dataclass(frozen=True)
class SkippedRecord:
    """One record of a Microsoft list that could not be used, and why (the value is never kept:
    it may be huge or hostile). `record_key` is the tenant the record is about, when that much
    of it could be read."""

    list_name: str  # e.g. customers, delegatedAdminRelationships, contracts, subscribedSkus
    list_index: int  # the record's place in the list as Microsoft sent it
    reason: str
    record_key: str | None = None


# What a flag is about: lost access (a status), or a GDAP relationship / the app's client secret
# that ends soon or has ended.
FlagKind = Literal["access_lost", "gdap_expiring", "client_secret_expiring"]
# (partner_tenant_id, tenant_id or None for the partner itself, kind): at most one open flag each.
FlagKey = tuple[str, str | None, FlagKind]


@dataclass(frozen=True)
class ConsentFlag:
    """Something a human must fix, raised once and cleared when fixed; `tenant_id` is None for a
    partner-level flag (the partner's own sign-in, the app's client secret). `ends_at`: when the
    relationship or secret of an expiry flag ends."""

    partner_tenant_id: str
    tenant_id: str | None
    status: str
    raised_at: datetime
    error_code: str | None = None
    message: str | None = None
    cleared_at: datetime | None = None
    flag_id: str | None = None
    kind: FlagKind = "access_lost"
    ends_at: datetime | None = None

    @property
    def key(self) -> FlagKey:
        return (self.partner_tenant_id, self.tenant_id, self.kind)


@dataclass(frozen=True)
class AppCredentialRow:
    """One client secret of a partner's app registration as Graph lists it (`app_credentials`):
    never the secret nor its hint; `in_use` says whether its hint is the configured secret's.
    A row with no `key_id` says why there is none (`message`: unreadable, or none listed)."""

    partner_tenant_id: str
    checked_at: datetime
    key_id: str | None = None
    display_name: str | None = None
    end_date: datetime | None = None
    in_use: bool | None = None
    message: str | None = None


@dataclass(frozen=True)
class CustomerChanges:
    """Tenant ids whose membership changed in one `upsert_customers` call (each list sorted)."""

    new: list[str]
    departed: list[str]
    returned: list[str]


@dataclass(frozen=True)
class CheckResultRow:
    """One evaluation of a data-quality check in a sync (`check_results`)."""

    sync_id: str
    asset: str
    check_name: str
    passed: bool
    severity: str
    blocking: bool
    offending: int
    summary: str
    remedy: str | None
    checked_at: datetime


class CustomerNames(dict[tuple[str, str], str]):
    """{(partner_tenant_id, tenant_id): display name} of the customers that have one, as the
    run's metadata, the checks and the flags' notices name customers (`label` gives the run
    metadata's "Name (tenant id)"); the commands and the views read `customers` themselves."""

    def label(self, partner_tenant_id: str, tenant_id: str) -> str:
        """'Name (tenant id)', or the bare id of a customer without a known name."""
        name = self.get((partner_tenant_id, tenant_id))
        return f"{name} ({tenant_id})" if name else tenant_id

    def labels(self, partner_tenant_id: str, tenant_ids: list[str]) -> list[str]:
        return [self.label(partner_tenant_id, tenant_id) for tenant_id in tenant_ids]
