"""The simulator's mutable world: tenants, faults, refresh-token state, pending sign-ins, counters.

Only the server's event loop touches it (tests change it through the control API), so it needs no
locks.
"""

from __future__ import annotations

import random
import secrets
import string
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from sync365_pipeline.core.clock import utcnow
from sync365_pipeline.simulator.catalog import load_catalog
from sync365_pipeline.simulator.directory import TenantDirectory
from sync365_pipeline.simulator.generator import generate_customers
from sync365_pipeline.simulator.payloads import (
    access_assignment,
    contract,
    gdap_relationship,
    gdap_relationship_id,
    graph_subscribed_sku,
    partner_center_customer,
)
from sync365_pipeline.simulator.scenario import (
    Customer,
    Fault,
    GdapRelationship,
    PasswordCredential,
    RefreshTokenState,
    Scenario,
    Service,
    SkuAssignment,
    UserMix,
)
from sync365_pipeline.simulator.subscriptions import (
    Subscription,
    company_subscription,
    partner_center_subscription,
    sku_subscriptions,
)
from sync365_pipeline.simulator.tokens import RefreshTokenGrant, TokenSigner

DISRUPTIONS = frozenset(
    {
        "throttle",
        "server_error",
        "malformed",
        "redirect",
        "reset",
        "trickle",
        "deep_json",
        "echo",
        "odd_body",
        "bad_record",
        "hostile_text",
        "huge_numbers",
    }
)
REQUEST_LOG_SIZE = 10_000


@dataclass
class ActiveFault:
    """A scenario fault with its remaining budget (`None`: it never runs out)."""

    spec: Fault
    remaining: int | None

    @classmethod
    def of(cls, spec: Fault) -> ActiveFault:
        return cls(spec, getattr(spec, "times", None))

    def matches(self, types: frozenset[str], service: Service | None) -> bool:
        if self.spec.type not in types or self.remaining == 0:
            return False
        fault_service = getattr(self.spec, "service", None)
        return service is None or fault_service in (None, "any", service)

    def consume(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


@dataclass
class PendingSignIn:
    """A device code or authorization code waiting to be redeemed at the token endpoint."""

    code: str  # the device_code or authorization code the client redeems
    client_id: str
    tenant_id: str
    scopes: list[str]
    expires_at: float
    status: str = "pending"  # device codes: pending | approved | declined | expired | redeemed
    mfa: bool = True
    user_code: str = ""
    redirect_uri: str = ""
    code_challenge: str | None = None
    code_challenge_method: str = "plain"
    nonce: str | None = None  # echoed in the id token, where MSAL checks it


@dataclass
class RequestStats:
    total: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_tenant: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    bytes_by_route: Counter[str] = field(default_factory=Counter)  # response bodies' sizes
    in_flight: int = 0
    max_in_flight: int = 0
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_route": dict(self.by_route),
            "by_tenant": dict(self.by_tenant),
            "by_status": dict(self.by_status),
            "bytes_by_route": dict(self.bytes_by_route),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }


class SimulatorState:
    def __init__(self, scenario: Scenario) -> None:
        scenario = scenario.model_copy(deep=True)  # the caller's object stays as given
        self.scenario_name = scenario.name
        # What the scenario's relative dates count from (subscription terms, users' sign-ins):
        # its start, so they hold still while the clock moves (a replay of past days).
        self.started_at = utcnow()
        self.partner = scenario.partner
        self.settings = scenario.settings
        self.catalog = load_catalog()
        self.signer = TokenSigner()
        self.issued_tokens: list[str] = []  # only while `settings.record_issued_tokens`
        self.stats = RequestStats()
        self.random = random.Random()

        self.customers: dict[str, Customer] = {c.tenant_id: c for c in scenario.customers}
        if scenario.generate is not None:
            taken = {self.partner.tenant_id, self.partner.domain.lower()}
            taken |= {c.tenant_id for c in scenario.customers}
            taken |= {c.default_domain.lower() for c in scenario.customers}
            for customer in generate_customers(scenario.generate, self.catalog, taken):
                self.customers[customer.tenant_id] = customer
        self.departed: dict[str, Customer] = {}
        # CPV consents (Partner Center `applicationconsents`): tenant id -> consented app ids.
        self.consents: dict[str, set[str]] = {}
        self.domains: dict[str, str] = {self.partner.domain.lower(): self.partner.tenant_id}
        self.faults: dict[str, list[ActiveFault]] = {
            self.partner.tenant_id: [ActiveFault.of(f) for f in self.partner.faults]
        }
        for customer in self.customers.values():
            self._index(customer)

        # Refresh tokens older than the cut-off generation fail with the state's AADSTS code;
        # interactive sign-ins start a new generation, so re-consent works after a revocation.
        self.rt_generation = 1
        self.rt_cutoff = 0
        self.rt_state: RefreshTokenState = "valid"
        self.set_refresh_token_state(self.partner.refresh_token_state)

        self.device_codes: dict[str, PendingSignIn] = {}  # by device_code
        self.authorization_codes: dict[str, PendingSignIn] = {}
        self._collections_version = 0
        self._collections: dict[str, Any] = {}
        self._relationship_index: tuple[int, dict[str, GdapRelationship]] = (-1, {})
        self._directories: dict[str, TenantDirectory] = {}  # made on first use: see directory()

    # --- secrets ---------------------------------------------------------------------------------

    def note_issued(self, tokens: Iterable[str]) -> None:
        """Remember tokens just issued, when the scenario asks for it (`record_issued_tokens`)."""
        if self.settings.record_issued_tokens:
            self.issued_tokens.extend(tokens)

    def issued_secrets(self) -> list[str]:
        """Every secret a client of this simulator has held: the client secret, the seed refresh
        token and each token issued; `ValueError` when tokens are not being recorded."""
        if not self.settings.record_issued_tokens:
            raise ValueError("issued tokens are recorded only with settings.record_issued_tokens")
        return [self.partner.client_secret, self.partner.refresh_token, *self.issued_tokens]

    # --- tenants -------------------------------------------------------------------------------

    def _index(self, customer: Customer) -> None:
        self.domains[customer.default_domain.lower()] = customer.tenant_id
        self.faults[customer.tenant_id] = [ActiveFault.of(f) for f in customer.faults]
        self.consents[customer.tenant_id] = (
            {self.partner.client_id} if customer.consented else set()
        )

    def resolve_tenant(self, segment: str) -> str | None:
        """The tenant id an authority path segment names (GUID, verified domain, or alias)."""
        segment = segment.lower()
        if segment in ("common", "organizations"):
            return self.partner.tenant_id  # the signed-in user's home tenant
        if segment == self.partner.tenant_id or segment in self.customers:
            return segment
        if segment in self.departed:
            return segment
        return self.domains.get(segment)

    def is_partner(self, tenant_id: str) -> bool:
        return tenant_id == self.partner.tenant_id

    def add_customer(self, customer: Customer) -> None:
        if customer.tenant_id == self.partner.tenant_id:
            raise ValueError("tenant_id is the partner's own tenant")
        self.departed.pop(customer.tenant_id, None)
        self.customers[customer.tenant_id] = customer
        self._index(customer)
        self._collections_version += 1

    def remove_customer(self, tenant_id: str) -> None:
        """The customer leaves the partner: the tenant still exists, the partner has no access."""
        self.departed[tenant_id] = self.customers.pop(tenant_id)
        self._collections_version += 1

    def customer(self, tenant_id: str) -> Customer:
        try:
            return self.customers[tenant_id]
        except KeyError:
            raise KeyError(f"no customer with tenant id {tenant_id}") from None

    def skus(self, tenant_id: str) -> list[SkuAssignment]:
        return self.partner.skus if self.is_partner(tenant_id) else self.customer(tenant_id).skus

    def sku(self, tenant_id: str, sku_id: str) -> SkuAssignment:
        for sku in self.skus(tenant_id):
            if sku.sku_id == sku_id.lower() or sku.part_number == sku_id:
                return sku
        raise KeyError(f"tenant {tenant_id} has no SKU {sku_id}")

    def add_sku(self, tenant_id: str, sku: SkuAssignment) -> None:
        """The tenant buys a SKU it did not have (Graph lists it from now on)."""
        if any(held.sku_id == sku.sku_id for held in self.skus(tenant_id)):
            raise ValueError(f"tenant {tenant_id} has SKU {sku.part_number} already")
        self.skus(tenant_id).append(sku)

    def remove_sku(self, tenant_id: str, sku_id: str) -> None:
        """The SKU leaves the tenant (Graph lists it no more); its holders lose it."""
        self.skus(tenant_id).remove(self.sku(tenant_id, sku_id))

    def update_gdap_relationship(
        self, tenant_id: str, index: int, changes: Mapping[str, Any]
    ) -> GdapRelationship:
        """Change a customer's relationship as Partner Center would (extend it, turn auto-extend
        on, end it): `changes` are `GdapRelationship` fields; a new end replaces the old one."""
        customer = self.customer(tenant_id)
        if not 0 <= index < len(customer.gdap_relationships):
            raise KeyError(f"tenant {tenant_id} has no GDAP relationship {index}")
        current = customer.gdap_relationships[index].model_dump()
        if {"end_date_time", "ends_in_days"} & set(changes):
            current |= {"end_date_time": None, "ends_in_days": None}
        relationship = GdapRelationship.model_validate({**current, **changes})
        customer.gdap_relationships[index] = relationship
        self._collections_version += 1
        return relationship

    def set_password_credentials(self, credentials: Sequence[Mapping[str, Any]]) -> None:
        """Replace the app's client secrets (a secret added, an old one removed)."""
        self.partner.password_credentials = [
            PasswordCredential.model_validate(credential) for credential in credentials
        ]

    def client_secret_expired(self) -> bool:
        """Whether the secret the scenario's `client_secret` is (a credential without a `hint`)
        has ended; a scenario without such a credential never expires its secret."""
        now = utcnow()
        in_use = [c for c in self.partner.password_credentials if c.hint is None]
        return bool(in_use) and all(credential.end(now) <= now for credential in in_use)

    # --- CPV consent ------------------------------------------------------------------------------

    def has_cpv_consent(self, tenant_id: str) -> bool:
        """Whether the partner's app is consented in this customer tenant."""
        return self.partner.client_id in self.consents.get(tenant_id, set())

    def grant_cpv_consent(self, tenant_id: str, application_id: str) -> bool:
        """Consent an app in a customer tenant; False if it was consented already."""
        consented = self.consents.setdefault(tenant_id, set())
        if application_id in consented:
            return False
        consented.add(application_id)
        return True

    # --- faults --------------------------------------------------------------------------------

    def take_fault(
        self, tenant_id: str, types: frozenset[str], service: Service | None = None
    ) -> Fault | None:
        """The first live fault of these types for this tenant and service (uses up one `times`)."""
        for active in self.faults.get(tenant_id, ()):
            if active.matches(types, service):
                active.consume()
                return active.spec
        return None

    def global_latency_s(self) -> float:
        """The scenario-wide latency with its random jitter."""
        jitter = self.random.uniform(0, self.settings.latency_jitter_ms)
        return (self.settings.latency_ms + jitter) / 1000

    def tenant_latency_s(self, tenant_id: str, service: Service) -> float:
        """The tenant's own latency faults for this service, each with its random jitter."""
        millis = 0.0
        for active in self.faults.get(tenant_id, ()):
            spec = active.spec
            if spec.type == "latency" and spec.service in ("any", service):
                millis += spec.ms + self.random.uniform(0, spec.jitter_ms)
        return millis / 1000

    def add_fault(self, tenant_id: str, spec: Fault) -> None:
        self.faults.setdefault(tenant_id, []).append(ActiveFault.of(spec))

    def clear_faults(self, tenant_id: str, fault_type: str | None = None) -> None:
        self.faults[tenant_id] = [
            active
            for active in self.faults.get(tenant_id, [])
            if fault_type is not None and active.spec.type != fault_type
        ]

    # --- refresh tokens ------------------------------------------------------------------------

    def set_refresh_token_state(self, state: RefreshTokenState) -> None:
        if state not in get_args(RefreshTokenState):
            raise ValueError(f"refresh token state must be one of {get_args(RefreshTokenState)}")
        self.rt_state = state
        if state == "valid":
            self.rt_cutoff = 0
        else:
            self.rt_cutoff = self.rt_generation
            self.rt_generation += 1

    def read_refresh_token(self, token: str) -> RefreshTokenGrant:
        """The grant behind a refresh token; the scenario's seed token is generation 0."""
        if secrets.compare_digest(token.encode(), self.partner.refresh_token.encode()):
            return RefreshTokenGrant(
                client_id=self.partner.client_id,
                user_object_id=self.partner.user_object_id,
                mfa=self.partner.mfa,
                generation=0,
                issued_at=int(time.time()) - 86_400,
            )
        return self.signer.read_refresh_token(token)

    def refresh_token_dead(self, grant: RefreshTokenGrant) -> RefreshTokenState | None:
        """`expired`/`revoked` if the partner's tokens were invalidated after this one's issue."""
        return self.rt_state if grant.generation < self.rt_cutoff else None

    # --- device and authorization codes --------------------------------------------------------

    def new_device_code(self, client_id: str, tenant_id: str, scopes: list[str]) -> PendingSignIn:
        now = time.time()
        self.device_codes = {k: v for k, v in self.device_codes.items() if v.expires_at > now}
        user_code = "".join(secrets.choice(string.ascii_uppercase + "23456789") for _ in range(9))
        sign_in = PendingSignIn(
            code="DAQABAAEAAAD--" + secrets.token_urlsafe(48),
            client_id=client_id,
            tenant_id=tenant_id,
            scopes=scopes,
            expires_at=now + self.settings.device_code_lifetime_s,
            user_code=user_code,
        )
        self.device_codes[sign_in.code] = sign_in
        return sign_in

    def device_code_by_user_code(self, user_code: str) -> PendingSignIn:
        for sign_in in self.device_codes.values():
            if sign_in.user_code == user_code:
                return sign_in
        raise KeyError(f"no pending device code with user code {user_code}")

    # --- collections served in pages (rebuilt only when the customer set changes) ---------------

    def _cached(self, name: str, build: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        key = (name, self._collections_version)
        if key not in self._collections:
            self._collections = {
                k: v for k, v in self._collections.items() if k[1] == self._collections_version
            }
            self._collections[key] = build()
        return self._collections[key]

    def partner_center_customers(self) -> list[dict[str, Any]]:
        return self._cached(
            "customers",
            lambda: [
                partner_center_customer(c) for c in self.customers.values() if c.in_partner_center
            ],
        )

    def gdap_relationships(self) -> list[dict[str, Any]]:
        """Rebuilt each minute: statuses depend on the clock (relationships expire at their end)."""
        now = utcnow()
        return self._cached(
            f"gdap@{now:%Y%m%d%H%M}",
            lambda: [
                gdap_relationship(customer, index, relationship, now)
                for customer in self.customers.values()
                for index, relationship in enumerate(customer.gdap_relationships)
            ],
        )

    def access_assignments(self, relationship_id: str) -> list[dict[str, Any]] | None:
        """The access assignments of one GDAP relationship; None for an unknown relationship id."""
        version, index = self._relationship_index
        if version != self._collections_version:
            index = {
                gdap_relationship_id(customer, number): relationship
                for customer in self.customers.values()
                for number, relationship in enumerate(customer.gdap_relationships)
            }
            self._relationship_index = (self._collections_version, index)
        relationship = index.get(relationship_id)
        if relationship is None:
            return None
        now = utcnow()
        return [
            access_assignment(relationship_id, number, assignment, now)
            for number, assignment in enumerate(relationship.assignments())
        ]

    def contracts(self) -> list[dict[str, Any]]:
        return self._cached(
            "contracts", lambda: [contract(c) for c in self.customers.values() if c.dap]
        )

    def _account(self, tenant_id: str) -> tuple[str, list[SkuAssignment]]:
        """The name and SKUs of the partner's own tenant or of a customer."""
        name = (
            self.partner.display_name
            if self.is_partner(tenant_id)
            else self.customer(tenant_id).display_name
        )
        return name, self.skus(tenant_id)

    def graph_subscribed_skus(self, tenant_id: str) -> list[dict[str, Any]]:
        """What Graph `/subscribedSkus` serves for this tenant right now."""
        name, skus = self._account(tenant_id)
        return [
            graph_subscribed_sku(
                tenant_id,
                name,
                sku,
                self.catalog,
                [s.directory_id for s in sku_subscriptions(tenant_id, sku, self.catalog)],
            )
            for sku in skus
        ]

    def subscriptions(self, tenant_id: str) -> list[Subscription]:
        """Every subscription behind the tenant's SKUs, whoever sold it."""
        _, skus = self._account(tenant_id)
        return [s for sku in skus for s in sku_subscriptions(tenant_id, sku, self.catalog)]

    def partner_center_subscriptions(self, customer: Customer) -> list[dict[str, Any]]:
        """What Partner Center lists for the customer now: the subscriptions this partner sold,
        cancelled and expired ones included, dated from the scenario's start."""
        return [
            partner_center_subscription(subscription, customer.country, self.started_at.date())
            for subscription in self.subscriptions(customer.tenant_id)
            if subscription.spec.seller == "partner"
        ]

    def directory_subscriptions(self, tenant_id: str) -> list[dict[str, Any]]:
        """What Graph `/directory/subscriptions` serves for this tenant now: every seller's, dated
        from the scenario's start."""
        return [
            company_subscription(subscription, self.partner.tenant_id, self.started_at.date())
            for subscription in self.subscriptions(tenant_id)
        ]

    # --- users ------------------------------------------------------------------------------------

    def directory(self, tenant_id: str) -> TenantDirectory:
        """The tenant's users: generated on first use (a scenario of 10,000 tenants starts as fast
        as before), then kept at its SKUs' consumed units."""
        skus = self.skus(tenant_id)
        found = self._directories.get(tenant_id)
        if found is None:
            if self.is_partner(tenant_id):
                domain, mix = self.partner.domain, UserMix()
            else:
                customer = self.customer(tenant_id)
                domain, mix = customer.default_domain, customer.users
            # Dates are drawn back from the hour, not the instant: two servers started moments
            # apart serve the same users (a second boundary between them must not differ).
            anchor = self.started_at.replace(minute=0, second=0, microsecond=0)
            found = TenantDirectory(tenant_id, domain, mix, skus, anchor)
            self._directories[tenant_id] = found
        found.reconcile(skus)
        return found
