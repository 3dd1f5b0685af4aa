"""Microsoft API clients: sign-in (MSAL), HTTP with retry, paging, Partner Center and Graph.

Plain typed Python with no Dagster imports. `MicrosoftCloud` bundles what one partner account
needs; every failure is a typed error from `errors.py`.
"""

from __future__ import annotations

from types import TracebackType

from sync365_pipeline.config import Settings
from sync365_pipeline.microsoft.auth import AccessToken, TokenCacheFile, TokenFacts, TokenProvider
from sync365_pipeline.microsoft.errors import (
    AccessRemoved,
    Blocked,
    ConsentRevoked,
    EndpointUnreachable,
    InvalidClient,
    MalformedResponse,
    MfaRequired,
    MicrosoftError,
    NoRefreshToken,
    PartnerAccessError,
    PartnerMfaMissing,
    RefreshTokenExpired,
    RefreshTokenRevoked,
    TenantAccessError,
    TenantGone,
    Throttled,
    TokenCacheCorrupt,
    TransientError,
    UnclassifiedError,
    classify_response,
    classify_token_error,
    tenant_outcome,
)
from sync365_pipeline.microsoft.graph import GraphClient
from sync365_pipeline.microsoft.http import (
    MicrosoftSession,
    RetrySettings,
    RetryStats,
    build_session,
)
from sync365_pipeline.microsoft.paging import ContinuationTokenPaginator, ODataNextLinkPaginator
from sync365_pipeline.microsoft.partner_center import PartnerCenterClient

__all__ = [
    "AccessRemoved",
    "AccessToken",
    "Blocked",
    "ConsentRevoked",
    "ContinuationTokenPaginator",
    "EndpointUnreachable",
    "GraphClient",
    "InvalidClient",
    "MalformedResponse",
    "MfaRequired",
    "MicrosoftCloud",
    "MicrosoftError",
    "MicrosoftSession",
    "NoRefreshToken",
    "ODataNextLinkPaginator",
    "PartnerAccessError",
    "PartnerCenterClient",
    "PartnerMfaMissing",
    "RefreshTokenExpired",
    "RefreshTokenRevoked",
    "RetrySettings",
    "RetryStats",
    "TenantAccessError",
    "TenantGone",
    "Throttled",
    "TokenCacheCorrupt",
    "TokenCacheFile",
    "TokenFacts",
    "TokenProvider",
    "TransientError",
    "UnclassifiedError",
    "build_session",
    "classify_response",
    "classify_token_error",
    "tenant_outcome",
]


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
    ) -> None:
        self.session = session
        self.tokens = tokens
        self.partner_center = partner_center
        self.graph = graph

    @classmethod
    def from_settings(
        cls, settings: Settings, *, retry: RetrySettings | None = None
    ) -> MicrosoftCloud:
        session = build_session(
            ca_bundle=settings.ca_bundle,
            pool_size=max(16, settings.max_workers),
            retry=retry or RetrySettings(),
        )
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
                session, settings.endpoints.partner_center_url, tokens
            ),
            graph=GraphClient(session, settings.endpoints.graph_url, tokens),
        )

    def close(self) -> None:
        """Save the token cache (the rotated refresh token), then close the session."""
        try:
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
