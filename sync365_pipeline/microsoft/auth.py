"""Tokens for Partner Center and Graph from the partner's refresh token (Secure Application Model).

MSAL does the OAuth; this module decides how it is used:
- one `ConfidentialClientApplication` per authority (MSAL binds an app to one tenant), created
  lazily, all sharing one HTTP session whose OpenID documents come from one template
  (`openid.py`); the partner's apps share the persisted `SerializableTokenCache`, each customer's
  has its own;
- the refresh token comes from the cache file; the configured one is imported only when the cache
  has no account, or once when the cached one is dead (so a new SYNC365_REFRESH_TOKEN is used);
- the cache is saved atomically with mode 0600 so the rotated refresh token survives, with the
  access tokens (the partner's and each customer's) so a warm sync sends no token request;
- every MSAL outcome (dict, exception) is classified by `errors.py`;
- claims are decoded (not verified: MSAL and the service do that) only to report facts such as
  expiry and MFA; tokens never reach a log, an exception or a repr.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msal
import requests

from sync365_pipeline.core.settings import Endpoints, PartnerCredentials, Secret, is_guid
from sync365_pipeline.microsoft.errors import (
    MalformedResponse,
    MicrosoftError,
    NoRefreshToken,
    PartnerAccessError,
    PartnerMfaMissing,
    RefreshTokenExpired,
    RefreshTokenRevoked,
    TenantGone,
    TokenCacheCorrupt,
    TransientError,
    classify_token_error,
    classify_transport_error,
)
from sync365_pipeline.microsoft.http import attribute
from sync365_pipeline.microsoft.openid import (
    OpenIdConfigurations,
    OpenIdServingClient,
    openid_store_path,
)
from sync365_pipeline.microsoft.private_file import write_private_file

log = logging.getLogger(__name__)

T = TypeVar("T")
CUSTOMER_TOKENS_SECTION = "Sync365CustomerTokens"
_CACHE_SECTIONS = frozenset(
    {"AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata", CUSTOMER_TOKENS_SECTION}
)
MSAL_EXPIRY_MARGIN_S = 300  # MSAL treats an access token with less time left as expired


@dataclass(frozen=True)
class TokenFacts:
    """What a token says about itself (from its unverified claims): safe to store and show."""

    tenant_id: str
    audience: str
    expires_at: datetime
    account: str | None
    amr: tuple[str, ...]
    scopes: tuple[str, ...]

    @property
    def mfa(self) -> bool:
        return "mfa" in self.amr

    @classmethod
    def from_jwt(cls, token: str) -> TokenFacts:
        """Decode the payload of a JWT; `MalformedResponse` if it is not one."""
        try:
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
            tenant_id = str(claims["tid"])
        except (IndexError, ValueError, KeyError, TypeError, binascii.Error):
            raise MalformedResponse(
                "The identity platform issued an access token without readable JWT claims."
            ) from None
        amr = claims.get("amr")
        return cls(
            tenant_id=tenant_id,
            audience=str(claims.get("aud", "")),
            expires_at=expires_at,
            account=claims.get("upn")
            or claims.get("unique_name")
            or claims.get("preferred_username"),
            amr=tuple(str(method) for method in amr) if isinstance(amr, list) else (),
            scopes=tuple(str(claims.get("scp", "")).split()),
        )


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and its facts; `value` is a `Secret`, so the repr never shows the token."""

    value: Secret
    facts: TokenFacts

    def authorization(self) -> str:
        """The `Authorization` header value."""
        return f"Bearer {self.value.reveal()}"


class CustomerTokens:
    """Each customer's access tokens (and MSAL accounts) kept between syncs, by tenant, outside
    the shared cache: a customer app starts from its own entries only (`TokenProvider
    ._customer_token` says why), and a warm sync reuses a token with time left instead of
    redeeming the refresh token again. Thread-safe. No refresh token is kept here."""

    SECTIONS = ("AccessToken", "Account")

    def __init__(self, by_tenant: dict[str, dict[str, dict[str, Any]]] | None = None) -> None:
        self._by_tenant = by_tenant or {}
        self._lock = threading.Lock()
        self.changed = False

    def cache_for(self, tenant_id: str) -> msal.SerializableTokenCache:
        """A private cache holding only `tenant_id`'s kept entries."""
        cache = msal.SerializableTokenCache()
        with self._lock:
            entries = self._by_tenant.get(tenant_id.lower())
        if entries:
            cache.deserialize(json.dumps(entries))
        return cache

    def keep(self, tenant_id: str, cache: msal.SerializableTokenCache) -> None:
        """Keep what a customer app's cache gained (its rotated refresh token is dropped: the
        partner's stays the master copy)."""
        if not cache.has_state_changed:
            return
        state = json.loads(cache.serialize())
        entries = {section: state[section] for section in self.SECTIONS if state.get(section)}
        with self._lock:
            self._by_tenant[tenant_id.lower()] = entries
            self.changed = True

    def update(self, by_tenant: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Take the tokens another client gained (a chunk step's, `TokenProvider.gained`)."""
        with self._lock:
            self._by_tenant.update(
                {tenant.lower(): entries for tenant, entries in by_tenant.items()}
            )
            self.changed = self.changed or bool(by_tenant)

    def state(self, now: float) -> dict[str, dict[str, dict[str, Any]]]:
        """The tenants with an access token MSAL would still use (more than 5 minutes left)."""
        with self._lock:
            return {
                tenant: entries
                for tenant, entries in self._by_tenant.items()
                if any(
                    float(token.get("expires_on", 0)) > now + MSAL_EXPIRY_MARGIN_S
                    for token in entries.get("AccessToken", {}).values()
                )
            }


class TokenCacheFile:
    """The MSAL token cache on disk: plain JSON holding refresh and access tokens, so mode 0600,
    written atomically (a crash never leaves half a cache), one writer at a time in this process.

    Besides MSAL's own sections (the partner's tokens) it holds `CUSTOMER_TOKENS_SECTION`, the
    customers' access tokens by tenant (`CustomerTokens`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def load(self) -> msal.SerializableTokenCache:
        """The partner's cache in the file: empty if there is none, `TokenCacheCorrupt` if the
        file is unusable."""
        return self.load_with_customers()[0]

    def load_with_customers(self) -> tuple[msal.SerializableTokenCache, CustomerTokens]:
        """The partner's cache and the customers' tokens kept in the file."""
        cache = msal.SerializableTokenCache()
        with self._lock:
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return cache, CustomerTokens()
            except (OSError, UnicodeDecodeError) as exc:
                raise self._corrupt(f"cannot be read ({type(exc).__name__})") from None
            self._restrict_mode()
        try:
            state = json.loads(text) if text.strip() else {}
        except ValueError:
            raise self._corrupt("is not JSON") from None
        if not isinstance(state, dict) or not all(
            key in _CACHE_SECTIONS and isinstance(value, dict) for key, value in state.items()
        ):
            raise self._corrupt("is JSON but not an MSAL token cache")
        customers = state.pop(CUSTOMER_TOKENS_SECTION, {})
        if not all(
            isinstance(entries, dict) and set(entries) <= set(CustomerTokens.SECTIONS)
            for entries in customers.values()
        ):
            raise self._corrupt(f"has a {CUSTOMER_TOKENS_SECTION} section of the wrong shape")
        cache.deserialize(json.dumps(state))
        return cache, CustomerTokens(customers)

    def save(
        self, cache: msal.SerializableTokenCache, customers: CustomerTokens | None = None
    ) -> None:
        """Replace the file with the partner's cache and the customers' tokens that MSAL would
        still use (`write_private_file`: atomic, 0600).

        Access tokens are kept, so a sync within their lifetime sends no token request; a
        customer whose consent was revoked meanwhile shows it once its token expires (within
        the hour), which is when Microsoft's own services stop honouring it too."""
        with self._lock:
            state = json.loads(cache.serialize())
            if customers is not None and (kept := customers.state(time.time())):
                state[CUSTOMER_TOKENS_SECTION] = kept
            write_private_file(self.path, json.dumps(state))

    def keep_gained(self, gained: Sequence[Path]) -> None:
        """Add the customer tokens that steps which must not write this file (parallel chunk
        steps) left in `gained` files (`TokenProvider.write_gained`), then delete those files:
        this file keeps one writer at a time, and a warm sync still finds every token."""
        if not gained:
            return
        cache, customers = self.load_with_customers()
        for path in gained:
            customers.update(json.loads(path.read_text(encoding="utf-8")))
        self.save(cache, customers)
        for path in gained:
            path.unlink(missing_ok=True)

    def _restrict_mode(self) -> None:
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "Token cache %s was readable by others (mode %o): set to 0600", self.path, mode
            )
            os.chmod(self.path, 0o600)

    def _corrupt(self, what: str) -> TokenCacheCorrupt:
        return TokenCacheCorrupt(
            f"The token cache file {self.path} {what}.", code="token_cache_corrupt"
        )


@dataclass
class _Authority:
    """One MSAL app and the lock that makes sure it is built once."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    app: msal.ConfidentialClientApplication | None = None


class TokenProvider:
    """Access tokens for the partner (Partner Center, partner-tenant Graph) and for each customer
    (Graph at the customer's authority). Thread-safe.

    With `app_only`, a direct tenant's app signs in with client credentials instead: no user, no
    refresh token, Graph only.
    """

    def __init__(
        self,
        credentials: PartnerCredentials,
        endpoints: Endpoints,
        session: requests.Session,
        cache_file: TokenCacheFile,
        *,
        app_only: bool = False,
    ) -> None:
        self._app_only = app_only
        self._credentials = credentials
        self._endpoints = endpoints
        self._cache_file = cache_file
        self._cache: msal.SerializableTokenCache | None = None  # loaded on first use
        self._customers = CustomerTokens()  # replaced by the file's on first use
        self._cache_lock = threading.Lock()
        # MSAL's transport: the shared session, with every tenant's OpenID configuration
        # answered from the partner authority's own document (`openid.py`).
        self._msal_http = OpenIdServingClient(
            session,
            OpenIdConfigurations(
                endpoints.authority_host,
                credentials.partner_tenant_id,
                session,
                store=openid_store_path(cache_file.path),
            ),
        )
        self._authorities: dict[str, _Authority] = {}
        self._authorities_lock = threading.Lock()
        self._account_lock = threading.RLock()  # guards the account and the token import
        self._account: dict[str, Any] | None = None
        self._configured_token_tried = False

    def __repr__(self) -> str:
        partner = self._credentials.partner_tenant_id
        return f"TokenProvider(partner={partner!r}, cache={self._cache_file.path})"

    @property
    def partner_tenant_id(self) -> str:
        return self._credentials.partner_tenant_id

    def partner_center_token(self) -> AccessToken:
        """Partner Center (App+User) at the partner authority; it must carry MFA in `amr`."""
        token = self._partner_token(f"{self._endpoints.partner_center_resource}/user_impersonation")
        if not token.facts.mfa:
            amr = ", ".join(token.facts.amr) or "none"
            raise PartnerMfaMissing(
                f"The partner's Partner Center token for {token.facts.account or 'the account'} "
                f"has no 'mfa' in its amr claim (amr: {amr}); Partner Center rejects such calls "
                "(error 900421).",
                code="amr_without_mfa",
                tenant_id=self.partner_tenant_id,
            )
        return token

    def partner_graph_token(self) -> AccessToken:
        """Graph in the partner tenant (GDAP relationships, contracts)."""
        return self._partner_token(f"{self._endpoints.graph_resource}/.default")

    def graph_token(self, tenant_id: str) -> AccessToken:
        """Graph in a customer tenant; failures are the tenant's unless the token or app is dead."""
        scope = f"{self._endpoints.graph_resource}/.default"
        if self._app_only:
            return self._client_credentials_token(tenant_id, scope)
        if tenant_id.lower() == self.partner_tenant_id.lower():
            return self._partner_token(scope)
        return self._customer_token(tenant_id, scope)

    def release(self, tenant_id: str) -> None:
        """Forget a customer's app once its tenant is synced, so a run over thousands of tenants
        does not keep thousands of apps alive; the tokens it gained are kept (`CustomerTokens`)."""
        if tenant_id.lower() == self.partner_tenant_id.lower():
            return
        with self._authorities_lock:
            authority = self._authorities.pop(tenant_id.lower(), None)
        if authority is not None and authority.app is not None:
            self._customers.keep(tenant_id, authority.app.token_cache)

    def save(self) -> None:
        """Persist the cache if it changed (the rotated refresh token must not be lost, and the
        access tokens spare the next sync its token requests)."""
        if self._cache is not None and (self._cache.has_state_changed or self._customers.changed):
            self._cache_file.save(self._cache, self._customers)

    def write_gained(self, path: Path) -> None:
        """Write the customer tokens this client holds (0600) for `TokenCacheFile.keep_gained`,
        instead of saving the cache itself."""
        write_private_file(path, json.dumps(self._customers.state(time.time())))

    def _token_cache(self) -> msal.SerializableTokenCache:
        """The cache, read from its file on first use so that a corrupt file surfaces from a
        token call (where callers record partner-level failures), and is never overwritten."""
        with self._cache_lock:
            if self._cache is None:
                self._cache, self._customers = self._cache_file.load_with_customers()
            return self._cache

    def _partner_token(self, scope: str) -> AccessToken:
        account = self._partner_account()
        try:
            return self._silent(self.partner_tenant_id, scope, account)
        except (RefreshTokenExpired, RefreshTokenRevoked):
            # The operator may have set a new SYNC365_REFRESH_TOKEN as the remedy says.
            if not self._import_configured_token():
                raise
            return self._silent(self.partner_tenant_id, scope, self._partner_account())

    def _partner_account(self) -> dict[str, Any]:
        """The partner's account; imports the configured refresh token if the cache has none."""
        with self._account_lock:
            if self._account is None:
                self._account = self._find_account()
            if self._account is None:
                if not self._import_configured_token():
                    raise NoRefreshToken(
                        f"No refresh token: the token cache {self._cache_file.path} has no "
                        "account and SYNC365_REFRESH_TOKEN is not set.",
                        code="no_refresh_token",
                        tenant_id=self.partner_tenant_id,
                    )
                self._account = self._find_account()
            if self._account is None:
                raise MalformedResponse(
                    "The identity platform redeemed the refresh token but returned no account "
                    "(no client_info or id_token).",
                    tenant_id=self.partner_tenant_id,
                )
            return self._account

    def _find_account(self) -> dict[str, Any] | None:
        app = self._app(self.partner_tenant_id, partner_level=True)
        accounts = app.get_accounts()
        home = [
            a
            for a in accounts
            if str(a.get("home_account_id", "")).endswith(f".{self.partner_tenant_id}")
        ]
        return (home or accounts or [None])[0]

    def _import_configured_token(self) -> bool:
        """Redeem SYNC365_REFRESH_TOKEN at the partner authority once per provider; False if there
        is none (or it was already tried). The rotated token lands in the cache."""
        refresh_token = self._credentials.refresh_token
        with self._account_lock:
            if refresh_token is None or self._configured_token_tried:
                return False
            self._configured_token_tried = True
            log.info("Importing the configured refresh token at the partner authority")
            scope = f"{self._endpoints.partner_center_resource}/user_impersonation"
            app = self._app(self.partner_tenant_id, partner_level=True)
            result = self._call(
                self.partner_tenant_id,
                True,
                lambda: app.acquire_token_by_refresh_token(refresh_token.reveal(), scopes=[scope]),
            )
            if "error" in result:
                raise classify_token_error(
                    result, tenant_id=self.partner_tenant_id, partner_level=True
                )
            self._account = None
            return True

    def _silent(self, tenant_id: str, scope: str, account: dict[str, Any]) -> AccessToken:
        partner_level = tenant_id.lower() == self.partner_tenant_id.lower()
        app = self._app(tenant_id, partner_level=partner_level)
        result = self._call(
            tenant_id,
            partner_level,
            lambda: app.acquire_token_silent_with_error([scope], account=account),
        )
        if result is None:  # the account's refresh token is gone from the cache
            if partner_level and self._import_configured_token():
                return self._silent(tenant_id, scope, self._partner_account())
            raise NoRefreshToken(
                f"The token cache {self._cache_file.path} has an account but no refresh token.",
                code="no_refresh_token",
                tenant_id=tenant_id,
            )
        if "access_token" not in result:
            raise classify_token_error(result, tenant_id=tenant_id, partner_level=partner_level)
        return self._access_token(tenant_id, result["access_token"])

    def _customer_token(self, tenant_id: str, scope: str) -> AccessToken:
        """A customer's token from its app's own small cache, else by redeeming the partner's
        refresh token at the customer's authority.

        Customer apps keep their tokens in a private cache, seeded with the tenant's kept
        entries (`CustomerTokens`): in the shared cache every lookup scans every other tenant's
        tokens under one lock, which made a 10,000-tenant sync quadratic (bench/README.md). The
        partner's refresh token stays the master copy in the shared cache; the rotated copies
        customer authorities return are not needed (Entra keeps the old one valid).
        """
        app = self._app(tenant_id, partner_level=False)
        result = None
        if accounts := app.get_accounts():
            result = self._call(
                tenant_id,
                False,
                lambda: app.acquire_token_silent_with_error([scope], account=accounts[0]),
            )
        if result is None:
            refresh_token = self._partner_refresh_token()
            result = self._call(
                tenant_id,
                False,
                lambda: app.acquire_token_by_refresh_token(refresh_token, scopes=[scope]),
            )
        if "access_token" not in result:
            raise classify_token_error(result, tenant_id=tenant_id, partner_level=False)
        return self._access_token(tenant_id, result["access_token"])

    def _partner_refresh_token(self) -> str:
        account = self._partner_account()
        for entry in self._token_cache().search(
            msal.TokenCache.CredentialType.REFRESH_TOKEN,
            query={
                "client_id": self._credentials.client_id,
                "home_account_id": account.get("home_account_id"),
            },
        ):
            return str(entry["secret"])
        raise NoRefreshToken(
            f"The token cache {self._cache_file.path} has an account but no refresh token.",
            code="no_refresh_token",
            tenant_id=self.partner_tenant_id,
        )

    @staticmethod
    def _access_token(tenant_id: str, token: str) -> AccessToken:
        facts = TokenFacts.from_jwt(token)
        if is_guid(tenant_id) and facts.tenant_id.lower() != tenant_id.lower():
            raise MalformedResponse(
                f"A token requested for tenant {tenant_id} was issued for {facts.tenant_id}.",
                code="tid_mismatch",
                tenant_id=tenant_id,
            )
        return AccessToken(Secret(token), facts)

    def _client_credentials_token(self, tenant_id: str, scope: str) -> AccessToken:
        app = self._app(tenant_id, partner_level=False)
        result = self._call(tenant_id, False, lambda: app.acquire_token_for_client([scope]))
        if "access_token" not in result:
            raise classify_token_error(result, tenant_id=tenant_id, partner_level=False)
        return self._access_token(tenant_id, result["access_token"])

    def _app(self, tenant_id: str, *, partner_level: bool) -> msal.ConfidentialClientApplication:
        """The app for `tenant_id`'s authority, built once (its constructor fetches discovery)."""
        with self._authorities_lock:
            authority = self._authorities.setdefault(tenant_id.lower(), _Authority())
        with authority.lock:
            if authority.app is None:
                authority.app = self._call(
                    tenant_id, partner_level, lambda: self._new_app(tenant_id, partner_level)
                )
            return authority.app

    def _new_app(self, tenant_id: str, partner_level: bool) -> msal.ConfidentialClientApplication:
        shared = self._token_cache()  # also loads the customers' kept tokens
        own_authority = tenant_id.lower() == self.partner_tenant_id.lower()
        return build_app(
            self._credentials,
            self._endpoints,
            tenant_id,
            self._msal_http,
            # Only the account's own authority (a partner's, or a direct tenant's app-only
            # sign-in) shares the persisted cache; customers get theirs (see `_customer_token`).
            shared if own_authority else self._customers.cache_for(tenant_id),
            partner_level=partner_level,
        )

    def _call(self, tenant_id: str, partner_level: bool, operation: Callable[[], T]) -> T:
        return call_msal(
            operation,
            tenant_id=tenant_id,
            partner_level=partner_level,
            authority_host=self._endpoints.authority_host,
        )


AppT = TypeVar("AppT", bound=msal.ConfidentialClientApplication)


def build_app(
    credentials: PartnerCredentials,
    endpoints: Endpoints,
    tenant_id: str,
    session: requests.Session | OpenIdServingClient,
    cache: msal.TokenCache,
    *,
    partner_level: bool,
    app_class: type[AppT] = msal.ConfidentialClientApplication,  # type: ignore[assignment]
) -> AppT:
    """The app at `tenant_id`'s authority (its constructor fetches OpenID discovery), with
    MSAL's constructor failures classified. Also used by `sync365 consent` and `doctor`."""
    authority_url = f"{endpoints.authority_host}/{tenant_id}"
    try:
        return app_class(
            credentials.client_id,
            client_credential=credentials.client_secret.reveal(),
            authority=authority_url,
            instance_discovery=False,
            http_client=session,
            token_cache=cache,
        )
    except KeyError:
        raise MalformedResponse(
            f"The OpenID configuration of {authority_url} lacks a required endpoint.",
            tenant_id=tenant_id,
        ) from None
    except ValueError:
        # MSAL's way of saying that OpenID discovery answered 4xx: an unknown tenant.
        problem = f"The identity platform does not know tenant {tenant_id} (discovery failed)."
        if partner_level:
            raise PartnerAccessError(
                problem,
                remedy="Check the partner's tenant id and SYNC365_AUTHORITY_HOST, then rerun.",
                code="AADSTS90002",
                tenant_id=tenant_id,
            ) from None
        raise TenantGone(problem, code="AADSTS90002", tenant_id=tenant_id) from None


def call_msal(
    operation: Callable[[], T], *, tenant_id: str, partner_level: bool, authority_host: str
) -> T:
    """Run an MSAL call (or build an app), turning its exceptions into classified errors."""
    try:
        return operation()
    except MicrosoftError as exc:  # raised by our session below MSAL
        raise attribute(exc, tenant_id) from None
    except json.JSONDecodeError:  # an error answer without JSON (MSAL parses every body)
        raise MalformedResponse(
            f"The identity platform answered for tenant {tenant_id} with a body that is not JSON.",
            tenant_id=tenant_id,
        ) from None
    except msal.exceptions.MsalServiceError as exc:  # MSAL's only signal for a final 5xx
        code = _http_code(exc)
        raise TransientError(
            f"The identity platform failed for tenant {tenant_id} with {code} after retries.",
            code=code,
            tenant_id=tenant_id,
        ) from None
    except requests.RequestException as exc:
        raise classify_transport_error(
            exc,
            url=exc.request.url if exc.request is not None else authority_host,
            tenant_id=tenant_id,
            partner_level=partner_level,
            service="identity",
        ) from None
    except (TypeError, AttributeError, KeyError, ValueError, RecursionError) as exc:
        # A token answer of an odd shape (a list, a number where a string belongs) that MSAL
        # trips over while reading it.
        raise MalformedResponse(
            f"The identity platform answered for tenant {tenant_id} with a token response that "
            f"could not be read ({type(exc).__name__}).",
            code="MalformedTokenResponse",
            tenant_id=tenant_id,
        ) from None


def _http_code(exc: msal.exceptions.MsalServiceError) -> str:
    """'HTTP 503' from MSAL's message 'HTTP Error: 503' (it carries no status attribute)."""
    match = re.search(r"HTTP Error: (\d{3})", str(exc.args[0]) if exc.args else "")
    return f"HTTP {match.group(1)}" if match else "HTTP 5xx"
