"""Scenario files: who the partner is, which customers it has, what they own and what goes wrong.

A scenario is YAML or JSON validated by the pydantic models below; `ScenarioError` names every bad
field (`customers[3].skus[0].part_number: ...`). The format is documented in README.md.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sync365_pipeline.simulator.catalog import load_catalog

BUNDLED_SCENARIOS_DIR = Path(__file__).with_name("scenarios")

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Entra built-in role template ids (Directory Readers, License Administrator): the GDAP roles
# Partner Center documents for reading subscribed SKUs.
DIRECTORY_READERS_ROLE = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
LICENSE_ADMINISTRATOR_ROLE = "4d6ac14f-3453-41d0-bef9-a3e0c569773a"
# The roles that read a tenant's licences (microsoft-apis-more.md §5.3: the four Partner Center
# documents for subscribed SKUs, plus Global Administrator, which can do everything).
LICENSE_READING_ROLES = frozenset(
    {
        DIRECTORY_READERS_ROLE,
        LICENSE_ADMINISTRATOR_ROLE,
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",  # Global Reader
        "fe930be7-5e62-47db-91af-98c3a49a38b1",  # User Administrator
        "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
    }
)


class ScenarioError(ValueError):
    """A scenario file or dict is invalid; the message names each bad field and why."""


def _guid(value: str) -> str:
    lowered = value.strip().lower()
    if not _GUID.match(lowered):
        raise ValueError(f"{value!r} is not a GUID like 3b555118-da6a-4418-894f-7df1e2096870")
    return lowered


Guid = Annotated[str, AfterValidator(_guid)]
Service = Literal["identity", "graph", "partner_center", "any"]
RefreshTokenState = Literal["valid", "expired", "revoked"]
CapabilityStatus = Literal["Enabled", "Warning", "Suspended", "Deleted", "LockedOut"]
GdapStatus = Literal[
    "activating",
    "active",
    "approvalPending",
    "approved",
    "created",
    "expired",
    "expiring",
    "terminated",
    "terminating",
    "terminationRequested",
]


class _Model(BaseModel):
    """Unknown fields are errors: a typo in a scenario must not silently do nothing."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AccessFault(_Model):
    """Faults with no parameters: the tenant's access is broken in one specific way.

    consent_revoked, access_removed, mfa_required, blocked: token requests at the tenant fail
    (AADSTS65001, 50020, 50076, 53003); tenant_gone: the tenant no longer exists (AADSTS90002,
    Partner Center 60003); graph_forbidden: Graph answers 403 Authorization_RequestDenied.
    """

    type: Literal[
        "consent_revoked",
        "access_removed",
        "mfa_required",
        "blocked",
        "tenant_gone",
        "graph_forbidden",
    ]
    times: int | None = Field(default=None, ge=1, description="only the first N matching requests")


class ThrottleFault(_Model):
    type: Literal["throttle"]
    times: int | None = Field(default=None, ge=1)
    retry_after: int = Field(default=2, ge=0, le=3600)
    service: Service = "graph"


class ServerErrorFault(_Model):
    type: Literal["server_error"]
    times: int | None = Field(default=None, ge=1)
    status: Literal[500, 502, 503, 504] = 503
    retry_after: int | None = Field(default=None, ge=0, le=3600)
    service: Service = "graph"


class LatencyFault(_Model):
    type: Literal["latency"]
    ms: int = Field(ge=0, le=60_000)
    jitter_ms: int = Field(default=0, ge=0, le=60_000)
    service: Service = "any"


class MalformedFault(_Model):
    """A body the client cannot parse: cut in the middle (truncated) or an HTML error page."""

    type: Literal["malformed"]
    kind: Literal["truncated", "html"]
    times: int | None = Field(default=None, ge=1)
    status: int = Field(default=200, ge=200, le=599)
    service: Service = "graph"


class RedirectFault(_Model):
    """A 3xx to another origin: a hostile hop or a misconfigured proxy fishing for the token."""

    type: Literal["redirect"]
    location: str = Field(pattern=r"^https?://", description="absolute URL the answer points to")
    status: Literal[301, 302, 303, 307, 308] = 307
    times: int | None = Field(default=None, ge=1)
    service: Service = "graph"


class ResetFault(_Model):
    """The connection is reset (TCP RST) before any answer, as a flaky network or gateway does."""

    type: Literal["reset"]
    times: int | None = Field(default=None, ge=1)
    service: Service = "graph"


class TrickleFault(_Model):
    """The real answer, sent `chunk_bytes` at a time every `interval_ms`: a body that never ends."""

    type: Literal["trickle"]
    interval_ms: int = Field(default=2000, ge=1, le=60_000)
    chunk_bytes: int = Field(default=1, ge=1, le=65_536)
    times: int | None = Field(default=None, ge=1)
    service: Service = "graph"


class DeepJsonFault(_Model):
    """A 200 whose JSON nests `depth` arrays: valid JSON that exhausts a recursive parser."""

    type: Literal["deep_json"]
    depth: int = Field(default=100_000, ge=1, le=10_000_000)
    times: int | None = Field(default=None, ge=1)
    service: Service = "graph"


class EchoFault(_Model):
    """An error that echoes the request (its headers and form body) back, as some proxies do:
    the client secret, refresh token or bearer token come back inside the error text."""

    type: Literal["echo"]
    status: int = Field(default=400, ge=400, le=599)
    times: int | None = Field(default=None, ge=1)
    service: Service = "identity"


class OddBodyFault(_Model):
    """Exactly this JSON body and status instead of the real answer (odd token responses)."""

    type: Literal["odd_body"]
    body: Any = None
    status: int = Field(default=200, ge=200, le=599)
    times: int | None = Field(default=None, ge=1)
    service: Service = "identity"


class BadRecordFault(_Model):
    """One malformed record slipped into a list answer (`value` or `items`), beside good ones."""

    type: Literal["bad_record"]
    record: Any = Field(default_factory=lambda: {"id": 42, "displayName": ["not", "a", "name"]})
    times: int | None = Field(default=None, ge=1)
    service: Service = "graph"


HOSTILE_TEXT = "\x1b[2J\x1b]0;pwned\x07Evil\u202eCorp\x00\ud800" + "A" * 4000


class HostileTextFault(_Model):
    """Every display name in the answer replaced by `text`: terminal escapes, a NUL, a lone
    surrogate, a right-to-left override and a long tail by default."""

    type: Literal["hostile_text"]
    text: str = HOSTILE_TEXT
    times: int | None = Field(default=None, ge=1)
    service: Service = "any"


class HugeNumbersFault(_Model):
    """Every unit count in the answer set to `value` (int64's maximum by default): sums overflow."""

    type: Literal["huge_numbers"]
    value: int = 2**63 - 1
    times: int | None = Field(default=None, ge=1)
    service: Service = "graph"


Fault = Annotated[
    AccessFault
    | ThrottleFault
    | ServerErrorFault
    | LatencyFault
    | MalformedFault
    | RedirectFault
    | ResetFault
    | TrickleFault
    | DeepJsonFault
    | EchoFault
    | OddBodyFault
    | BadRecordFault
    | HostileTextFault
    | HugeNumbersFault,
    Field(discriminator="type"),
]


SubscriptionStatus = Literal["active", "pending", "suspended", "expired", "disabled", "deleted"]
Term = Literal["P1M", "P1Y", "P3Y"]
BillingCycle = Literal["monthly", "annual", "triennial", "none"]
# The fewest days each term can last: a term's start or end given in days must fall inside it.
TERM_MIN_DAYS = {"P1M": 28, "P1Y": 365, "P3Y": 1095}
# Which prepaid-unit count of the SKU (Graph `subscribedSku.prepaidUnits`) a subscription's
# units are in, by its Partner Center status (microsoft-apis-more.md §2.4: Warning is the grace
# period after a term ends, LockedOut a cancelled subscription).
UNIT_BUCKET_OF_STATUS: dict[str, str] = {
    "active": "enabled",
    "pending": "enabled",
    "expired": "warning",
    "suspended": "suspended",
    "disabled": "suspended",
    "deleted": "locked_out",
}
_BILLING_CYCLES_OF_TERM: dict[str, tuple[str, ...]] = {
    "P1M": ("monthly",),
    "P1Y": ("monthly", "annual"),
    "P3Y": ("monthly", "annual", "triennial"),
}


class NextTerm(_Model):
    """What a new-commerce subscription becomes at renewal (`scheduledNextTermInstructions`);
    a field omitted stays as it is."""

    quantity: int | None = Field(default=None, ge=1)
    term: Term | None = None
    billing_cycle: BillingCycle | None = None


class SubscriptionSpec(_Model):
    """One subscription behind some of a SKU's units (microsoft-apis-more.md §1, §2).

    Omitted fields give the common case: this partner sells it, new commerce (NCE), a one-year
    term billed monthly that renews itself, 120 days into its term (12 for a monthly term).
    `quantity` omitted: the units of its status's count that the SKU's other subscriptions leave.
    """

    seller: Literal["partner", "other_partner", "customer"] = Field(
        default="partner",
        description="partner: in this partner's Partner Center list; other_partner: another "
        "CSP's (Graph only); customer: bought directly or self-service (Graph only)",
    )
    owner_tenant_id: Guid | None = Field(
        default=None,
        description="Graph ownerTenantId for other_partner (default derived) or customer "
        "(default null)",
    )
    commerce: Literal["nce", "legacy"] = "nce"
    quantity: int | None = Field(default=None, ge=0)
    status: SubscriptionStatus = "active"
    term: Term = "P1Y"
    billing_cycle: BillingCycle | None = Field(default=None, description="monthly; trial: none")
    trial: bool = False
    auto_renew: bool | None = Field(default=None, description="true; trial or ended: false")
    term_started_days_ago: int | None = Field(default=None, ge=0)
    term_ends_in_days: int | None = Field(default=None, description="negative: ended")
    term_ends_on: date | None = Field(
        default=None,
        description="the term's last day, whatever today is: a term of a replayed past day "
        "(the demo's history) that ends before the simulator's start",
    )
    cancellation_window_days: int | None = Field(
        default=7, ge=0, description="NCE: days after the term starts; null: never cancellable"
    )
    renewals: int = Field(default=1, ge=0, description="terms before the current one")
    next_term: NextTerm | None = None
    friendly_name: str | None = Field(default=None, min_length=1)
    partner_id: str = Field(default="", description="the indirect reseller's MPN ID")

    @model_validator(mode="after")
    def _consistent(self) -> SubscriptionSpec:
        problems = []
        terms = ("term_started_days_ago", "term_ends_in_days", "term_ends_on")
        if sum(getattr(self, name) is not None for name in terms) > 1:
            problems.append(f"give one of {', '.join(terms)} at most")
        for name in ("term_started_days_ago", "term_ends_in_days"):
            days = getattr(self, name)
            if days is not None and days >= TERM_MIN_DAYS[self.term]:
                problems.append(
                    f"{name} must be less than {TERM_MIN_DAYS[self.term]} for {self.term}"
                )
        if (self.term_ends_in_days or 0) < 0 and self.unit_bucket() == "enabled":
            problems.append(f"the term of a {self.status} subscription has not ended")
        if self.trial and (self.commerce != "nce" or self.term != "P1M"):
            problems.append("a trial is a one-month (P1M) new-commerce subscription")
        if self.commerce == "legacy" and (self.term == "P3Y" or self.next_term is not None):
            problems.append("legacy subscriptions have P1M or P1Y terms and no next_term")
        if self.seller == "partner" and self.owner_tenant_id is not None:
            problems.append("owner_tenant_id is the partner's own for seller partner")
        if self.next_term is not None and not self.renews():
            problems.append("next_term needs a subscription that renews (auto_renew)")
        cycle = self.effective_billing_cycle()
        allowed = ("none",) if self.trial else _BILLING_CYCLES_OF_TERM[self.term]
        if cycle not in allowed:
            problems.append(f"billing_cycle {cycle} is not one of {allowed} for this term")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def effective_billing_cycle(self) -> str:
        if self.billing_cycle is not None:
            return self.billing_cycle
        return "none" if self.trial else "monthly"

    def renews(self) -> bool:
        """Auto-renew as given; by default on, except for trials and ended subscriptions."""
        if self.auto_renew is not None:
            return self.auto_renew
        return not self.trial and UNIT_BUCKET_OF_STATUS[self.status] == "enabled"

    def unit_bucket(self) -> str:
        return UNIT_BUCKET_OF_STATUS[self.status]


class SkuAssignment(_Model):
    """A SKU a tenant holds, named by `sku_id` or `part_number` (either resolves the other)."""

    sku_id: Guid | None = None
    part_number: str | None = None
    enabled: int = Field(default=0, ge=0)
    consumed: int = Field(default=0, ge=0)
    suspended: int = Field(default=0, ge=0)
    warning: int = Field(default=0, ge=0)
    locked_out: int = Field(default=0, ge=0)
    capability_status: CapabilityStatus | None = Field(
        default=None, description="derived from the unit counts when omitted"
    )
    subscriptions: list[SubscriptionSpec] = Field(
        default_factory=list,
        description="units not covered here: one default subscription per nonzero count",
    )

    @model_validator(mode="after")
    def _resolve_in_catalog(self) -> SkuAssignment:
        catalog = load_catalog()
        if self.sku_id is None and self.part_number is None:
            raise ValueError("give sku_id or part_number")
        product = (
            catalog.by_id(self.sku_id)
            if self.sku_id is not None
            else catalog.by_part_number(self.part_number or "")
        )
        if product is None:
            known = "sku_id" if self.sku_id is not None else "part_number"
            raise ValueError(
                f"{known} {self.sku_id or self.part_number!r} is not in the simulator's SKU "
                "catalog (sync365_pipeline/simulator/sku_catalog.json)"
            )
        if self.part_number is not None and self.part_number != product.part_number:
            raise ValueError(
                f"sku_id {product.sku_id} is {product.part_number}, not {self.part_number!r}"
            )
        # Bypass validate_assignment: re-running this validator from inside itself would recurse.
        self.__dict__["sku_id"] = product.sku_id
        self.__dict__["part_number"] = product.part_number
        return self

    @model_validator(mode="after")
    def _subscriptions_fit_units(self) -> SkuAssignment:
        """Graph's unit counts are the sums of the subscriptions' quantities, status by status:
        the quantities given must fit, and one subscription per count at most takes the rest."""
        for bucket in ("enabled", "warning", "suspended", "locked_out"):
            specs = [spec for spec in self.subscriptions if spec.unit_bucket() == bucket]
            given = sum(spec.quantity or 0 for spec in specs)
            if given > getattr(self, bucket):
                raise ValueError(
                    f"the subscriptions' quantities ({given}) exceed the SKU's {bucket} units "
                    f"({getattr(self, bucket)})"
                )
            if sum(spec.quantity is None for spec in specs) > 1:
                raise ValueError(f"only one {bucket} subscription can omit its quantity")
        return self

    def effective_capability_status(self) -> CapabilityStatus:
        """Graph's rule: Enabled while any unit is enabled, then grace (Warning), then the rest."""
        if self.capability_status is not None:
            return self.capability_status
        if self.enabled:
            return "Enabled"
        if self.warning:
            return "Warning"
        if self.suspended:
            return "Suspended"
        if self.locked_out:
            return "LockedOut"
        return "Deleted"


class _EndsAt(_Model):
    """Something with an end: absolute (`end_date_time`, UTC when naive) or `ends_in_days` from
    now (negative: ended), which keeps a scenario fresh over time; a year when neither."""

    end_date_time: datetime | None = None
    ends_in_days: int | None = None

    @model_validator(mode="after")
    def _one_end(self) -> _EndsAt:
        if self.end_date_time is not None and self.ends_in_days is not None:
            raise ValueError("give end_date_time or ends_in_days, not both")
        return self

    def end(self, now: datetime) -> datetime:
        if self.end_date_time is not None:
            end = self.end_date_time
            return end if end.tzinfo else end.replace(tzinfo=UTC)
        return now + timedelta(days=365 if self.ends_in_days is None else self.ends_in_days)


class AccessAssignment(_Model):
    """Roles a GDAP relationship grants to a security group of the partner (the SAM user is
    taken to be a member of every such group)."""

    roles: list[Guid]
    status: Literal["pending", "active", "deleting", "deleted", "error"] = "active"
    group_id: Guid | None = Field(default=None, description="derived from the tenant when omitted")


class GdapRelationship(_EndsAt):
    """A GDAP relationship.

    `access_assignments` omitted: one active assignment granting all of `roles`.
    """

    display_name: str | None = None
    status: GdapStatus = "active"
    duration: str = "P730D"
    auto_extend_duration: Literal["PT0S", "P0D", "P180D"] = "P180D"
    roles: list[Guid] = Field(
        default_factory=lambda: [DIRECTORY_READERS_ROLE, LICENSE_ADMINISTRATOR_ROLE]
    )
    access_assignments: list[AccessAssignment] | None = None

    def assignments(self) -> list[AccessAssignment]:
        if self.access_assignments is not None:
            return self.access_assignments
        return [AccessAssignment(roles=list(self.roles))]

    def reads_licenses(self, now: datetime) -> bool:
        """Live, with an active assignment of a licence-reading role (the assignment, not the
        relationship's role ceiling, is what grants access)."""
        return self.grants_access(now) and any(
            assignment.status == "active" and LICENSE_READING_ROLES & set(assignment.roles)
            for assignment in self.assignments()
        )

    def effective_status(self, now: datetime) -> GdapStatus:
        """A relationship past its end date is expired whatever the file says."""
        if self.status in ("active", "expiring") and self.end(now) <= now:
            return "expired"
        return self.status

    def grants_access(self, now: datetime) -> bool:
        return self.effective_status(now) in ("active", "expiring", "terminationRequested")


class UserMix(_Model):
    """How a tenant's users are generated: from a RNG seeded with the tenant id, so the same
    tenant always has the same users. Licensed users are exactly the SKUs' consumed units; the
    shares are of licensed users."""

    disabled_share: float = Field(default=0.05, ge=0, le=1, description="leavers: sign-in off")
    inactive_share: float = Field(default=0.1, ge=0, le=1, description="last sign-in 30+ days")
    never_signed_in_share: float = Field(default=0.03, ge=0, le=1)
    guest_share: float = Field(default=0.02, ge=0, le=1, description="licensed guests")
    group_share: float = Field(default=0.3, ge=0, le=1, description="licences from a group")
    shared_mailboxes: int = Field(default=1, ge=0, description="licensed shared mailboxes")
    unlicensed: int | None = Field(
        default=None, ge=0, le=1_000_000, description="users with no licence (None: a tenth)"
    )
    premium: bool | None = Field(
        default=None, description="Entra ID P1 (sign-in activity); None: whether a SKU has it"
    )


class Customer(_Model):
    """`consented: false`: the partner's app has no CPV consent in the tenant yet, so customer
    token requests fail (AADSTS90099 through GDAP, AADSTS65001 otherwise) until Partner Center's
    `applicationconsents` grants it; `consent_failure` makes that grant fail."""

    tenant_id: Guid
    display_name: str = Field(min_length=1)
    default_domain: str = Field(min_length=3)
    country: str = Field(default="US", min_length=2, max_length=2)
    relationship_to_partner: Literal[
        "reseller", "advisor", "syndication", "microsoft_support", "none"
    ] = "reseller"
    in_partner_center: bool = True
    dap: bool = Field(default=False, description="legacy DAP (AdminAgents) delegated access")
    gdap_relationships: list[GdapRelationship] = Field(default_factory=list)
    consented: bool = True
    consent_failure: Literal["access_denied", "server_error"] | None = None
    skus: list[SkuAssignment] = Field(default_factory=list)
    users: UserMix = Field(default_factory=UserMix)
    faults: list[Fault] = Field(default_factory=list)

    def has_any_relationship(self) -> bool:
        """Without any, the partner's user does not exist in the tenant (AADSTS50020)."""
        return self.dap or bool(self.gdap_relationships) or self.relationship_to_partner != "none"

    def has_delegated_access(self, now: datetime) -> bool:
        """Graph serves a partner user only through DAP or a live GDAP relationship whose
        assignments grant a licence-reading role."""
        return self.dap or any(rel.reads_licenses(now) for rel in self.gdap_relationships)

    def has_commerce_relationship(self) -> bool:
        """Whether the partner sells to the customer (Partner Center's subscriptions answer
        403 code 20002 otherwise)."""
        return self.in_partner_center and self.relationship_to_partner in (
            "reseller",
            "syndication",
        )

    def reached_through_gdap(self) -> bool:
        """The partner's user comes in as a GDAP delegated admin (no DAP)."""
        return not self.dap and bool(self.gdap_relationships)


class PasswordCredential(_EndsAt):
    """A client secret of the partner's app registration. `hint` omitted: this is the secret
    the scenario's `client_secret` is (hint = its first three characters); once it has ended,
    the token endpoint refuses it (AADSTS7000222)."""

    display_name: str | None = None
    hint: str | None = Field(default=None, min_length=3, max_length=3)
    key_id: Guid | None = None


class Partner(_Model):
    tenant_id: Guid
    domain: str = Field(min_length=3)
    display_name: str = "Contoso Partner"
    client_id: Guid
    client_secret: str = Field(min_length=8)
    app_name: str = "sync365"
    user_upn: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    user_object_id: Guid = "4988e250-5aee-482a-9136-6d269cb755c0"
    user_display_name: str = "Admin Agent"
    mfa: bool = Field(default=True, description="whether the consent sign-in carried MFA")
    refresh_token: str = Field(min_length=20)
    refresh_token_state: RefreshTokenState = "valid"
    password_credentials: list[PasswordCredential] = Field(
        default_factory=lambda: [PasswordCredential(display_name="sync365", ends_in_days=540)]
    )
    app_readable: bool = Field(
        default=True,
        description="false: Graph answers 403 for the app registration (no Application.Read.All)",
    )
    skus: list[SkuAssignment] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)


class Settings(_Model):
    page_size_customers: int = Field(default=500, ge=1, le=500)
    page_size_graph: int = Field(default=100, ge=1, le=999)
    # Partner Center documents no paging for subscriptions (one answer); a size pages them as
    # /v1/customers is paged, for clients that must cope if it ever does.
    page_size_subscriptions: int | None = Field(default=None, ge=1, le=500)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    latency_jitter_ms: int = Field(default=0, ge=0, le=60_000)
    access_token_lifetime_s: int = Field(default=3599, ge=1)
    device_code_interval_s: int = Field(default=5, ge=0, le=60)
    device_code_lifetime_s: int = Field(default=900, ge=1)
    # Keep every token issued, for tests that scan for them; off, memory does not grow with use.
    record_issued_tokens: bool = False
    # Graph users (microsoft-apis-more.md §3.1, §3.5, §3.6): the page cap with signInActivity
    # selected and what a larger `$top` gets (cap: pages of the cap; error: the 2023 400), the
    # delta page size (not documented), the delta token lifetime and how an expired one is
    # refused (400 syncStateNotFound or 410 Gone), and the identity throttling budgets.
    users_sign_in_page_cap: int = Field(default=500, ge=1, le=999)
    users_sign_in_over_cap: Literal["cap", "error"] = "cap"
    page_size_users_delta: int = Field(default=100, ge=1, le=999)
    delta_token_lifetime_s: int = Field(default=7 * 86_400, ge=0)
    delta_expired_answer: Literal["sync_state_not_found", "gone"] = "sync_state_not_found"
    identity_throttling: bool = False


class Generate(_Model):
    """Deterministic synthetic customers: the same seed gives the same tenants, names and SKUs."""

    count: int = Field(ge=0, le=100_000)
    seed: int = 0
    min_skus: int = Field(default=1, ge=0, le=20)
    max_skus: int = Field(default=6, ge=0, le=20)
    gdap_only_rate: float = Field(default=0.1, ge=0, le=1, description="not in Partner Center")
    expired_gdap_rate: float = Field(default=0.0, ge=0, le=1)
    fault_rate: float = Field(default=0.0, ge=0, le=1)
    fault_types: list[
        Literal["consent_revoked", "access_removed", "mfa_required", "graph_forbidden"]
    ] = Field(default_factory=lambda: ["consent_revoked", "access_removed", "graph_forbidden"])

    @model_validator(mode="after")
    def _sku_range(self) -> Generate:
        if self.min_skus > self.max_skus:
            raise ValueError("min_skus must not exceed max_skus")
        return self


class Scenario(_Model):
    name: str = "custom"
    description: str = ""
    partner: Partner
    settings: Settings = Field(default_factory=Settings)
    customers: list[Customer] = Field(default_factory=list)
    generate: Generate | None = None

    @model_validator(mode="after")
    def _unique_tenants(self) -> Scenario:
        seen = {self.partner.tenant_id: "partner.tenant_id"}
        domains = {self.partner.domain.lower(): "partner.domain"}
        for index, customer in enumerate(self.customers):
            where = f"customers[{index}]"
            if customer.tenant_id in seen:
                raise ValueError(f"{where}.tenant_id repeats {seen[customer.tenant_id]}")
            if customer.default_domain.lower() in domains:
                raise ValueError(
                    f"{where}.default_domain repeats {domains[customer.default_domain.lower()]}"
                )
            seen[customer.tenant_id] = f"{where}.tenant_id"
            domains[customer.default_domain.lower()] = f"{where}.default_domain"
        return self


def validate_scenario(data: object, source: str = "scenario") -> Scenario:
    """Validate a parsed scenario; raise `ScenarioError` listing every bad field."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(f"{source} is invalid:\n{describe_validation_error(error)}") from None


def describe_validation_error(error: ValidationError) -> str:
    """`customers[3].skus[0].part_number: ...` lines, one per problem."""
    lines = []
    for problem in error.errors():
        path = ""
        loc = problem["loc"]
        for position, part in enumerate(loc):
            if isinstance(part, int):
                path += f"[{part}]"
            elif (
                position >= 2
                and loc[position - 2] == "faults"
                and isinstance(loc[position - 1], int)
            ):
                continue  # the union branch pydantic chose (the fault's `type`) is not a field
            else:
                path += f".{part}" if path else str(part)
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"- {path or '(top level)'}: {message}")
    return "\n".join(lines)


def bundled_scenario_names() -> list[str]:
    return sorted(path.stem for path in BUNDLED_SCENARIOS_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a bundled scenario by name ("demo", "scale") or a .yaml/.yml/.json file by path."""
    path = Path(name_or_path)
    if str(name_or_path) in bundled_scenario_names():
        path = BUNDLED_SCENARIOS_DIR / f"{name_or_path}.yaml"
    elif not path.is_file():
        raise ScenarioError(
            f"scenario {str(name_or_path)!r} is neither a bundled scenario "
            f"({', '.join(bundled_scenario_names())}) nor a readable file"
        )
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ScenarioError(
            f"{path} is not valid {path.suffix.lstrip('.').upper()}: {error}"
        ) from None
    return validate_scenario(data, source=str(path))
