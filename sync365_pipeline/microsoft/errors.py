# ruff: noqa: N818 - the class names are the contract the other layers are written against
"""The one place that turns Microsoft's failures into typed exceptions.

Three kinds of failure, decided here and nowhere else:

- partner-level (`PartnerAccessError`): the refresh token, the app or the partner's sign-in is
  broken, so nothing can be synced; the run fails and the message says what to do;
- tenant-level (`TenantAccessError`): one customer cannot be read; the sync records the status
  and goes on;
- everything else (`TransientError`, `Throttled`, `MalformedResponse`, `UnclassifiedError`): this
  call failed; `retryable` says whether trying again later can help.

Identity-platform errors are classified by their AADSTS number (`error_codes[0]`), then by the
OAuth `error`/`suberror` strings; Microsoft says never to parse `error_description`, so it is only
quoted (its first sentence) in messages. Messages never contain a token, a secret or a whole body.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import requests
import urllib3

from sync365_pipeline.core.redaction import redact
from sync365_pipeline.core.status import TenantStatus

_MAX_QUOTE = 300  # characters of Microsoft's own text quoted in a message
_RECONSENT = (
    "Grant consent again with `sync365 consent` (or set SYNC365_REFRESH_TOKEN to a new refresh "
    "token), then rerun."
)


class MicrosoftError(Exception):
    """A Microsoft call failed. `str(exc)` is safe to log: never a token, secret or whole body
    (the message passes `redact`, whatever a hostile service echoed into it)."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        tenant_id: str | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.tenant_id = tenant_id

    def __str__(self) -> str:
        return self.message


class TransientError(MicrosoftError):
    """5xx, timeouts, connection resets, truncated or HTML bodies: a later attempt may succeed."""

    retryable = True


class Throttled(TransientError):
    """429 still answered after the HTTP layer's retries (or a wait longer than it allows)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class MalformedResponse(MicrosoftError):
    """The body is not JSON, or not the shape the API documents, even after retries."""


class RedirectRefused(MicrosoftError):
    """A Microsoft endpoint answered with a redirect (or from another origin). It is never
    followed: the request carries a token, a client secret or a refresh token, and a redirect is
    how a hostile hop or a misconfigured proxy would collect them."""


class DeadlineExceeded(TransientError):
    """The whole response (connect, headers and body) took longer than its deadline; the
    connection was cut. A body that trickles in never holds a worker for longer."""


class UnclassifiedError(MicrosoftError):
    """Microsoft refused the call with a code this module does not know; the code is kept."""


class AlreadyExists(MicrosoftError):
    """Partner Center refused to create what exists already: `Permission entry already exists.`
    for a repeated CPV consent (microsoft-apis-more.md §4.3; its HTTP status is not documented,
    so the description decides). A caller that creates treats it as done."""


class AppCredentialsUnreadable(MicrosoftError):
    """Graph would not show the partner's app registration (403 or 404), so its client secrets'
    end dates are unknown; the sync itself is not affected."""

    remedy: ClassVar[str] = (
        "Check that SYNC365_CLIENT_ID is the app registration in the partner tenant and that the "
        "app has the Application.Read.All (or Directory.Read.All) delegated permission with admin "
        "consent; then rerun."
    )


class SignInActivityUnavailable(MicrosoftError):
    """Graph will not show a tenant's sign-in activity (microsoft-apis-more.md §3.4): the tenant
    has no Entra ID P1 or P2, or the app lacks AuditLog.Read.All, or the partner's roles there
    cannot read sign-in data; `code` says which. Its users can still be read without
    `signInActivity`."""


class DeltaTokenExpired(MicrosoftError):
    """Graph no longer knows a delta link's token (tokens expire after 7 days; the sync state can
    also be reset, as 410 Gone): start a new round without a token, which reads every user."""


class PartnerAccessError(MicrosoftError):
    """The partner's own sign-in or app is broken: the whole sync fails.

    `problem` says what happened, `remedy` what the operator must do; the message is both.
    """

    default_remedy: ClassVar[str] = "Check the partner's sign-in settings (SYNC365_*), then rerun."

    def __init__(self, problem: str, *, remedy: str | None = None, **kwargs: Any) -> None:
        self.problem = redact(problem)
        self.remedy = remedy or self.default_remedy
        super().__init__(f"{problem} {self.remedy}", **kwargs)


class OpenIdConfigurationRefused(PartnerAccessError):
    """The authority's OpenID configuration points somewhere else than the authority itself (or
    is not one): following it could send the client secret and refresh token there."""

    default_remedy = (
        "Check SYNC365_AUTHORITY_HOST (and SYNC365_CLOUD): it must be the identity platform's "
        "sign-in host, whose documents point at itself; then rerun."
    )


class RefreshTokenExpired(PartnerAccessError):
    default_remedy = _RECONSENT


class RefreshTokenRevoked(PartnerAccessError):
    default_remedy = (
        "The partner account's sessions were revoked, or it is disabled, locked or its password "
        "must change: fix the account in Entra ID, then grant consent again with `sync365 "
        "consent` (or set SYNC365_REFRESH_TOKEN to a new refresh token), then rerun."
    )


class PartnerMfaMissing(PartnerAccessError):
    default_remedy = (
        "Partner Center requires multi-factor authentication in the partner's sign-in. Run "
        "`sync365 consent` again and complete Entra ID MFA (a trusted-IP exemption or a "
        "third-party MFA that Entra ID does not see leaves no `mfa` claim), then rerun."
    )


class InvalidClient(PartnerAccessError):
    default_remedy = (
        "The partner app registration is misconfigured: check SYNC365_CLIENT_ID and that "
        "SYNC365_CLIENT_SECRET holds a current secret VALUE (not its id) of that app, and that "
        "the app is enabled with its API permissions consented; then rerun."
    )


class NoRefreshToken(PartnerAccessError):
    default_remedy = (
        "Run `sync365 consent` to sign in once (with MFA), or set SYNC365_REFRESH_TOKEN to the "
        "partner's Secure Application Model refresh token, then rerun."
    )


class TokenCacheCorrupt(PartnerAccessError):
    default_remedy = (
        "Move the file aside (it holds secrets: delete it once unneeded), then run "
        "`sync365 consent` or set SYNC365_REFRESH_TOKEN, and rerun."
    )


class EndpointUnreachable(PartnerAccessError):
    default_remedy = (
        "Check the network, proxy settings and SYNC365_AUTHORITY_HOST, SYNC365_GRAPH_URL and "
        "SYNC365_PARTNER_CENTER_URL (or SYNC365_CLOUD), then rerun."
    )


class TenantAccessError(MicrosoftError):
    """One customer cannot be read; the sync records `status` and continues."""

    status: ClassVar[TenantStatus] = TenantStatus.ERROR


class ConsentRevoked(TenantAccessError):
    status = TenantStatus.CONSENT_REVOKED


class AccessRemoved(TenantAccessError):
    status = TenantStatus.ACCESS_REMOVED


class NoCommerceRelationship(AccessRemoved):
    """Partner Center's 403 code 20002: the partner does not sell to this customer (an advisor
    or GDAP-only customer, or one that moved to another reseller), so it has no partner-side
    subscriptions or SKUs. Graph may still serve the tenant: a caller of a commerce call treats
    it as "sold by someone else", not as lost access."""


class MfaRequired(TenantAccessError):
    status = TenantStatus.MFA_REQUIRED


class Blocked(TenantAccessError):
    status = TenantStatus.BLOCKED


class TenantGone(TenantAccessError):
    status = TenantStatus.TENANT_GONE


class ConsentFailed(TenantAccessError):
    """Partner Center would not grant the partner app's CPV consent in a customer tenant: the
    customer stays unreachable until a human grants it (`remedy`)."""

    status = TenantStatus.CONSENT_REVOKED
    remedy: ClassVar[str] = (
        "Check that the partner account is an Admin Agent in Partner Center and that the customer "
        "still has a reseller or GDAP relationship with the partner, or have the customer's "
        "Global Administrator consent to the app; then rerun."
    )


# AADSTS number -> (class, what it means in one phrase). Sources: microsoft-apis.md §1.5, §4.5.
_AADSTS: dict[int, tuple[type[MicrosoftError], str]] = {
    700082: (RefreshTokenExpired, "The partner refresh token expired after 90 days without use"),
    70008: (RefreshTokenExpired, "The partner refresh token expired"),
    70043: (RefreshTokenExpired, "The partner refresh token expired under a sign-in frequency"),
    70000: (RefreshTokenExpired, "The partner refresh token is invalid or expired"),
    50089: (RefreshTokenExpired, "The partner sign-in flow token expired"),
    700084: (RefreshTokenExpired, "The partner refresh token reached its fixed lifetime"),
    50173: (RefreshTokenRevoked, "The partner refresh token was revoked"),
    50057: (RefreshTokenRevoked, "The partner account is disabled"),
    50055: (RefreshTokenRevoked, "The partner account's password expired"),
    50053: (RefreshTokenRevoked, "The partner account is locked"),
    7000215: (InvalidClient, "The client secret is invalid"),
    7000222: (InvalidClient, "The client secret expired"),
    70002: (InvalidClient, "The client credentials were rejected"),
    7000218: (InvalidClient, "The request carried no client secret"),
    700016: (InvalidClient, "The app was not found in the directory"),
    700011: (InvalidClient, "The app was not found in the tenant"),
    70001: (InvalidClient, "The app is disabled"),
    7000112: (InvalidClient, "The app is disabled"),
    700007: (InvalidClient, "The refresh token was issued to a different client id"),
    700027: (InvalidClient, "The client assertion was rejected"),
    65002: (InvalidClient, "The app needs pre-authorisation for this resource"),
    650056: (InvalidClient, "The app lacks the permission or its admin consent"),
    650057: (InvalidClient, "The app does not list the requested permission"),
    65001: (ConsentRevoked, "The app has no consent in the tenant"),
    65004: (ConsentRevoked, "Consent to the app was declined"),
    90094: (ConsentRevoked, "Admin consent to the app is required"),
    90095: (ConsentRevoked, "Admin consent to the app is required"),
    90099: (ConsentRevoked, "The app is not authorised for partner delegated admins"),
    50020: (AccessRemoved, "The partner account has no access to the tenant"),
    50177: (AccessRemoved, "The partner account has no access to the tenant"),
    50034: (AccessRemoved, "The partner account is not in the tenant's directory"),
    51004: (AccessRemoved, "The partner account is not in the tenant's directory"),
    500011: (AccessRemoved, "The resource's service principal is missing in the tenant"),
    50076: (MfaRequired, "Multi-factor authentication is required"),
    50079: (MfaRequired, "The account must register for multi-factor authentication"),
    50078: (MfaRequired, "The presented multi-factor authentication expired"),
    50074: (MfaRequired, "Strong authentication is required"),
    53003: (Blocked, "Conditional Access blocked the sign-in"),
    530034: (Blocked, "Delegated admin access is blocked because of account risk"),
    500212: (Blocked, "A cross-tenant access policy blocked the sign-in"),
    500213: (Blocked, "A cross-tenant access policy blocked the sign-in"),
    90002: (TenantGone, "The tenant does not exist"),
    5000224: (TenantGone, "The tenant was deleted or is unavailable"),
    50196: (Throttled, "The identity platform detected a request loop"),
    90055: (Throttled, "The identity platform throttled the tenant"),
    50033: (TransientError, "The identity platform had a transient error"),
    90006: (TransientError, "The identity platform had a transient error"),
    90033: (TransientError, "The identity platform had a transient error"),
    90090: (TransientError, "The identity platform had a transient error"),
    90024: (TransientError, "The identity platform had a transient error"),
}

# Used only when a response carries no AADSTS number.
_OAUTH_ERRORS: dict[str, tuple[type[MicrosoftError], str]] = {
    "invalid_client": (InvalidClient, "The client credentials were rejected"),
    "unauthorized_client": (InvalidClient, "The app is not authorised"),
    "consent_required": (ConsentRevoked, "The app has no consent in the tenant"),
    "temporarily_unavailable": (TransientError, "The identity platform is unavailable"),
}
_SUBERRORS: dict[str, tuple[type[MicrosoftError], str]] = {
    "consent_required": (ConsentRevoked, "The app has no consent in the tenant"),
    "user_password_expired": (RefreshTokenRevoked, "The partner account's password expired"),
    "basic_action": (MfaRequired, "Multi-factor authentication is required"),
    "additional_action": (MfaRequired, "Multi-factor authentication is required"),
}

# A customer-level reason seen at the PARTNER authority still stops everything: what to do then.
_PARTNER_REMEDIES: dict[type[TenantAccessError], str] = {
    ConsentRevoked: _RECONSENT,
    AccessRemoved: (
        "The partner account cannot sign in to the partner tenant: check "
        "SYNC365_PARTNER_TENANT_ID and the account's roles (Admin Agent), then rerun."
    ),
    Blocked: (
        "A Conditional Access or cross-tenant policy in the partner tenant blocks the sign-in: "
        "exempt the sync's account or app, or run from an allowed location, then rerun."
    ),
    TenantGone: (
        "The identity platform does not know the partner tenant: check "
        "SYNC365_PARTNER_TENANT_ID and SYNC365_AUTHORITY_HOST, then rerun."
    ),
}

_PARTNER_CENTER_CODES: dict[str, tuple[type[MicrosoftError], str]] = {
    "900421": (PartnerMfaMissing, "Partner Center rejected the token: MFA required"),
    "10001": (PartnerMfaMissing, "Partner Center rejected the token: MFA required"),
    "2032": (AccessRemoved, "Partner Center denied access to the customer"),
    "20002": (
        NoCommerceRelationship,
        "The partner has no commerce relationship with the customer",
    ),
    "60003": (TenantGone, "Partner Center does not know the tenant"),
}
# What Partner Center says when a CPV consent is posted twice (matched in lower case).
_ALREADY_EXISTS = "permission entry already exists"
_GRAPH_CODES: dict[str, tuple[type[MicrosoftError], str]] = {
    "Authorization_RequestDenied": (AccessRemoved, "Graph denied access to the tenant"),
    "Unauthorized_MissingMFA": (MfaRequired, "Graph requires multi-factor authentication"),
    "Authentication_RequestFromNonPremiumTenantOrB2CTenant": (
        SignInActivityUnavailable,
        "The tenant has no Entra ID P1 licence, which sign-in activity needs",
    ),
    "Authentication_MSGraphPermissionMissing": (
        SignInActivityUnavailable,
        "The app lacks the AuditLog.Read.All permission that sign-in activity needs",
    ),
    "Authentication_RequestFromUnsupportedUserRole": (
        SignInActivityUnavailable,
        "The partner's roles in the tenant cannot read sign-in activity",
    ),
    "syncStateNotFound": (DeltaTokenExpired, "Graph no longer knows the delta token"),
    "resyncRequired": (DeltaTokenExpired, "Graph reset the delta sync"),
}


def classify_token_error(
    result: Mapping[str, Any], *, tenant_id: str, partner_level: bool
) -> MicrosoftError:
    """Type an MSAL error dict (the identity platform's JSON, verbatim).

    `partner_level` is True for tokens redeemed at the partner's own authority: then every
    failure stops the sync. A dead refresh token or app stops it wherever it is seen.
    """
    codes = result.get("error_codes")
    number = codes[0] if isinstance(codes, list) and codes and isinstance(codes[0], int) else None
    error = str(result.get("error") or "")
    suberror = str(result.get("suberror") or "")
    if number is not None and number in _AADSTS:
        cls, meaning = _AADSTS[number]
    elif error in _OAUTH_ERRORS:
        cls, meaning = _OAUTH_ERRORS[error]
    elif suberror in _SUBERRORS:
        cls, meaning = _SUBERRORS[suberror]
    else:
        cls, meaning = UnclassifiedError, "The identity platform refused the token request"
    code = f"AADSTS{number}" if number is not None else (error or None)
    where = "the partner tenant" if partner_level else f"tenant {tenant_id}"
    detail = _quote(_first_sentence(result.get("error_description")))
    problem = f"{meaning} ({code or 'no error code'}) at {where}"
    if detail:
        problem += f': "{detail}"'
    problem += "."
    return _build(cls, problem, code=code, tenant_id=tenant_id, partner_level=partner_level)


def classify_response(
    response: requests.Response,
    *,
    service: Literal["graph", "partner_center"],
    tenant_id: str | None,
) -> MicrosoftError:
    """Type a failed Graph or Partner Center response; `tenant_id=None` is a partner-level call."""
    status = response.status_code
    body = _json_or_none(response)
    body_code, body_text = _service_error(body, service)
    target = f"tenant {tenant_id}" if tenant_id else "the partner tenant"
    name = "Graph" if service == "graph" else "Partner Center"
    where = f"{name} {_path(response.url)} for {target}"
    detail = f': "{_quote(body_text)}"' if body_text else ""

    if service == "partner_center" and _ALREADY_EXISTS in (body_text or "").lower():
        return AlreadyExists(
            f"{where} says the entry exists already (HTTP {status}){detail}.",
            code=body_code or f"HTTP {status}",
            http_status=status,
            tenant_id=tenant_id,
        )
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        wait = f" (Retry-After {retry_after:g} s)" if retry_after is not None else ""
        return Throttled(
            f"{where} is still throttled (HTTP 429){wait} after retries{detail}.",
            retry_after=retry_after,
            code=body_code or "HTTP 429",
            http_status=status,
            tenant_id=tenant_id,
        )
    if status >= 500:
        return TransientError(
            f"{where} failed with HTTP {status} after retries{detail}.",
            code=f"HTTP {status}",
            http_status=status,
            tenant_id=tenant_id,
        )
    if body is None:
        return MalformedResponse(
            f"{where} answered HTTP {status} with a body that is not JSON "
            f"({response.headers.get('Content-Type', 'no content type')}).",
            code=f"HTTP {status}",
            http_status=status,
            tenant_id=tenant_id,
        )
    table = _GRAPH_CODES if service == "graph" else _PARTNER_CENTER_CODES
    if body_code in table:
        cls, meaning = table[body_code]
    elif service == "graph" and status == 403:
        cls, meaning = AccessRemoved, "Graph denied access to the tenant"
    elif service == "graph" and status == 410:
        cls, meaning = DeltaTokenExpired, "Graph reset the delta sync"
    else:
        cls, meaning = UnclassifiedError, f"{name} refused the call"
    code = body_code or f"HTTP {status}"
    problem = f"{meaning} ({code}, HTTP {status}): {where}{detail}."
    return _build(
        cls,
        problem,
        code=code,
        tenant_id=tenant_id,
        partner_level=tenant_id is None,
        http_status=status,
    )


class TransportFailure(StrEnum):
    """What went wrong below HTTP, read from the whole chain of causes `requests` wraps."""

    CERTIFICATE = "certificate"  # the server's certificate failed verification
    UNRESOLVED = "unresolved"  # the host name does not resolve
    REFUSED = "refused"  # nothing listens there
    TIMEOUT = "timeout"
    RESET = "reset"  # reset, EOF or a broken connection mid-request
    OTHER = "other"

    @property
    def is_configuration(self) -> bool:
        """Retrying cannot help: a setting points at the wrong place or trusts the wrong CA."""
        return self in (
            TransportFailure.CERTIFICATE,
            TransportFailure.UNRESOLVED,
            TransportFailure.REFUSED,
        )


# The setting that points at each service, as the environment and the accounts file name it.
ENDPOINT_SETTINGS = {
    "identity": "SYNC365_AUTHORITY_HOST (authority_host in an accounts file)",
    "graph": "SYNC365_GRAPH_URL (graph_url in an accounts file)",
    "partner_center": "SYNC365_PARTNER_CENTER_URL (partner_center_url in an accounts file)",
}


def transport_failure(exc: BaseException) -> TransportFailure:
    """Classify a network exception by every exception in its chain (causes, contexts, the
    urllib3 reason wrapped in `args`), most specific first."""
    chain = _causes(exc)
    kinds = [
        (TransportFailure.CERTIFICATE, (ssl.SSLCertVerificationError,)),
        (TransportFailure.UNRESOLVED, (socket.gaierror, urllib3.exceptions.NameResolutionError)),
        (TransportFailure.REFUSED, (ConnectionRefusedError,)),
        (TransportFailure.TIMEOUT, (TimeoutError, requests.exceptions.Timeout)),
        (
            TransportFailure.RESET,
            (
                ConnectionResetError,
                BrokenPipeError,
                ConnectionAbortedError,
                ssl.SSLEOFError,
                ssl.SSLZeroReturnError,
                http.client.RemoteDisconnected,
                http.client.IncompleteRead,
                urllib3.exceptions.ProtocolError,
                requests.exceptions.ChunkedEncodingError,
            ),
        ),
    ]
    for kind, types in kinds:
        if any(isinstance(link, types) for link in chain):
            return kind
    return TransportFailure.OTHER


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending = [exc]
    while pending and len(seen) < 32:
        link = pending.pop()
        if any(link is known for known in seen):
            continue
        seen.append(link)
        pending += [arg for arg in link.args if isinstance(arg, BaseException)]
        pending += [
            linked
            for linked in (getattr(link, "reason", None), link.__cause__, link.__context__)
            if isinstance(linked, BaseException)
        ]
    return seen


def classify_transport_error(
    exc: requests.RequestException,
    *,
    url: str | None,
    tenant_id: str | None,
    partner_level: bool,
    service: Literal["identity", "graph", "partner_center"] | None = None,
) -> MicrosoftError:
    """Type a network failure that outlasted the HTTP layer's retries.

    A certificate that fails verification, a host that does not resolve or refuses connections is
    `EndpointUnreachable` for the whole account, whichever tenant met it: it names the setting that
    points there and is never retried. A reset or a timeout is transient.
    """
    host = urlsplit(url).netloc if url else "the Microsoft endpoint"
    kind = transport_failure(exc)
    setting = ENDPOINT_SETTINGS.get(service or "", "the endpoint settings (SYNC365_*_URL)")
    if kind is TransportFailure.CERTIFICATE:
        return EndpointUnreachable(
            f"The TLS certificate of {host} failed verification.",
            remedy=(
                f"If {host} is right, set SYNC365_CA_BUNDLE to the CA that signed it (the "
                "simulator writes its CA file) or fix a proxy that rewrites TLS; otherwise correct "
                f"{setting}. Then rerun."
            ),
            code="CertificateVerifyFailed",
            tenant_id=tenant_id,
        )
    if kind.is_configuration:
        problem = {
            TransportFailure.UNRESOLVED: f"The host {host} does not resolve.",
            TransportFailure.REFUSED: f"{host} refused the connection.",
        }[kind]
        return EndpointUnreachable(
            problem,
            remedy=f"Check {setting} (and SYNC365_CLOUD, proxy and DNS settings), then rerun.",
            code=f"Connection{kind.value.title()}",
            tenant_id=tenant_id,
        )
    what = {
        TransportFailure.TIMEOUT: "timed out",
        TransportFailure.RESET: "dropped the connection",
    }.get(kind, f"failed ({type(exc).__name__})")
    code = f"Connection{kind.value.title()}"
    if partner_level:
        return TransientError(
            f"{host} {what}; this is usually temporary.", code=code, tenant_id=tenant_id
        )
    return TransientError(f"{host} {what}.", code=code, tenant_id=tenant_id)


def tenant_outcome(exc: BaseException) -> tuple[TenantStatus, str | None, str]:
    """(status, error_code, message) for the `tenant_status` table."""
    if isinstance(exc, TenantAccessError):
        return exc.status, exc.code, str(exc)
    if isinstance(exc, Throttled):
        return TenantStatus.THROTTLED, exc.code, str(exc)
    if isinstance(exc, MicrosoftError):
        return TenantStatus.ERROR, exc.code, str(exc)
    return TenantStatus.ERROR, type(exc).__name__, _quote(f"{type(exc).__name__}: {exc}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _build(
    cls: type[MicrosoftError],
    problem: str,
    *,
    code: str | None,
    tenant_id: str | None,
    partner_level: bool,
    http_status: int | None = None,
) -> MicrosoftError:
    """Instantiate `cls`, lifting customer-level reasons to partner level when needed."""
    kwargs: dict[str, Any] = {"code": code, "http_status": http_status, "tenant_id": tenant_id}
    if partner_level and issubclass(cls, MfaRequired):
        return PartnerMfaMissing(problem, **kwargs)
    if partner_level and issubclass(cls, TenantAccessError):
        return PartnerAccessError(problem, remedy=_PARTNER_REMEDIES.get(cls), **kwargs)
    if issubclass(cls, PartnerAccessError):
        return cls(problem, **kwargs)
    return cls(problem + _retry_hint(cls), **kwargs)


def _retry_hint(cls: type[MicrosoftError]) -> str:
    return " Retrying later may succeed." if cls.retryable else ""


def _first_sentence(description: object) -> str:
    """The part of an `error_description` before its trace ids, without the `AADSTSnnn:` tag."""
    if not isinstance(description, str):
        return ""
    text = re.split(r"\s*Trace ID:", description, maxsplit=1)[0]
    text = re.sub(r"^AADSTS\d+:\s*", "", text.strip())
    return " ".join(text.split())


def _quote(text: str | None) -> str:
    """Microsoft's own text, redacted, then trimmed to a size that keeps logs and tables readable
    (in that order: a cut secret would no longer be recognised)."""
    if not text:
        return ""
    text = " ".join(redact(text).split())
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 1] + "…"


def _json_or_none(response: requests.Response) -> Any:
    try:
        return json.loads(response.content or b"")
    except ValueError:
        return None


def _service_error(body: Any, service: str) -> tuple[str | None, str | None]:
    """(code, message) from Graph's `{"error": {...}}`, Partner Center's `{code, description}`
    or the API gateway's `{statusCode, message}` body."""
    if not isinstance(body, dict):
        return None, None
    if service == "graph" and isinstance(body.get("error"), dict):
        inner = body["error"]
        return _text(inner.get("code")), _text(inner.get("message"))
    if "code" in body or "description" in body:
        return _text(body.get("code")), _text(body.get("description"))
    return None, _text(body.get("message"))


def _text(value: object) -> str | None:
    """Codes arrive as numbers or strings (Partner Center uses both)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip()
        return text or None
    return None


def _path(url: str | None) -> str:
    """The URL path only: query strings may carry paging cursors that bloat messages."""
    return urlsplit(url).path if url else ""
