"""Microsoft API clients: sign-in (MSAL), HTTP with retry, paging, Partner Center and Graph.

Plain typed Python with no Dagster imports. `MicrosoftCloud` bundles what one partner account
needs; every failure is a typed error from `errors.py`.
"""

from __future__ import annotations

from sync365_pipeline.microsoft.auth import AccessToken, TokenCacheFile, TokenFacts, TokenProvider
from sync365_pipeline.microsoft.cloud import MicrosoftCloud
from sync365_pipeline.microsoft.errors import (
    AccessRemoved,
    AlreadyExists,
    AppCredentialsUnreadable,
    Blocked,
    ConsentFailed,
    ConsentRevoked,
    DeltaTokenExpired,
    EndpointUnreachable,
    InvalidClient,
    MalformedResponse,
    MfaRequired,
    MicrosoftError,
    NoCommerceRelationship,
    NoRefreshToken,
    PartnerAccessError,
    PartnerMfaMissing,
    RefreshTokenExpired,
    RefreshTokenRevoked,
    SignInActivityUnavailable,
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
from sync365_pipeline.microsoft.graph import ForeignDeltaLinkError, GraphClient, UsersDelta
from sync365_pipeline.microsoft.http import (
    MicrosoftSession,
    RetrySettings,
    RetryStats,
    account_session,
    build_session,
)
from sync365_pipeline.microsoft.paging import ContinuationTokenPaginator, ODataNextLinkPaginator
from sync365_pipeline.microsoft.partner_center import (
    PIPELINE_CONSENT_GRANTS,
    PIPELINE_GRAPH_SCOPES,
    ApplicationGrant,
    ConsentOutcome,
    PartnerCenterClient,
)

__all__ = [
    "PIPELINE_CONSENT_GRANTS",
    "PIPELINE_GRAPH_SCOPES",
    "AccessRemoved",
    "AccessToken",
    "AlreadyExists",
    "AppCredentialsUnreadable",
    "ApplicationGrant",
    "Blocked",
    "ConsentFailed",
    "ConsentOutcome",
    "ConsentRevoked",
    "ContinuationTokenPaginator",
    "DeltaTokenExpired",
    "EndpointUnreachable",
    "ForeignDeltaLinkError",
    "GraphClient",
    "InvalidClient",
    "MalformedResponse",
    "MfaRequired",
    "MicrosoftCloud",
    "MicrosoftError",
    "MicrosoftSession",
    "NoCommerceRelationship",
    "NoRefreshToken",
    "ODataNextLinkPaginator",
    "PartnerAccessError",
    "PartnerCenterClient",
    "PartnerMfaMissing",
    "RefreshTokenExpired",
    "RefreshTokenRevoked",
    "RetrySettings",
    "RetryStats",
    "SignInActivityUnavailable",
    "TenantAccessError",
    "TenantGone",
    "Throttled",
    "TokenCacheCorrupt",
    "TokenCacheFile",
    "TokenFacts",
    "TokenProvider",
    "TransientError",
    "UnclassifiedError",
    "UsersDelta",
    "account_session",
    "build_session",
    "classify_response",
    "classify_token_error",
    "tenant_outcome",
]
