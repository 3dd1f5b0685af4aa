"""How close the partner's refresh token is to Entra ID's 90-day inactivity expiry.

A Secure Application Model refresh token dies (AADSTS700082) after 90 days without use; each
redemption returns a fresh one with a fresh 90 days, which the sync saves. So the age that
matters is the time since the cached refresh token was issued. MSAL records exactly that in the
token cache: every refresh-token entry carries `last_modification_time` (Unix seconds), set when
the token is issued or rotated. Reading it needs no extra state and no network, so `doctor`, the
CLI and a Dagster sensor can all call `refresh_token_health`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import msal

from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.microsoft.auth import TokenCacheFile

INACTIVITY_LIMIT = timedelta(days=90)
WARN_WITHIN = timedelta(days=30)

_RECONSENT = "Run `sync365 consent` (with MFA) to grant a new refresh token."
_SYNC = "Run `sync365 sync` now (or keep the daily schedule on): each sync saves a fresh token."


class TokenAge(StrEnum):
    OK = "ok"
    EXPIRING = "expiring"  # within WARN_WITHIN of the limit: sync soon, or it will die
    EXPIRED = "expired"  # past the limit: only a new consent helps
    MISSING = "missing"  # no refresh token in the cache, none configured
    NOT_IMPORTED = "not_imported"  # none cached yet: the configured one is imported at a sync
    UNKNOWN = "unknown"  # a refresh token without an issue time (written by another tool)


@dataclass(frozen=True)
class TokenHealth:
    """The cached refresh token's age as facts, a sentence and what to do (never the token)."""

    age: TokenAge
    message: str
    remedy: str = ""
    last_used_at: datetime | None = None
    days_left: float | None = None

    @property
    def needs_attention(self) -> bool:
        """A configured token that no sync has imported yet (a fresh install, each `sync365 dev`
        session) is the normal start, not a problem: the first sync imports it."""
        return self.age not in (TokenAge.OK, TokenAge.NOT_IMPORTED)


def refresh_token_health(settings: AccountSettings, now: datetime | None = None) -> TokenHealth:
    """The health of `settings`' cached refresh token (partner accounts; direct tenants have
    none). Raises `TokenCacheCorrupt` if the cache file is unusable."""
    cache = TokenCacheFile(settings.token_cache_path).load()
    entries = _refresh_tokens(cache, settings.credentials.client_id)
    last_used = _newest_issue_time(entries)
    if last_used is None and entries:
        return TokenHealth(
            TokenAge.UNKNOWN,
            f"The token cache {settings.token_cache_path} holds a refresh token with no issue "
            "time, so its age is unknown.",
            _SYNC,
        )
    if last_used is None and settings.credentials.refresh_token is not None:
        return TokenHealth(
            TokenAge.NOT_IMPORTED,
            f"The token cache {settings.token_cache_path} holds no refresh token yet: the "
            "configured one (of unknown age) is imported at the next sync.",
        )
    if last_used is None:
        return TokenHealth(
            TokenAge.MISSING,
            f"The token cache {settings.token_cache_path} holds no refresh token.",
            _RECONSENT,
        )
    return assess(last_used, now or datetime.now(UTC))


def assess(last_used_at: datetime, now: datetime) -> TokenHealth:
    """Classify a refresh token last issued at `last_used_at`."""
    idle = now - last_used_at
    left = INACTIVITY_LIMIT - idle
    days_idle, days_left = idle / timedelta(days=1), left / timedelta(days=1)
    when = f"last used {days_idle:.0f} days ago ({last_used_at:%Y-%m-%d %H:%M} UTC)"
    if left <= timedelta(0):
        return TokenHealth(
            TokenAge.EXPIRED,
            f"The refresh token was {when}: past Entra ID's 90-day inactivity limit, so "
            "Microsoft refuses it.",
            _RECONSENT,
            last_used_at,
            days_left,
        )
    if left <= WARN_WITHIN:
        return TokenHealth(
            TokenAge.EXPIRING,
            f"The refresh token was {when} and expires in {days_left:.0f} days unless a sync runs.",
            _SYNC,
            last_used_at,
            days_left,
        )
    return TokenHealth(
        TokenAge.OK,
        f"The refresh token was {when}; {days_left:.0f} days left before the inactivity limit.",
        "",
        last_used_at,
        days_left,
    )


def _refresh_tokens(cache: msal.TokenCache, client_id: str) -> list[dict[str, str]]:
    return list(
        cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN, query={"client_id": client_id})
    )


def _newest_issue_time(entries: list[dict[str, str]]) -> datetime | None:
    """When the newest of these refresh tokens was issued or rotated (None if none says)."""
    times = [
        int(entry["last_modification_time"])
        for entry in entries
        if str(entry.get("last_modification_time", "")).isdigit()
    ]
    return datetime.fromtimestamp(max(times), UTC) if times else None
