"""Each tenant's users, made on first use from a RNG seeded with the tenant id, and the change
log the delta query reads (microsoft-apis-more.md §3).

Licences add up to the tenant's SKUs: exactly `consumed` users hold each SKU (in
`assignedLicenses`, directly, through a group or both); a group assignment that failed for lack
of units (`CountViolation`, state `Error`) is listed in `licenseAssignmentStates` only and
consumes nothing. Some users are disabled, guests, never signed in or not signed in for 30+ days;
some licensed users are shared mailboxes, which Graph's user resource does not mark (only the
control API says which).

Every change bumps the directory's version and stamps the properties it touched, so a delta
round from version `a` to `b` lists the users whose selected properties changed in (a, b].
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sync365_pipeline.simulator.catalog import SkuCatalog
from sync365_pipeline.simulator.payloads import iso, stable_id
from sync365_pipeline.simulator.scenario import SkuAssignment, UserMix

# What Graph returns without `$select` (§3.1), and every property the simulator can return.
DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
PROPERTIES = frozenset(
    {
        *DEFAULT_PROPERTIES,
        "accountEnabled",
        "userType",
        "assignedLicenses",
        "licenseAssignmentStates",
        "department",
        "city",
        "createdDateTime",
        "signInActivity",
    }
)
# The delta query does not track these (§3.5: signInActivity is refused, licenseAssignmentStates
# is taken as untracked): a change to them alone does not make a user appear.
UNTRACKED = frozenset({"licenseAssignmentStates", "signInActivity"})
PREMIUM_PLANS = frozenset({"AAD_PREMIUM", "AAD_PREMIUM_P2"})  # Entra ID P1, P2
NEVER = "0001-01-01T00:00:00Z"  # Graph's unset date (§3.2)
ACTIVE_DAYS = 28  # active users signed in at most this long ago: clear of a 30-day threshold
INACTIVE_DAYS = (31, 400)
_RELICENSINGS = ("gains", "loses_one", "loses_all")  # `change(relicensed=)` takes them in turn

_FIRST = (
    "Adele", "Alex", "Allan", "Bianca", "Brian", "Cameron", "Christie", "Debra", "Diego", "Emily",
    "Enrico", "Grady", "Henrietta", "Irvin", "Isaiah", "Johanna", "Joni", "Lee", "Lidia", "Lynne",
    "Megan", "Miriam", "Nestor", "Patti", "Pradeep", "Raul", "Sakura", "Tomasz", "Yuki", "Zoe",
)  # fmt: skip
_LAST = (
    "Vance", "Wilber", "Deyoung", "Pinto", "Johnson", "White", "Cline", "Berg", "Soto", "Braun",
    "Bonaldi", "Archie", "Harris", "Miller", "Ramos", "Lanier", "Sherman", "Gordon", "Holloway",
    "Zrinski", "Gupta", "Costa", "Tanaka", "Nowak", "Okafor", "Larsen", "Moreau", "Silva",
)  # fmt: skip
_DEPARTMENTS = ("Sales", "Finance", "Operations", "IT", "Legal", "Marketing", "Retail", None)
_OFFICES = (("18/2111", "Seattle"), ("2/104", "London"), ("7/310", "Sydney"), (None, None))
_SHARED_NAMES = ("Info", "Accounts", "Reception", "Bookings", "Support", "Orders", "Careers")


@dataclass
class Holding:
    """How a user holds one SKU: directly, through a licensing group, or both (one
    `assignedLicenses` entry, two `licenseAssignmentStates` entries)."""

    direct: bool
    group_id: str | None
    updated: str


@dataclass
class DirectoryUser:
    id: str
    user_principal_name: str
    display_name: str
    given_name: str | None
    surname: str | None
    account_enabled: bool
    user_type: str  # Member | Guest
    department: str | None
    office_location: str | None
    city: str | None
    created: str | None
    last_sign_in: datetime | None  # None: never signed in
    never_form: str  # how "never" is written: absent | null | sentinel (all three occur)
    success_error: str | None  # a successful assignment's `error`: None or "None" (both occur)
    shared_mailbox: bool = False
    holdings: dict[str, Holding] = field(default_factory=dict)  # by SKU id
    failed: dict[str, str] = field(default_factory=dict)  # SKU id -> group id (CountViolation)
    versions: dict[str, int] = field(default_factory=dict)  # property -> version of last change
    removed_version: int | None = None  # soft-deleted at this version

    def touch(self, version: int, *properties: str) -> None:
        for name in properties:
            self.versions[name] = version

    def changed_at(self, selected: frozenset[str]) -> int:
        """The version of the latest change to a tracked property among `selected`."""
        tracked = selected - UNTRACKED
        return max((v for name, v in self.versions.items() if name in tracked), default=0)

    def resource(self) -> dict[str, Any]:
        """The user as Graph returns it with every property selected."""
        states = []
        for sku_id, holding in self.holdings.items():
            owners = ([None] if holding.direct else []) + (
                [holding.group_id] if holding.group_id else []
            )
            states += [
                _state(sku_id, owner, self.success_error, "Active", holding.updated)
                for owner in owners
            ]
        states += [
            _state(sku_id, group_id, "CountViolation", "Error", self.created or NEVER)
            for sku_id, group_id in self.failed.items()
        ]
        body: dict[str, Any] = {
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": self.given_name,
            "id": self.id,
            "jobTitle": None,
            "mail": self.user_principal_name if self.user_type == "Member" else None,
            "mobilePhone": None,
            "officeLocation": self.office_location,
            "preferredLanguage": "en-US",
            "surname": self.surname,
            "userPrincipalName": self.user_principal_name,
            "accountEnabled": self.account_enabled,
            "userType": self.user_type,
            "assignedLicenses": [
                {"disabledPlans": [], "skuId": sku_id} for sku_id in self.holdings
            ],
            "licenseAssignmentStates": states,
            "department": self.department,
            "city": self.city,
            "createdDateTime": self.created,
        }
        sign_in = self._sign_in_activity()
        if sign_in is not None or self.never_form == "null":
            body["signInActivity"] = sign_in
        return body

    def _sign_in_activity(self) -> dict[str, Any] | None:
        if self.last_sign_in is None:
            if self.never_form != "sentinel":
                return None
            # Microsoft's own example of "never": a zero date and empty strings (§3.2).
            return {
                "lastSignInDateTime": NEVER,
                "lastSignInRequestId": "",
                "lastNonInteractiveSignInDateTime": NEVER,
                "lastNonInteractiveSignInRequestId": "",
                "lastSuccessfulSignInDateTime": "",
                "lastSuccessfulSignInRequestId": "",
            }
        interactive = iso(self.last_sign_in)
        request_id = stable_id(self.id, interactive)
        return {
            "lastSignInDateTime": interactive,
            "lastSignInRequestId": request_id,
            "lastNonInteractiveSignInDateTime": iso(self.last_sign_in - timedelta(hours=2)),
            "lastNonInteractiveSignInRequestId": stable_id(self.id, interactive, "non-interactive"),
            "lastSuccessfulSignInDateTime": interactive,
            "lastSuccessfulSignInRequestId": request_id,
        }


def _state(
    sku_id: str, group_id: str | None, error: str | None, state: str, updated: str
) -> dict[str, Any]:
    return {
        "assignedByGroup": group_id,
        "disabledPlans": [],
        "error": error,
        "lastUpdatedDateTime": updated,
        "skuId": sku_id,
        "state": state,
    }


class TenantDirectory:
    """One tenant's users, sorted by id (so `$skiptoken` can name the last id served), and the
    version of its latest change."""

    def __init__(
        self, tenant_id: str, domain: str, mix: UserMix, skus: list[SkuAssignment], now: datetime
    ) -> None:
        self.tenant_id = tenant_id
        self.domain = domain
        self.mix = mix
        self.now = now
        self.random = random.Random(f"users/{tenant_id}")
        self.version = 0
        self.users: dict[str, DirectoryUser] = {}
        self.ids: list[str] = []  # sorted; removed users stay (the delta query lists them)
        self.held: Counter[str] = Counter()  # SKU id -> users holding it
        self._names: set[str] = set()
        self._generate(skus)

    # --- generation ------------------------------------------------------------------------------

    def _generate(self, skus: list[SkuAssignment]) -> None:
        rng, mix = self.random, self.mix
        licensed = [self._new_user() for _ in range(max((s.consumed for s in skus), default=0))]
        for sku in skus:
            for user in rng.sample(licensed, sku.consumed):
                self._hold(user, sku.sku_id or "")
            if sku.consumed >= sku.enabled > 0 and rng.random() < mix.group_share:
                # A licensing group met a full SKU: its next member failed (CountViolation).
                spare = [user for user in licensed[:50] if sku.sku_id not in user.holdings]
                if spare:
                    rng.choice(spare).failed[sku.sku_id or ""] = self._group(sku.sku_id or "")
        for user in rng.sample(licensed, min(mix.shared_mailboxes, len(licensed))):
            self._make_shared_mailbox(user)
        unlicensed = mix.unlicensed if mix.unlicensed is not None else len(licensed) // 10
        for index in range(unlicensed):
            user = self._new_user()
            if index == 0:
                self._make_shared_mailbox(user)  # the usual case: under 50 GB needs no licence
            elif rng.random() < 0.3:
                self._make_guest(user)

    def _new_user(self) -> DirectoryUser:
        rng, mix = self.random, self.mix
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        office, city = rng.choice(_OFFICES)
        created = self.now - timedelta(days=rng.randint(1, 2500))
        roll = rng.random()
        if roll < mix.never_signed_in_share:
            last_sign_in = None
        elif roll < mix.never_signed_in_share + mix.inactive_share:
            last_sign_in = self.now - timedelta(days=rng.uniform(*INACTIVE_DAYS))
        else:
            last_sign_in = self.now - timedelta(days=rng.uniform(0, ACTIVE_DAYS))
        user = DirectoryUser(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            user_principal_name=self._unique_name(f"{first}.{last}".lower()) + f"@{self.domain}",
            display_name=f"{first} {last}",
            given_name=first,
            surname=last,
            account_enabled=rng.random() >= mix.disabled_share,
            user_type="Member",
            department=rng.choice(_DEPARTMENTS),
            office_location=office,
            city=city,
            created=iso(created) if rng.random() > 0.05 else None,  # null before June 2018
            last_sign_in=last_sign_in,
            never_form=rng.choice(("absent", "null", "sentinel")),
            success_error=rng.choice((None, "None")),
        )
        if rng.random() < mix.guest_share:
            self._make_guest(user)
        self._add(user)
        return user

    def _unique_name(self, alias: str) -> str:
        candidate, number = alias, 1
        while candidate in self._names:
            number += 1
            candidate = f"{alias}{number}"
        self._names.add(candidate)
        return candidate

    def _make_guest(self, user: DirectoryUser) -> None:
        alias = user.user_principal_name.split("@")[0]
        user.user_type = "Guest"
        user.user_principal_name = f"{alias}_fabrikam.com#EXT#@{self.domain}"

    def _make_shared_mailbox(self, user: DirectoryUser) -> None:
        """A shared mailbox is a user whose sign-in is blocked; nothing else marks it."""
        name = self.random.choice(_SHARED_NAMES)
        user.shared_mailbox = True
        user.user_type = "Member"
        user.display_name, user.given_name, user.surname = name, None, None
        user.user_principal_name = self._unique_name(name.lower()) + f"@{self.domain}"
        user.account_enabled = False
        user.last_sign_in = None
        user.department = None

    def _group(self, sku_id: str) -> str:
        return stable_id(self.tenant_id, sku_id, "licensing-group")

    def _hold(self, user: DirectoryUser, sku_id: str) -> None:
        by_group = self.random.random() < self.mix.group_share
        if sku_id not in user.holdings:
            self.held[sku_id] += 1
        user.holdings[sku_id] = Holding(
            direct=not by_group or self.random.random() < 0.1,
            group_id=self._group(sku_id) if by_group else None,
            updated=iso(self.now - timedelta(days=self.random.randint(0, 400))),
        )
        user.failed.pop(sku_id, None)
        user.touch(self.version, "assignedLicenses", "licenseAssignmentStates")

    def _add(self, user: DirectoryUser) -> None:
        self.users[user.id] = user
        bisect.insort(self.ids, user.id)
        user.touch(self.version, *PROPERTIES)

    # --- reading ---------------------------------------------------------------------------------

    def alive(self) -> Iterator[DirectoryUser]:
        return (user for user in self.users.values() if user.removed_version is None)

    def after(self, last_id: str | None) -> Iterator[DirectoryUser]:
        """Every user (removed ones too) in id order, from the one after `last_id`."""
        start = 0 if last_id is None else bisect.bisect_right(self.ids, last_id)
        return (self.users[user_id] for user_id in self.ids[start:])

    def holders(self, sku_id: str) -> list[DirectoryUser]:
        return [user for user in self.alive() if sku_id in user.holdings]

    def premium(self, skus: list[SkuAssignment], catalog: SkuCatalog) -> bool:
        """Entra ID P1 or P2 in some SKU with enabled units (or as the scenario says)."""
        if self.mix.premium is not None:
            return self.mix.premium
        for sku in skus:
            product = catalog.by_id(sku.sku_id or "")
            plans = {plan.name for plan in product.service_plans} if product else set()
            if sku.enabled + sku.warning > 0 and plans & PREMIUM_PLANS:
                return True
        return False

    # --- changes ---------------------------------------------------------------------------------

    def reconcile(self, skus: list[SkuAssignment]) -> None:
        """Make each SKU's holders its consumed units again after they were changed (control API
        `set_sku_units`): licences go to or from existing users; new users come when none is
        left to take one. A SKU the tenant no longer has leaves its holders."""
        wanted = {sku.sku_id or "": sku.consumed for sku in skus}
        if +self.held == +Counter(wanted):  # unary + drops the zero counts
            return
        for user in self.alive():
            for sku_id in [s for s in user.holdings if s not in wanted]:
                self._release(user, sku_id)
        for sku_id, consumed in wanted.items():
            holders = self.holders(sku_id)
            for user in holders[consumed:]:
                self._release(user, sku_id)
            if len(holders) < consumed:
                self.version += 1
                others = [u for u in self.alive() if u.holdings and sku_id not in u.holdings]
                for _ in range(consumed - len(holders)):
                    self._hold(others.pop() if others else self._new_user(), sku_id)

    def _release(self, user: DirectoryUser, sku_id: str) -> None:
        self.version += 1
        del user.holdings[sku_id]
        self.held[sku_id] -= 1
        user.touch(self.version, "assignedLicenses", "licenseAssignmentStates")

    def change(
        self,
        skus: list[SkuAssignment],
        *,
        added: int,
        removed: int,
        changed: int,
        relicensed: int = 0,
    ) -> dict[str, list[str]]:
        """Random changes, as a day in a tenant brings: new licensed users (each with one of the
        tenant's SKUs, whose consumed units grow), soft-deleted users (their SKUs' consumed units
        shrink), users whose department, city, name or sign-in state changed, and users whose
        licences changed (`_relicense`; each user in one kind at most)."""
        rng = self.random
        report: dict[str, list[str]] = {"added": [], "removed": [], "changed": [], "relicensed": []}
        for _ in range(added):
            self.version += 1
            user = self._new_user()
            if skus:
                sku = rng.choice(skus)
                self._hold(user, sku.sku_id or "")
                sku.consumed += 1
            report["added"].append(user.id)
        candidates = sorted(self.alive(), key=lambda user: user.id)
        for user in rng.sample(candidates, min(removed, len(candidates))):
            self.version += 1
            user.removed_version = self.version
            for sku in skus:
                if sku.sku_id in user.holdings:
                    sku.consumed -= 1
            self.held.subtract(user.holdings.keys())
            report["removed"].append(user.id)
        candidates = [user for user in candidates if user.removed_version is None]
        for user in rng.sample(candidates, min(changed, len(candidates))):
            self.version += 1
            self._change_one(user)
            report["changed"].append(user.id)
        touched = {*report["added"], *report["changed"]}
        untouched = [user for user in candidates if user.id not in touched]
        for number in range(relicensed):
            if (user := self._relicense(skus, untouched, _RELICENSINGS[number % 3])) is not None:
                untouched.remove(user)
                report["relicensed"].append(user.id)
        return report

    def _relicense(
        self, skus: list[SkuAssignment], candidates: list[DirectoryUser], kind: str
    ) -> DirectoryUser | None:
        """One licensed user among `candidates` gains a SKU of the tenant it lacks (one with a
        spare unit), loses one of several, or loses all (then it has no licence); consumed units
        follow. None: no user fits."""
        by_id = {sku.sku_id or "": sku for sku in skus}
        spare = {sku_id for sku_id, sku in by_id.items() if sku.consumed < sku.enabled}
        fits = [
            user
            for user in candidates
            if user.holdings
            and (
                (kind == "gains" and spare - set(user.holdings))
                or (kind == "loses_one" and len(user.holdings) > 1)
                or kind == "loses_all"
            )
        ]
        if not fits:
            return None
        user = self.random.choice(fits)
        self.version += 1
        if kind == "gains":
            sku_id = self.random.choice(sorted(spare - set(user.holdings)))
            self._hold(user, sku_id)
            by_id[sku_id].consumed += 1
        else:
            for sku_id in sorted(user.holdings)[: 1 if kind == "loses_one" else None]:
                self._release(user, sku_id)
                if sku_id in by_id:
                    by_id[sku_id].consumed -= 1
        return user

    def _change_one(self, user: DirectoryUser) -> None:
        kind = self.random.choice(("department", "city", "displayName", "accountEnabled"))
        if kind == "department":
            user.department = self.random.choice([d for d in _DEPARTMENTS if d != user.department])
        elif kind == "city":
            user.office_location, user.city = self.random.choice(
                [o for o in _OFFICES if o[1] != user.city]
            )
            user.touch(self.version, "officeLocation")
        elif kind == "displayName":
            user.display_name += " (Contractor)"
        else:
            user.account_enabled = not user.account_enabled
        user.touch(self.version, kind)
