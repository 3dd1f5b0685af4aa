"""Granting the partner's consent once: the device code flow of a CONFIDENTIAL client.

Why this shape (see docs/connect-partner-account.md):
- The sync redeems the refresh token with the app's client secret. Entra ID binds a refresh token
  to the client type that obtained it: a token from a public-client flow (MSAL's
  `PublicClientApplication`, which needs "Allow public client flows") is refused when later
  presented with a secret (AADSTS700025). So the device code is polled with the client secret;
  with "Allow public client flows" left at its default (No) Entra ID treats the flow as a
  confidential client's and issues a refresh token the sync can use.
- MSAL Python exposes the device flow only on `PublicClientApplication`, but its implementation
  needs nothing public-client specific: `_DeviceFlowApp` borrows it onto a
  `ConfidentialClientApplication`, whose token requests carry the secret. MSAL still does the
  OAuth: scopes, polling, `slow_down` (+5 s), expiry, and filling the token cache.
- The sign-in must carry MFA (`mfa` in the Partner Center token's `amr`): Partner Center refuses
  App+User calls without it. Without it nothing is stored and the likely causes are named.
- The new sign-in replaces the token cache file (mode 0600, atomic), so the next sync uses it
  without SYNC365_REFRESH_TOKEN and never an older account left in the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msal
import requests

from sync365_pipeline.core.settings import AccountSettings, ConfigError
from sync365_pipeline.microsoft import (
    MicrosoftSession,
    TokenCacheFile,
    TokenFacts,
    account_session,
)
from sync365_pipeline.microsoft.auth import build_app, call_msal
from sync365_pipeline.microsoft.errors import (
    classify_token_error,
)

T = TypeVar("T")

# Why a sign-in carries no `mfa` claim, as partners meet it (microsoft-apis.md §3.3-3.4).
NO_MFA_CAUSES = (
    "the sign-in came from a trusted (whitelisted) IP or named location that is exempt from "
    "MFA: sign in from elsewhere or remove the exemption for the sync account",
    "MFA is done by a third-party provider (such as Duo through a Conditional Access custom "
    "control) whose result Entra ID does not record as `mfa`: use Entra ID MFA, or a provider "
    "integrated as an external authentication method",
    "per-user MFA is off and no Conditional Access policy (or security defaults) requires MFA "
    "for the sync account: require it, register a method, then sign in again",
)


class ConsentError(Exception):
    """The consent sign-in did not produce a usable refresh token; nothing was stored."""

    def __init__(self, problem: str, remedy: str) -> None:
        super().__init__(f"{problem} {remedy}")
        self.problem = problem
        self.remedy = remedy


@dataclass(frozen=True)
class DeviceCode:
    """What the person signing in needs: where to go and what to type."""

    user_code: str
    verification_uri: str
    expires_at: datetime


@dataclass(frozen=True)
class Consent:
    """A granted consent: facts about the sign-in (never the token) and where it is stored."""

    facts: TokenFacts
    token_cache_path: Path


class _DeviceFlowApp(msal.ConfidentialClientApplication):
    """A confidential client running MSAL's own device flow, so each poll carries the secret."""

    DEVICE_FLOW_CORRELATION_ID = msal.PublicClientApplication.DEVICE_FLOW_CORRELATION_ID
    initiate_device_flow = msal.PublicClientApplication.initiate_device_flow
    acquire_token_by_device_flow = msal.PublicClientApplication.acquire_token_by_device_flow


def confidential_app(
    settings: AccountSettings, session: requests.Session, cache: msal.TokenCache
) -> _DeviceFlowApp:
    """The app at the account's own authority, built exactly as the pipeline builds its apps."""
    return msal_call(
        settings,
        lambda: build_app(
            settings.credentials,
            settings.endpoints,
            settings.tenant_id,
            session,
            cache,
            partner_level=True,
            app_class=_DeviceFlowApp,
        ),
    )


def msal_call(settings: AccountSettings, operation: Callable[[], T]) -> T:
    """Run an MSAL call at the account's own authority; failures become classified errors."""
    return call_msal(
        operation,
        tenant_id=settings.tenant_id,
        partner_level=True,
        authority_host=settings.endpoints.authority_host,
    )


def grant_consent(
    settings: AccountSettings,
    on_code: Callable[[DeviceCode], None],
    *,
    session: MicrosoftSession | None = None,
) -> Consent:
    """Run the device code flow for Partner Center; store the refresh token only if the sign-in
    carried MFA. Blocks until the sign-in completes, is declined or the code expires.

    Raises `ConsentError`, or a `PartnerAccessError` (bad secret, unknown tenant, unreachable
    endpoint) whose message says what to fix.
    """
    own_session = session is None
    session = session or account_session(settings)
    try:
        cache = msal.SerializableTokenCache()  # the new sign-in replaces whatever was cached
        app = confidential_app(settings, session, cache)
        scope = f"{settings.endpoints.partner_center_resource}/user_impersonation"
        flow = msal_call(settings, lambda: app.initiate_device_flow(scopes=[scope]))
        if "user_code" not in flow:
            raise _refused(settings, flow)
        # MSAL sleeps `interval` seconds between polls in 1 s steps; 0 would make it spin.
        flow["interval"] = max(int(flow["interval"]), 1)
        on_code(
            DeviceCode(
                user_code=flow["user_code"],
                verification_uri=flow.get("verification_uri", "https://microsoft.com/devicelogin"),
                expires_at=datetime.fromtimestamp(flow["expires_at"], UTC),
            )
        )
        result = msal_call(settings, lambda: app.acquire_token_by_device_flow(flow))
        if "access_token" not in result:
            raise _refused(settings, result)
        facts = TokenFacts.from_jwt(result["access_token"])
        if not facts.mfa:
            raise _no_mfa(facts)
        cache_file = TokenCacheFile(settings.token_cache_path)
        cache_file.save(cache)
        return Consent(facts=facts, token_cache_path=cache_file.path)
    finally:
        if own_session:
            session.close()


def _refused(settings: AccountSettings, result: dict[str, Any]) -> Exception:
    """The exception for a device-flow error response (RFC 8628 §3.5 codes first)."""
    error = result.get("error")
    if error == "authorization_declined":
        return ConsentError(
            "The sign-in was declined, so no consent was granted.",
            "Run `sync365 consent` again and approve the request as the sync account.",
        )
    if error in ("expired_token", "authorization_pending", "slow_down"):
        # MSAL stops polling at the code's expiry and returns the last "pending" answer.
        return ConsentError(
            "The code expired before the sign-in was completed.",
            "Run `sync365 consent` again and finish signing in before the printed expiry time.",
        )
    if error == "bad_verification_code":
        return ConsentError(
            "The identity platform no longer recognises the device code.",
            "Run `sync365 consent` again.",
        )
    if 700025 in (result.get("error_codes") or []):
        return ConsentError(
            "The app registration is set to treat device sign-ins as a public client "
            "(AADSTS700025), but the sync signs in with the client secret.",
            "In Entra ID > App registrations > the app > Authentication, set 'Allow public "
            "client flows' to No, then run `sync365 consent` again.",
        )
    return classify_token_error(result, tenant_id=settings.tenant_id, partner_level=True)


def _no_mfa(facts: TokenFacts) -> ConsentError:
    amr = ", ".join(facts.amr) or "none"
    causes = "".join(f"\n  - {cause}" for cause in NO_MFA_CAUSES)
    return ConsentError(
        f"The sign-in of {facts.account or 'the account'} carried no multi-factor "
        f"authentication (amr: {amr}). Partner Center refuses such tokens, so nothing was "
        f"stored. Likely causes:{causes}",
        "\nFix the cause, then run `sync365 consent` again and complete the MFA prompt.",
    )


def partner_account(accounts: list[AccountSettings], name: str | None) -> AccountSettings:
    """The partner account to consent for: the named one, or the only one. `ConfigError` names
    the choices otherwise (direct tenants sign in with client credentials: no consent)."""
    partners = [a for a in accounts if a.kind == "partner"]
    if name is not None:
        chosen = next((a for a in accounts if a.name == name), None)
        if chosen is None:
            known = ", ".join(a.name for a in accounts)
            raise ConfigError(f"No account named {name!r}; the accounts are: {known}.")
        if chosen.kind != "partner":
            raise ConfigError(
                f"Account {name!r} is a direct tenant: it signs in with client credentials and "
                "needs no consent sign-in."
            )
        return chosen
    if len(partners) == 1:
        return partners[0]
    if not partners:
        raise ConfigError("No partner account is configured: direct tenants need no consent.")
    names = ", ".join(a.name for a in partners)
    raise ConfigError(
        f"Several partner accounts are configured ({names}): choose one with --account."
    )
