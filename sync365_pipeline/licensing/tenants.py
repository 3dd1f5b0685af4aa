"""The concurrent per-tenant fetch: a failing customer is an outcome (data), never an exception.

Per tenant: Graph's subscribed SKUs; when the customer refused the token for want of the app's
CPV consent, that consent granted through Partner Center and the tenant retried; the GDAP access
audit (the roles its active relationships' assignments grant); and, when Graph could not be read
for a reseller customer, Partner Center's subscribed SKUs as the source of its facts. Beside
the SKUs, two datasets of their own status: Graph's `directory/subscriptions` once the SKUs were
read (same worker, same customer token), and a reseller customer's Partner Center subscriptions
(partner token only, so also when Graph failed). Only partner-level failures
(`PartnerAccessError`) propagate and stop the fetch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sync365_pipeline.catalog import SkuCatalog
from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.access import (
    LICENSE_READING_ROLES,
    CpvConsent,
    can_read_licenses,
    granted_roles,
)
from sync365_pipeline.microsoft import (
    ConsentOutcome,
    DeltaTokenExpired,
    ForeignDeltaLinkError,
    MicrosoftCloud,
    MicrosoftError,
    NoCommerceRelationship,
    PartnerAccessError,
    SignInActivityUnavailable,
)
from sync365_pipeline.microsoft.errors import tenant_outcome
from sync365_pipeline.microsoft.graph import MAX_SIGN_IN_PAGE
from sync365_pipeline.warehouse.columns import PARTNER_SUBSCRIPTIONS, TENANT_SUBSCRIPTIONS, USERS
from sync365_pipeline.warehouse.rows import UserDeltaLink

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
# Partner Center calls wait for the partner's rate limit (500 a minute by default, about 8 a
# second); two at a time keep up with it at Microsoft's latency.
PARTNER_CENTER_WORKERS = 2
# The token refusals that mean "the app has no consent in this tenant" (microsoft-apis-more.md
# §4.5): CPV consent through Partner Center is their fix.
CONSENT_REFUSALS = frozenset({"AADSTS65001", "AADSTS90099"})

NO_LICENSE_ROLE = (
    "No active GDAP access assignment grants a role that reads licences ("
    + ", ".join(LICENSE_READING_ROLES.values())
    + "): add one (Directory Readers is enough) to an access assignment of the relationship in "
    "Partner Center. The pipeline cannot grant a role."
)
NO_ACTIVE_RELATIONSHIP = (
    "The customer has no active GDAP relationship with the partner: ask the customer to approve "
    "a new one in Partner Center."
)
CONSENT_GRANTED = "The app had no CPV consent in the tenant; the sync granted it."
CONSENT_EXISTS_YET_REFUSED = (
    "Partner Center says the app is consented in the tenant already, yet the tenant still refuses "
    "its token: a human must look (grant the consent again in Partner Center, or ask whether the "
    "customer removed the app)."
)
NOT_SOLD_BY_PARTNER = (
    "Partner Center has no commerce relationship with the customer (code 20002): the partner "
    "sells it nothing."
)
NOT_A_RESELLER_CUSTOMER = "Not a reseller customer of the partner: it sells it nothing."
SKUS_UNREAD = "Not fetched: the tenant's SKUs could not be read from Graph."
# The user licences' codes for sign-in activity (`dataset_status.error_code`): asked and refused
# (no Entra ID P1, no AuditLog.Read.All, a role that cannot read it), and not asked because it
# was refused within the full read's week (`full_read_week_start`: the same calendar days, so a
# tenant that buys Entra ID P1 has its sign-ins with its next weekly full read); the users land
# either way, `last_sign_in` NULL.
SIGN_INS_UNAVAILABLE = "SignInActivityUnavailable"
SIGN_INS_NOT_ASKED = "SignInActivityNotAsked"
# The users delta query (microsoft-apis-more.md §3.5) refuses signInActivity and does not track
# licenseAssignmentStates (a user it lists carries their current states, but a change to the
# states alone does not list the user): between full reads `last_sign_in` keeps the full read's
# value, and so does the assignment state of a licence of a user the round did not list (or
# listed without states). A full read comes on the sync day the last one is this many days old
# (and whenever the link is missing or unusable), so both are at most 6 days stale with daily
# syncs and `inactive_licensed_users` (30 days without a sign-in) flags a returning user at most
# 6 days late. The delta link lives 7 days at Graph.
USERS_FULL_READ_EVERY_DAYS = 7
SIGN_INS_READ_WITHOUT = (
    "Users read without sign-in activity (last_sign_in NULL); asked again after "
    f"{USERS_FULL_READ_EVERY_DAYS} UTC days."
)
SIGN_INS_REMEMBERED = (
    "Sign-in activity not asked: Graph refused it within the last "
    f"{USERS_FULL_READ_EVERY_DAYS} UTC days (see the attempt with code {SIGN_INS_UNAVAILABLE}); "
    "last_sign_in NULL."
)
# A tenant whose users fit one page of the full read (with sign-ins) is read in full every day,
# without a delta link: 1 request with fresh sign-ins beats 1 delta request without (and the
# link's request on full-read days).
USERS_DELTA_ABOVE = MAX_SIGN_IN_PAGE
USERS_DELTA_UNUSABLE = "The users delta link could not be used, so every user was read:"
USERS_BY_DELTA = (
    "Read by the users delta query: {named} users changed or removed; sign-ins and unchanged "
    "assignment states as of the full read of {since}."
)
USERS_NO_DELTA_LINK = "Graph gave no users delta link, so the next sync reads every user again:"
CONSENT_DISABLED = (
    "The app has no CPV consent in the tenant and SYNC365_AUTO_CONSENT is off, so none was "
    "requested: grant it in Partner Center, or turn auto-consent on."
)


@dataclass(frozen=True)
class CustomerRoutes:
    """How the partner reaches one customer, as discovery recorded it (`customers`): what the
    fetch needs for the access audit and the Partner Center fallback. Small and secret-free: a
    chunk carries one per tenant through Dagster's storage. Only the id known: a customer whose
    routes are unknown, so neither audited nor fallen back for."""

    tenant_id: str
    relationship: str = ""  # the '+'-joined routes, e.g. dap+gdap+reseller
    gdap_relationship_ids: tuple[str, ...] = ()  # its ACTIVE GDAP relationships
    gdap_end_date: datetime | None = None
    auto_extend: bool | None = None

    @property
    def is_gdap(self) -> bool:
        return "gdap" in self.relationship.split("+")

    @property
    def is_reseller(self) -> bool:
        return "reseller" in self.relationship.split("+")


@dataclass(frozen=True)
class TenantAccess:
    """What one attempt learnt of the partner's access to a customer (its `customer_access`)."""

    cpv_consent: CpvConsent = CpvConsent.NOT_NEEDED
    gdap_roles: tuple[str, ...] | None = None  # None: not a GDAP customer, or the audit failed
    gdap_end_date: datetime | None = None
    auto_extend: bool | None = None
    messages: tuple[str, ...] = ()

    @property
    def can_read_licenses(self) -> bool | None:
        return None if self.gdap_roles is None else can_read_licenses(self.gdap_roles)

    @property
    def message(self) -> str:
        return " ".join(self.messages)

    def noting(self, message: str) -> TenantAccess:
        return replace(self, messages=(*self.messages, message)) if message else self


@dataclass(frozen=True)
class UsersRead:
    """How a users read went with the delta query: the link its next round starts from (None:
    Graph gave none, so the stored one is dropped) and when the request that returned it was
    sent, when the users were last read in full, and for a delta round every user id it named
    (changed or removed; None: a full read)."""

    delta_link: str | None = field(repr=False)
    obtained_at: datetime
    full_read_at: datetime
    named_users: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DatasetFetch:
    """One dataset fetched beside a tenant's SKUs (`warehouse.columns.DATASETS`): its records,
    or None and why not. Its failure is its own: the tenant's status and facts do not see it.
    User licences say how they were read (`users`): with a delta round the records are only the
    users it changed."""

    status: TenantStatus
    checked_at: datetime
    payload: list[dict[str, Any]] | None = None
    error_code: str | None = None
    message: str = ""
    users: UsersRead | None = None

    @classmethod
    def of(cls, call: Callable[[], list[dict[str, Any]]]) -> DatasetFetch:
        """Run `call`; a failure becomes the dataset's status. Only a partner-level failure
        propagates."""
        checked_at = utcnow()
        try:
            return cls(TenantStatus.OK, checked_at, call())
        except PartnerAccessError:
            raise
        except Exception as exc:
            return cls.failed(exc, checked_at)

    @classmethod
    def failed(cls, exc: Exception, checked_at: datetime) -> DatasetFetch:
        """The dataset's status after `exc`. A Partner Center 20002 means the partner sells the
        customer nothing: an empty list, ok."""
        if isinstance(exc, NoCommerceRelationship):
            return cls(TenantStatus.OK, checked_at, [], message=NOT_SOLD_BY_PARTNER)
        status, code, message = tenant_outcome(exc)
        return cls(status, checked_at, error_code=code, message=message)

    def noting(self, code: str, message: str) -> DatasetFetch:
        """A read that succeeded, with a code and a message that qualify it; a failure kept."""
        if self.status is not TenantStatus.OK:
            return self
        return replace(self, error_code=code, message=message)

    def adding(self, message: str) -> DatasetFetch:
        """The same outcome with `message` after its own (none: unchanged)."""
        return replace(self, message=f"{self.message} {message}".strip()) if message else self


@dataclass(frozen=True)
class TenantFetch:
    """What one customer tenant returned in one sync attempt.

    `partner_center_skus` holds Partner Center's answer: for names beside Graph's SKUs when the
    status is ok, else the fallback the tenant's facts come from."""

    tenant_id: str
    status: TenantStatus
    checked_at: datetime
    error_code: str | None = None
    message: str = ""
    graph_skus: list[dict[str, Any]] | None = None
    partner_center_skus: list[dict[str, Any]] | None = None
    access: TenantAccess = field(default_factory=TenantAccess)
    datasets: Mapping[str, DatasetFetch] = field(default_factory=dict)

    @property
    def fell_back(self) -> bool:
        """Graph could not be read, and Partner Center gave the tenant's SKUs instead."""
        return self.status is not TenantStatus.OK and self.partner_center_skus is not None

    @property
    def refused_for_consent(self) -> bool:
        return self.status is TenantStatus.CONSENT_REVOKED and self.error_code in CONSENT_REFUSALS


def fetch_tenant(
    cloud: MicrosoftCloud,
    tenant_id: str,
    *,
    users: bool = False,
    sign_in_activity: bool = True,
    users_link: UserDeltaLink | None = None,
    users_delta: bool = True,
) -> TenantFetch:
    """Fetch one tenant's SKUs from Graph, then (with the same token) its subscriptions and,
    with `users`, its licensed users (`fetch_users`, by delta from `users_link`, in full without
    a link unless `users_delta`); every failure
    inside this tenant's work, whatever its type (an odd token answer MSAL chokes on, JSON deep
    enough to exhaust recursion, a bug), becomes a typed status with a short, redacted message:
    the SKUs' is the tenant's, a dataset's only its own. Only a partner-level failure
    propagates."""
    read = (TENANT_SUBSCRIPTIONS, USERS) if users else (TENANT_SUBSCRIPTIONS,)
    checked_at = utcnow()
    try:
        graph_skus = cloud.graph.subscribed_skus(tenant_id)
    except PartnerAccessError:
        raise
    except Exception as exc:
        status, code, message = tenant_outcome(exc)
        unread = DatasetFetch(status, checked_at, error_code=code, message=SKUS_UNREAD)
        return TenantFetch(
            tenant_id, status, checked_at, code, message, datasets=dict.fromkeys(read, unread)
        )
    datasets = {
        TENANT_SUBSCRIPTIONS: DatasetFetch.of(
            lambda: cloud.graph.directory_subscriptions(tenant_id)
        )
    }
    if users:
        datasets[USERS] = fetch_users(
            cloud,
            tenant_id,
            sign_in_activity=sign_in_activity,
            known_link=users_link,
            delta=users_delta,
        )
    return TenantFetch(
        tenant_id, TenantStatus.OK, checked_at, graph_skus=graph_skus, datasets=datasets
    )


def fetch_users(
    cloud: MicrosoftCloud,
    tenant_id: str,
    *,
    sign_in_activity: bool,
    known_link: UserDeltaLink | None = None,
    delta: bool = True,
) -> DatasetFetch:
    """The tenant's licensed users: the changes since `known_link` (the delta round of the
    tenant's latest slice) while its last full read is younger than
    `USERS_FULL_READ_EVERY_DAYS`, else every licensed user (`_read_every_user`, which takes a
    link for the next sync unless `delta` is off: a tenant of one page). A link that is
    no good (`_link_refused`) means a full read in the same attempt; any other failure of the
    round is the dataset's status (the slice and the link stay for the next sync). Only a
    partner-level failure propagates."""
    checked_at = utcnow()
    unusable = ""
    if delta and known_link is not None and _full_read_is_recent(known_link, checked_at):
        try:
            changes = cloud.graph.users_delta(tenant_id, known_link.delta_link)
        except PartnerAccessError:
            raise
        except Exception as exc:
            if not _link_refused(exc):
                return DatasetFetch.failed(exc, checked_at)
            unusable = f"{USERS_DELTA_UNUSABLE} {tenant_outcome(exc)[2]}"
            log.warning("Users delta link of %s unusable (%s); reading every user", tenant_id, exc)
        else:
            # Like the full read's filter, a user holding no licence now has no rows.
            licensed = [user for user in changes.changed if user.get("assignedLicenses")]
            named = {user["id"].lower() for user in changes.changed}
            named.update(user_id.lower() for user_id in changes.removed)
            read = UsersRead(changes.delta_link, checked_at, known_link.full_read_at, tuple(named))
            since = f"{known_link.full_read_at.astimezone(UTC):%Y-%m-%d}"
            message = USERS_BY_DELTA.format(named=len(named), since=since)
            return DatasetFetch(TenantStatus.OK, checked_at, licensed, message=message, users=read)
    every = _read_every_user(cloud, tenant_id, sign_in_activity=sign_in_activity, take_link=delta)
    return every.adding(unusable)


def _read_every_user(
    cloud: MicrosoftCloud, tenant_id: str, *, sign_in_activity: bool, take_link: bool
) -> DatasetFetch:
    """Every licensed user of the tenant, with their sign-in activity unless `sign_in_activity`
    is off (refused within the last week), and with `take_link` a delta link taken first
    (`$deltatoken=latest`, one request), so the next round lists whatever changes from the read
    on. When Graph refuses
    sign-in activity the users are read again without it, and the status says why (code
    `SIGN_INS_UNAVAILABLE`, which the next syncs look for). Only a partner-level failure
    propagates."""
    checked_at = utcnow()
    try:
        delta_link = cloud.graph.latest_users_delta_link(tenant_id) if take_link else None
        no_link = ""
    except PartnerAccessError:
        raise
    except Exception as exc:  # the users can still be read; only the next sync pays for it
        delta_link, no_link = None, f"{USERS_NO_DELTA_LINK} {tenant_outcome(exc)[2]}"
    read = _licensed_users(cloud, tenant_id, sign_in_activity=sign_in_activity, at=checked_at)
    if read.payload is None:
        return read
    return replace(read, users=UsersRead(delta_link, checked_at, checked_at)).adding(no_link)


def _licensed_users(
    cloud: MicrosoftCloud, tenant_id: str, *, sign_in_activity: bool, at: datetime
) -> DatasetFetch:
    def read(with_sign_ins: bool) -> list[dict[str, Any]]:
        return cloud.graph.licensed_users(tenant_id, sign_in_activity=with_sign_ins)

    if not sign_in_activity:
        return DatasetFetch.of(lambda: read(False)).noting(SIGN_INS_NOT_ASKED, SIGN_INS_REMEMBERED)
    try:
        return DatasetFetch(TenantStatus.OK, at, read(True))
    except SignInActivityUnavailable as exc:
        refused = f"{tenant_outcome(exc)[2]} {SIGN_INS_READ_WITHOUT}"
        return DatasetFetch.of(lambda: read(False)).noting(SIGN_INS_UNAVAILABLE, refused)
    except PartnerAccessError:
        raise
    except Exception as exc:
        return DatasetFetch.failed(exc, at)


def _link_refused(exc: Exception) -> bool:
    """Whether a delta round's failure means its link is no good (expired, reset, refused as a
    bad request, or off the Graph origin), rather than that Graph could not answer now."""
    if isinstance(exc, DeltaTokenExpired | ForeignDeltaLinkError):
        return True
    return isinstance(exc, MicrosoftError) and exc.http_status == 400


def full_read_week_start(now: datetime) -> datetime:
    """Midnight UTC of the first of the `USERS_FULL_READ_EVERY_DAYS` UTC calendar days ending
    with `now`'s: a full read, or a refusal of sign-in activity, since then is recent. Calendar
    days, so a daily sync a few minutes earlier than last week's still reads all, and one rule
    for both, so a refused tenant is asked for sign-ins with its next full read."""
    first_day = now.astimezone(UTC).date() - timedelta(days=USERS_FULL_READ_EVERY_DAYS - 1)
    return datetime.combine(first_day, time(), tzinfo=UTC)


def _full_read_is_recent(link: UserDeltaLink, now: datetime) -> bool:
    """Whether the tenant's last full read falls within the week of `full_read_week_start`."""
    return link.full_read_at >= full_read_week_start(now)


def audit_access(cloud: MicrosoftCloud, customer: CustomerRoutes) -> TenantAccess:
    """The roles the active access assignments of the customer's active GDAP relationships grant:
    one request per relationship, with the partner's Graph token. A failure is recorded in the
    message and leaves the roles unknown; it never fails the tenant."""
    access = TenantAccess(gdap_end_date=customer.gdap_end_date, auto_extend=customer.auto_extend)
    if not customer.is_gdap:
        return access
    if not customer.gdap_relationship_ids:
        return replace(access, gdap_roles=()).noting(NO_ACTIVE_RELATIONSHIP)
    roles: set[str] = set()
    failures = []
    for relationship_id in customer.gdap_relationship_ids:
        try:
            roles.update(granted_roles(cloud.graph.access_assignments(relationship_id)))
        except Exception as exc:  # the audit informs; even a partner-level refusal is its own
            failures.append(
                f"The access audit of GDAP relationship {relationship_id} failed: "
                f"{tenant_outcome(exc)[2]}"
            )
    if failures:
        return replace(access, messages=tuple(failures))
    audited = replace(access, gdap_roles=tuple(sorted(roles)))
    return audited if audited.can_read_licenses else audited.noting(NO_LICENSE_ROLE)


def grant_consent(cloud: MicrosoftCloud, tenant_id: str, client_id: str) -> tuple[CpvConsent, str]:
    """Grant the app's CPV consent in the tenant (Partner Center, through its rate limiter) and
    release the tenant's token app, so the retry asks afresh (MSAL replays a refused request for
    60 s). Returns the outcome and, when it failed, why and what to do. Only a partner-level
    failure propagates."""
    try:
        outcome = cloud.partner_center.grant_application_consent(tenant_id, client_id)
    except PartnerAccessError:
        raise
    except Exception as exc:  # ConsentFailed carries its remedy; an outage says so
        return CpvConsent.FAILED, tenant_outcome(exc)[2]
    finally:
        cloud.tokens.release(tenant_id)
    if outcome is ConsentOutcome.ALREADY_GRANTED:
        return CpvConsent.ALREADY_GRANTED, ""
    return CpvConsent.GRANTED, ""


def needs_partner_center_names(fetched: TenantFetch, catalog: SkuCatalog) -> bool:
    """Whether the tenant holds a SKU the catalog cannot name (Partner Center's name is then the
    only friendly one). Records that are not SKUs are left to the normalization to report."""
    return any(
        isinstance(item, Mapping)
        and isinstance(sku_id := item.get("skuId"), str)
        and catalog.get(sku_id) is None
        for item in fetched.graph_skus or ()
    )


def partner_center_skus(
    cloud: MicrosoftCloud, tenant_id: str
) -> tuple[list[dict[str, Any]] | None, str]:
    """Partner Center's view of the tenant's SKUs, or None and why not (a redacted message).
    Only a partner-level failure propagates."""
    try:
        return cloud.partner_center.subscribed_skus(tenant_id), ""
    except PartnerAccessError:
        raise
    except Exception as exc:
        return None, tenant_outcome(exc)[2]


def fetch_tenants(
    cloud: MicrosoftCloud,
    tenants: Sequence[CustomerRoutes | str],
    *,
    max_workers: int,
    partner_center: bool = True,
    consent_app: str | None = None,
    catalog: SkuCatalog | None = None,
    users: bool = False,
    without_sign_ins: Collection[str] = (),
    users_links: Collection[UserDeltaLink] = (),
    users_without_delta: Collection[str] = (),
    on_progress: ProgressCallback | None = None,
) -> list[TenantFetch]:
    """Fetch many tenants with a bounded pool, in the order given; stop starting new ones on a
    partner-level failure or an interrupt, which then propagates. A bare tenant id is a
    customer of unknown routes.

    `partner_center` (a partner account) enables what goes through Partner Center, whose calls
    wait for the partner's rate limit and so run in a small pool of their own, the Graph work
    never waiting behind them: the names of SKUs `catalog` (the packaged one by default) cannot
    name, the fallback for reseller customers Graph could not be read for, the subscriptions
    of reseller customers (whatever Graph answered; a customer of known routes that is not a
    reseller customer gets an empty list without a request), and, with
    `consent_app` (the app's client id; None: auto-consent is off), the CPV consent of a
    customer that refused the token for want of it, after which that tenant is tried again.

    `users` reads each tenant's licensed users (`fetch_users`) in its Graph job, without
    sign-in activity for the tenants of `without_sign_ins` (refused within the last week), and
    by delta for the tenants of `users_links` (their latest slice's delta links), and in full
    without a delta link for those of `users_without_delta` (one page of users).
    """
    if not partner_center:
        catalog = None
    elif catalog is None:
        catalog = SkuCatalog.load()
    work = _TenantWork(
        cloud,
        max_workers=max_workers,
        partner_center=partner_center,
        consent_app=consent_app,
        catalog=catalog,
        users=users,
        without_sign_ins=frozenset(tenant.lower() for tenant in without_sign_ins),
        users_links={link.tenant_id.lower(): link for link in users_links},
        users_without_delta=frozenset(tenant.lower() for tenant in users_without_delta),
        on_progress=on_progress,
        total=len(tenants),
    )
    customers = [c if isinstance(c, CustomerRoutes) else CustomerRoutes(c) for c in tenants]
    return work.run(customers)


class _TenantWork:
    """One `fetch_tenants` call: its two pools, its results, and each tenant's steps as jobs.

    In the tenant pool (Graph): the first attempt with the access audit, and a retry after
    consent. In the Partner Center pool: the consent, the names, the fallback and the
    subscriptions (kept apart in `sold` until the end, as they may come before Graph's
    outcome). A job may submit the tenant's next step; the call returns once no job is left.
    """

    def __init__(
        self,
        cloud: MicrosoftCloud,
        *,
        max_workers: int,
        partner_center: bool,
        consent_app: str | None,
        catalog: SkuCatalog | None,
        users: bool,
        without_sign_ins: frozenset[str],
        users_links: Mapping[str, UserDeltaLink],
        users_without_delta: frozenset[str],
        on_progress: ProgressCallback | None,
        total: int,
    ) -> None:
        self.cloud = cloud
        self.partner_center = partner_center
        self.consent_app = consent_app
        self.catalog = catalog
        self.users = users
        self.without_sign_ins = without_sign_ins
        self.users_links = users_links
        self.users_without_delta = users_without_delta
        self.on_progress = on_progress
        self.total = total
        self.results: dict[str, TenantFetch] = {}
        self.sold: dict[str, DatasetFetch] = {}
        self.lock = threading.Lock()
        self.pending: list[Future[None]] = []
        self.tenant_pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tenant")
        self.partner_center_pool = ThreadPoolExecutor(
            max_workers=PARTNER_CENTER_WORKERS, thread_name_prefix="partner-center"
        )

    def run(self, customers: Sequence[CustomerRoutes]) -> list[TenantFetch]:
        try:
            for customer in customers:
                self._submit(self.tenant_pool, self._first_attempt, customer)
            while True:
                with self.lock:
                    batch, self.pending = self.pending, []
                if not batch:
                    break
                _wait_for_all(batch)
        except BaseException:
            # A partner-level failure, or SIGINT/SIGTERM (Dagster raises it here, in the main
            # thread): start no further job; those in flight end within their response deadline.
            for pool in (self.tenant_pool, self.partner_center_pool):
                pool.shutdown(wait=True, cancel_futures=True)
            raise
        for pool in (self.tenant_pool, self.partner_center_pool):
            pool.shutdown(wait=True)
        return [self._with_sold(self.results[customer.tenant_id]) for customer in customers]

    def _with_sold(self, fetched: TenantFetch) -> TenantFetch:
        if (sold := self.sold.get(fetched.tenant_id)) is None:
            return fetched
        return replace(fetched, datasets={**fetched.datasets, PARTNER_SUBSCRIPTIONS: sold})

    def _submit(self, pool: ThreadPoolExecutor, job: Callable[..., None], *args: Any) -> None:
        with self.lock:
            self.pending.append(pool.submit(job, *args))

    # -- the tenant pool -------------------------------------------------------------------

    def _first_attempt(self, customer: CustomerRoutes) -> None:
        if self.partner_center and customer.is_reseller:
            self._submit(self.partner_center_pool, self._subscriptions, customer.tenant_id)
        elif self.partner_center and customer.relationship:
            not_sold = DatasetFetch(TenantStatus.OK, utcnow(), [], message=NOT_A_RESELLER_CUSTOMER)
            with self.lock:
                self.sold[customer.tenant_id] = not_sold
        fetched = replace(
            self._graph(customer.tenant_id), access=audit_access(self.cloud, customer)
        )
        if not (self.partner_center and fetched.refused_for_consent):
            self._settle(customer, fetched)
        elif self.consent_app is None:
            access = replace(fetched.access, cpv_consent=CpvConsent.DISABLED)
            self._settle(customer, replace(fetched, access=access.noting(CONSENT_DISABLED)))
        else:
            self._submit(self.partner_center_pool, self._consent, customer, fetched)

    def _retry(self, customer: CustomerRoutes, access: TenantAccess) -> None:
        fetched = self._graph(customer.tenant_id)
        if access.cpv_consent is CpvConsent.GRANTED:
            access = access.noting(CONSENT_GRANTED)
        elif fetched.refused_for_consent:
            access = access.noting(CONSENT_EXISTS_YET_REFUSED)
        self._settle(customer, replace(fetched, access=access))

    def _graph(self, tenant_id: str) -> TenantFetch:
        try:
            return fetch_tenant(
                self.cloud,
                tenant_id,
                users=self.users,
                sign_in_activity=tenant_id.lower() not in self.without_sign_ins,
                users_link=self.users_links.get(tenant_id.lower()),
                users_delta=tenant_id.lower() not in self.users_without_delta,
            )
        finally:
            self.cloud.tokens.release(tenant_id)

    def _settle(self, customer: CustomerRoutes, fetched: TenantFetch) -> None:
        """The tenant's Graph outcome is final: record it, and hand Partner Center its part. A
        failed tenant's message carries what the access step learnt (a missing role, a consent
        that failed or exists yet is refused), which names the fix the status alone cannot."""
        if fetched.status is not TenantStatus.OK and fetched.access.message:
            fetched = replace(fetched, message=f"{fetched.message} {fetched.access.message}")
        with self.lock:
            self.results[customer.tenant_id] = fetched
            done = len(self.results)
        if self.catalog is not None and fetched.status is TenantStatus.OK:
            if needs_partner_center_names(fetched, self.catalog):
                self._submit(self.partner_center_pool, self._add_names, customer.tenant_id)
        elif self.partner_center and customer.is_reseller:
            self._submit(self.partner_center_pool, self._fall_back, customer.tenant_id)
        if self.on_progress is not None:
            self.on_progress(done, self.total)

    # -- the Partner Center pool -----------------------------------------------------------

    def _consent(self, customer: CustomerRoutes, refused: TenantFetch) -> None:
        assert self.consent_app is not None, "submitted only with auto-consent on"
        outcome, problem = grant_consent(self.cloud, customer.tenant_id, self.consent_app)
        access = replace(refused.access, cpv_consent=outcome).noting(problem)
        if outcome is CpvConsent.FAILED:
            self._settle(customer, replace(refused, access=access))
        else:
            self._submit(self.tenant_pool, self._retry, customer, access)

    def _subscriptions(self, tenant_id: str) -> None:
        sold = DatasetFetch.of(lambda: self.cloud.partner_center.subscriptions(tenant_id))
        with self.lock:
            self.sold[tenant_id] = sold

    def _add_names(self, tenant_id: str) -> None:
        skus, problem = partner_center_skus(self.cloud, tenant_id)
        if problem:
            log.info(
                "Partner Center SKUs unavailable for %s (%s); names from catalog",
                tenant_id,
                problem,
            )
        with self.lock:
            self.results[tenant_id] = replace(self.results[tenant_id], partner_center_skus=skus)

    def _fall_back(self, tenant_id: str) -> None:
        skus, problem = partner_center_skus(self.cloud, tenant_id)
        with self.lock:
            fetched = self.results[tenant_id]
            if skus is None:
                note = f"Partner Center's subscribedskus failed too: {problem}"
                fetched = replace(fetched, message=f"{fetched.message} {note}".strip())
            self.results[tenant_id] = replace(fetched, partner_center_skus=skus)


def _wait_for_all(futures: Sequence[Future[None]]) -> None:
    """Wait for every future; the first exception (if any) is raised at once."""
    finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
    for future in finished:
        if (error := future.exception()) is not None:
            raise error
