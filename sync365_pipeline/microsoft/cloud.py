"""`MicrosoftCloud`: one account's session, token provider and API clients, built in one place."""

from __future__ import annotations

from types import TracebackType

from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.microsoft.auth import TokenCacheFile, TokenProvider
from sync365_pipeline.microsoft.graph import GraphClient
from sync365_pipeline.microsoft.http import MicrosoftSession, RetrySettings, account_session
from sync365_pipeline.microsoft.partner_center import PartnerCenterClient
from sync365_pipeline.microsoft.rate_limit import RateLimiter


class MicrosoftCloud:
    """Everything one partner account needs: session, tokens, both clients.

    Close it (or use it as a context manager) so the rotated refresh token is saved.
    """

    def __init__(
        self,
        session: MicrosoftSession,
        tokens: TokenProvider,
        partner_center: PartnerCenterClient,
        graph: GraphClient,
        *,
        saves_tokens: bool = True,
    ) -> None:
        self.saves_tokens = saves_tokens
        self.session = session
        self.tokens = tokens
        self.partner_center = partner_center
        self.graph = graph

    @classmethod
    def from_settings(
        cls,
        settings: AccountSettings,
        *,
        retry: RetrySettings | None = None,
        saves_tokens: bool = True,
    ) -> MicrosoftCloud:
        """`saves_tokens=False` for a client that runs beside others of the same account (a
        parallel chunk step): it never writes the token cache (`TokenProvider.write_gained`)."""
        session = account_session(settings, retry=retry or RetrySettings())
        tokens = TokenProvider(
            settings.credentials,
            settings.endpoints,
            session,
            TokenCacheFile(settings.token_cache_path),
            app_only=settings.kind == "direct",
        )
        return cls(
            session=session,
            tokens=tokens,
            partner_center=PartnerCenterClient(
                session,
                settings.endpoints.partner_center_url,
                tokens,
                limiter=RateLimiter(settings.partner_center_rate),
            ),
            graph=GraphClient(session, settings.endpoints.graph_url, tokens),
            saves_tokens=saves_tokens,
        )

    def close(self) -> None:
        """Save the token cache (the rotated refresh token), then close the session."""
        try:
            if self.saves_tokens:
                self.tokens.save()
        finally:
            self.session.close()

    def __enter__(self) -> MicrosoftCloud:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
