"""`sync365 doctor`: every pre-flight check, each a small function returning a `Check`.

Checks run per account in dependency order: when a check that later ones need fails (an
endpoint, the client secret, the refresh token, MFA), the account's later checks are skipped,
since they could only repeat the same failure. Doctor changes nothing: it redeems the refresh
token in memory but never saves the token cache, and it never creates the warehouse.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, ParamSpec
from urllib.parse import urlsplit

import duckdb
import msal
import requests

from sync365_pipeline.core.settings import (
    AccountSettings,
    ConfigError,
    load_accounts,
    load_run_settings,
)
from sync365_pipeline.licensing.access import CpvConsent
from sync365_pipeline.licensing.access_report import (
    GDAP_WARN_WITHIN,
    CustomerAccess,
    access_findings,
    audit_gdap_access,
)
from sync365_pipeline.microsoft import (
    MicrosoftCloud,
    MicrosoftError,
    MicrosoftSession,
    PartnerAccessError,
    PartnerMfaMissing,
    RetrySettings,
    TokenFacts,
    account_session,
    classify_token_error,
)
from sync365_pipeline.microsoft.device_consent import NO_MFA_CAUSES, confidential_app, msal_call
from sync365_pipeline.microsoft.errors import classify_transport_error
from sync365_pipeline.microsoft.token_health import TokenAge, refresh_token_health
from sync365_pipeline.warehouse import Warehouse, WarehouseLocked
from sync365_pipeline.warehouse.connection import connect

# A pre-flight screen should answer in seconds: one retry, short waits.
DOCTOR_RETRY = RetrySettings(max_attempts=2, base_delay_s=0.2, max_delay_s=1.0, max_retry_after_s=5)
Service = Literal["identity", "graph", "partner_center"]
SERVICE_NAMES: dict[Service, str] = {
    "identity": "identity platform",
    "graph": "Microsoft Graph",
    "partner_center": "Partner Center",
}
PROBE_TIMEOUT = (5.0, 10.0)
FIX_WIDTH = 92  # a finding's fix, wrapped so that the indented screen fits 100 columns
LOCK_WAIT_S = 0.5

P = ParamSpec("P")


@dataclass(frozen=True)
class Check:
    """One line of the screen: `ok` is True (pass), None (warning) or False (fail)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    @property
    def label(self) -> str:
        return {True: "PASS", None: "WARN", False: "FAIL"}[self.ok]


@dataclass(frozen=True)
class Outcome:
    """What a check that asks Microsoft found; `microsoft_check` names it as a `Check`."""

    ok: bool | None
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    checks: list[Check]


def run_doctor(environ: Mapping[str, str] | None = None) -> list[Section]:
    """Every check, grouped: configuration, one section per account, then local state."""
    env = os.environ if environ is None else environ
    config, accounts = check_configuration(env)
    sections = [Section("Configuration", [config])]
    try:
        duckdb_path: Path | None = load_run_settings(env).duckdb_path
    except ConfigError:
        duckdb_path = None  # which file is unknown; the configuration check says why
    last_sync = Warehouse(duckdb_path).readable() if duckdb_path else None
    sections += [
        Section(
            f"Account {settings.name} ({settings.kind} tenant {settings.tenant_id})",
            account_checks(settings, last_sync),
        )
        for settings in accounts
    ]
    local = [check_warehouse(duckdb_path)] if duckdb_path else []
    local.append(check_dagster_home(env.get("DAGSTER_HOME")))
    return [*sections, Section("Local state", local)]


def failed(sections: Iterable[Section]) -> bool:
    return any(check.ok is False for section in sections for check in section.checks)


# --- configuration ----------------------------------------------------------------------------


def check_configuration(env: Mapping[str, str]) -> tuple[Check, list[AccountSettings]]:
    try:
        accounts = load_accounts(env)
    except ConfigError as exc:
        return Check("configuration", False, str(exc), "Fix the settings listed above."), []
    source = env.get("SYNC365_CONFIG") or "SYNC365_* environment variables"
    names = ", ".join(f"{a.name} ({a.kind})" for a in accounts)
    return Check(
        "configuration", True, f"{len(accounts)} account(s) from {source}: {names}"
    ), accounts


# --- one account ------------------------------------------------------------------------------


def account_checks(settings: AccountSettings, last_sync: Warehouse | None = None) -> list[Check]:
    """The account's checks in order, stopping after a failed one that later ones depend on.
    `last_sync` is the warehouse to read the last sync's consent outcomes from, if any."""
    checks = check_endpoints(settings)
    if any(check.ok is False for check in checks):
        return checks
    cloud = MicrosoftCloud.from_settings(settings, retry=DOCTOR_RETRY)
    steps: list[tuple[Callable[[], Check], bool]] = [
        (lambda: check_client_secret(settings, cloud.session), True)
    ]
    # Both GDAP checks read the one listing of relationships (a failed listing is asked again).
    relationships = functools.cache(cloud.graph.delegated_admin_relationships)
    if settings.kind == "partner":
        steps += [
            (lambda: check_refresh_token_age(settings), False),
            (lambda: check_refresh_token(cloud), True),
            (lambda: check_mfa(cloud), True),
            (lambda: check_customers(cloud), False),
            (lambda: check_gdap(relationships), False),
            (lambda: check_customer_access(cloud, relationships, settings, last_sync), False),
        ]
    try:
        for step, needed_later in steps:
            checks.append(step())
            if needed_later and checks[-1].ok is False:
                break
    finally:
        cloud.session.close()  # not cloud.close(): doctor never rewrites the token cache
    return checks


def check_endpoints(settings: AccountSettings) -> list[Check]:
    """Each distinct host answers over TLS that we trust (any HTTP answer counts)."""
    endpoints = settings.endpoints
    probes = {
        "identity": (
            f"{endpoints.authority_host}/{settings.tenant_id}/v2.0/.well-known/openid-configuration"
        ),
        "graph": f"{endpoints.graph_url}/v1.0/organization",
    }
    if settings.kind == "partner":
        probes["partner_center"] = f"{endpoints.partner_center_url}/v1/customers"
    by_host: dict[str, list[tuple[Service, str]]] = {}
    for service, url in probes.items():
        by_host.setdefault(urlsplit(url).netloc, []).append((service, url))
    # One attempt: a closed port or an untrusted certificate does not get better by retrying.
    session = account_session(settings, retry=RetrySettings(max_attempts=1))
    try:
        return [_probe(session, host, services) for host, services in by_host.items()]
    finally:
        session.close()


def _probe(session: MicrosoftSession, host: str, services: list[tuple[Service, str]]) -> Check:
    name = f"endpoint {host} ({', '.join(SERVICE_NAMES[service] for service, _ in services)})"
    url = services[0][1]
    # The setting to correct, when only one points at this host.
    only = services[0][0] if len(services) == 1 else None
    try:
        response = session.get(url, timeout=PROBE_TIMEOUT)
    except MicrosoftError:  # an answer that is not JSON: the host is there and TLS worked
        return Check(name, True, "reachable, TLS certificate trusted")
    except requests.RequestException as exc:
        return _failure(
            name,
            classify_transport_error(
                exc, url=url, tenant_id=None, partner_level=True, service=only
            ),
        )
    return Check(name, True, f"reachable (HTTP {response.status_code}), TLS certificate trusted")


def microsoft_check(name: str) -> Callable[[Callable[P, Outcome]], Callable[P, Check]]:
    """The check `name` from a function that asks Microsoft: the `MicrosoftError` it raises is the
    check's failure (with the typed error's problem and remedy), so the function states only what
    it found."""

    def named(find: Callable[P, Outcome]) -> Callable[P, Check]:
        @functools.wraps(find)
        def check(*args: P.args, **kwargs: P.kwargs) -> Check:
            try:
                outcome = find(*args, **kwargs)
            except MicrosoftError as exc:
                return _failure(name, exc)
            return Check(name, outcome.ok, outcome.detail, outcome.fix)

        return check

    return named


def _failure(name: str, exc: MicrosoftError) -> Check:
    if isinstance(exc, PartnerAccessError):
        return Check(name, False, exc.problem, exc.remedy)
    return Check(name, False, str(exc), "Retry later; if it persists, check the service health.")


@microsoft_check("client secret")
def check_client_secret(settings: AccountSettings, session: requests.Session) -> Outcome:
    """The app signs in by itself (client credentials): the secret is current and right."""
    app = confidential_app(settings, session, msal.TokenCache())
    scope = f"{settings.endpoints.graph_resource}/.default"
    result = msal_call(settings, lambda: app.acquire_token_for_client([scope]))
    if "access_token" not in result:
        raise classify_token_error(result, tenant_id=settings.tenant_id, partner_level=True)
    facts = TokenFacts.from_jwt(result["access_token"])
    return Outcome(
        True,
        f"accepted: app {settings.credentials.client_id} signed in to tenant {facts.tenant_id}",
    )


@microsoft_check("refresh token age")
def check_refresh_token_age(settings: AccountSettings) -> Outcome:
    health = refresh_token_health(settings)  # raises on a corrupt token cache
    verdict = {
        TokenAge.OK: True,
        TokenAge.EXPIRING: None,
        TokenAge.UNKNOWN: None,
        TokenAge.NOT_IMPORTED: None,
        TokenAge.MISSING: False,
        TokenAge.EXPIRED: False,
    }[health.age]
    return Outcome(verdict, health.message, health.remedy)


@microsoft_check("refresh token redeemable")
def check_refresh_token(cloud: MicrosoftCloud) -> Outcome:
    facts = cloud.tokens.partner_graph_token().facts
    return Outcome(True, f"redeemed for {facts.account or 'the partner account'}")


@microsoft_check("MFA claim")
def check_mfa(cloud: MicrosoftCloud) -> Outcome:
    """Partner Center's own test: `mfa` in the `amr` claim of its token (microsoft-apis §3.3)."""
    try:
        facts = cloud.tokens.partner_center_token().facts
    except PartnerMfaMissing as exc:
        causes = "".join(f"\n  - {cause}" for cause in NO_MFA_CAUSES)
        return Outcome(
            False,
            f"{exc.problem} Likely causes:{causes}",
            "Fix the cause, then run `sync365 consent` again and complete the MFA prompt.",
        )
    return Outcome(True, f"present in the Partner Center token (amr: {', '.join(facts.amr)})")


@microsoft_check("Partner Center customers")
def check_customers(cloud: MicrosoftCloud) -> Outcome:
    customers = cloud.partner_center.customers()
    return Outcome(True, f"customer list reachable: {len(customers)} customers")


Relationships = Callable[[], list[dict[str, Any]]]


@microsoft_check("GDAP relationships")
def check_gdap(listing: Relationships) -> Outcome:
    """How many GDAP relationships, and which active ones end within `GDAP_WARN_WITHIN`."""
    relationships = listing()
    now = datetime.now(UTC)
    active = [r for r in relationships if str(r.get("status", "")).lower() == "active"]
    ending = sorted(
        (
            (end, r)
            for r in active
            if (end := _end(r)) is not None and end - now <= GDAP_WARN_WITHIN
        ),
        key=lambda pair: pair[0],  # relationships made together end together: never compare dicts
    )
    detail = f"{len(relationships)} relationships, {len(active)} active"
    if not ending:
        return Outcome(True, f"{detail}; none ends within {GDAP_WARN_WITHIN.days} days")
    lines = "".join(
        f"\n  - {_customer(r)}: {r.get('displayName', 'relationship')} ends {end:%Y-%m-%d} "
        f"(in {round((end - now) / timedelta(days=1))} days)"
        for end, r in ending
    )
    return Outcome(
        None,
        f"{detail}; {len(ending)} end within {GDAP_WARN_WITHIN.days} days:{lines}",
        "Extend them in Partner Center (Customers > Admin relationships) or turn on auto-extend; "
        "after the end date the sync loses access to those customers.",
    )


@microsoft_check("customer access")
def check_customer_access(
    cloud: MicrosoftCloud,
    listing: Relationships,
    settings: AccountSettings,
    last_sync: Warehouse | None,
) -> Outcome:
    """Per customer, like CIPP's access check (microsoft-apis-more.md §5.4): live, the roles of
    each active relationship's active access assignments (one call per relationship, a few at a
    time) and the relationship's end; from the last sync, the app consents it could not grant."""
    relationships = listing()
    audited = {
        access.tenant_id: access
        for access in audit_gdap_access(
            settings.tenant_id, relationships, cloud.graph.access_assignments
        )
    }
    active = sum(1 for r in relationships if str(r.get("status", "")).lower() == "active")
    detail = f"{len(audited)} GDAP customers, {active} active relationships audited"
    consents, consent_note = _consents_of_last_sync(settings.tenant_id, last_sync)
    for known in consents:
        live = audited.get(known.tenant_id)
        audited[known.tenant_id] = (
            dataclasses.replace(live, cpv_consent=known.cpv_consent) if live else known
        )
    now = datetime.now(UTC)
    lines = [
        f"\n- {access.customer}: {finding.why}\n"
        + textwrap.fill(
            finding.fix, FIX_WIDTH, initial_indent="  fix: ", subsequent_indent="       "
        )
        for access in sorted(audited.values(), key=lambda a: (a.customer.lower(), a.tenant_id))
        for finding in access_findings(access, now)
        if finding.problem
    ]
    if not lines:
        return Outcome(True, f"{detail}; each can read licences and none ends soon{consent_note}")
    return Outcome(None, f"{detail}; {len(lines)} finding(s){consent_note}:{''.join(lines)}")


def _consents_of_last_sync(
    partner_tenant_id: str, last_sync: Warehouse | None
) -> tuple[list[CustomerAccess], str]:
    """The customers whose app consent the last sync could not grant (failed or disabled), and
    a note when that is unknown."""
    if last_sync is None:
        return [], " (no sync yet: consent unknown)"
    try:
        frame = last_sync.latest_customer_access()
    except WarehouseLocked:
        return [], " (the warehouse is busy: consent unknown)"
    missing = {CpvConsent.FAILED, CpvConsent.DISABLED}
    consents = [CustomerAccess.from_record(record) for record in frame.to_dict("records")]
    return [
        CustomerAccess(partner_tenant_id, known.tenant_id, known.customer, known.cpv_consent)
        for known in consents
        if known.partner_tenant_id == partner_tenant_id and known.cpv_consent in missing
    ], ""


def _end(relationship: Mapping[str, Any]) -> datetime | None:
    try:
        end = datetime.fromisoformat(str(relationship.get("endDateTime")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return end if end.tzinfo else end.replace(tzinfo=UTC)


def _customer(relationship: Mapping[str, Any]) -> str:
    customer = relationship.get("customer") or {}
    return str(customer.get("displayName") or customer.get("tenantId") or "unknown customer")


# --- local state -------------------------------------------------------------------------------


def check_warehouse(path: Path) -> Check:
    """The DuckDB file can be written now: not read-only, not held by another process."""
    name = f"DuckDB {path}"
    if not path.exists():
        folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
        if not os.access(folder, os.W_OK):
            return Check(name, False, f"does not exist and {folder} is not writable", _WRITABLE)
        return Check(name, True, "not created yet; the first sync creates it")
    if not os.access(path, os.W_OK):
        return Check(name, False, "the file is read-only for this user", _WRITABLE)
    analyst_copy = Warehouse(path).analyst_copy_path
    try:
        connect(path, read_only=False, timeout_s=LOCK_WAIT_S, analyst_copy=analyst_copy).close()
    except WarehouseLocked as exc:
        return Check(name, False, str(exc), "Close that process (or let it finish), then rerun.")
    except duckdb.Error as exc:
        return Check(name, False, f"cannot be opened: {exc}", "Move the file aside and resync.")
    return Check(name, True, "writable, not locked")


_WRITABLE = "Point SYNC365_DUCKDB_PATH at a file in a folder this user can write."


def check_dagster_home(value: str | None) -> Check:
    """Set, absolute, writable and not under the temp folder (else runs and cursors vanish)."""
    name = "DAGSTER_HOME"
    fix = "export DAGSTER_HOME=$PWD/data/dagster_home (a folder that survives reboots)."
    if not value:
        return Check(
            name,
            False,
            "not set: `dagster dev` would keep runs and sensor cursors in a "
            "temporary folder and forget them",
            fix,
        )
    home = Path(value)
    temp = Path(tempfile.gettempdir()).resolve()
    if not home.is_absolute():
        return Check(name, False, f"{value} is not an absolute path (Dagster requires one)", fix)
    if home.resolve().is_relative_to(temp):
        return Check(name, False, f"{value} is under the temporary folder {temp}", fix)
    existing = next(p for p in [home, *home.parents] if p.exists())
    if not os.access(existing, os.W_OK):
        return Check(name, False, f"{existing} is not writable", fix)
    return Check(name, True, f"{value} (persistent)")


def render(sections: Iterable[Section]) -> str:
    """The screen: one line per check, its detail indented under it, the fix after a failure or
    a warning, and a count at the end."""
    lines: list[str] = []
    counts = {"PASS": 0, "WARN": 0, "FAIL": 0}
    for section in sections:
        lines.append(f"\n{section.title}")
        for check in section.checks:
            counts[check.label] += 1
            detail = check.detail.replace("\n", "\n        ")
            lines.append(f"  {check.label}  {check.name}: {detail}")
            if check.fix and check.ok is not True:
                lines.append(f"        fix: {check.fix}")
    lines.append(f"\n{counts['PASS']} passed, {counts['WARN']} warnings, {counts['FAIL']} failed.")
    return "\n".join(lines)
