"""Classification of Microsoft's error shapes, taken verbatim from the reference (microsoft-apis.md
§1.4-1.5, §3.4, §5.4-5.5, §6.7)."""

from __future__ import annotations

import json

import pytest
import requests

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.microsoft.errors import (
    AccessRemoved,
    AlreadyExists,
    Blocked,
    ConsentRevoked,
    InvalidClient,
    MalformedResponse,
    MfaRequired,
    NoCommerceRelationship,
    PartnerAccessError,
    PartnerMfaMissing,
    RefreshTokenExpired,
    RefreshTokenRevoked,
    TenantGone,
    Throttled,
    TransientError,
    UnclassifiedError,
    classify_response,
    classify_token_error,
    tenant_outcome,
)

PARTNER = "df845f1a-7b35-40a2-ba78-6481de91f8ae"
CUSTOMER = "b44bb1fb-c595-45b0-9e09-d657365580bf"

EXPIRED_700082 = {
    "error": "invalid_grant",
    "error_description": (
        "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on "
        "2026-05-20T16:18:37.2732417Z and was inactive for 90.00:00:00. Trace ID: "
        "d9ceba41-88e0-461b-b059-d818f9c81401 Correlation ID: 7df63a2d-c2a0-41ee-ab3f-50977184a659 "
        "Timestamp: 2026-08-26 10:13:41Z"
    ),
    "error_codes": [700082],
    "timestamp": "2026-08-26 10:13:41Z",
    "trace_id": "d9ceba41-88e0-461b-b059-d818f9c81401",
    "correlation_id": "7df63a2d-c2a0-41ee-ab3f-50977184a659",
    "error_uri": "https://login.microsoftonline.com/error?code=700082",
    "suberror": "bad_token",
}


def aad(code: int, error: str = "invalid_grant", text: str = "Something.", **extra: str) -> dict:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {text}\r\nTrace ID: 1\r\nCorrelation ID: 2",
        "error_codes": [code],
        "trace_id": "1",
        "correlation_id": "2",
        **extra,
    }


def test_expired_refresh_token_is_partner_level_with_a_remedy():
    error = classify_token_error(EXPIRED_700082, tenant_id=PARTNER, partner_level=True)
    assert type(error) is RefreshTokenExpired
    assert error.code == "AADSTS700082"
    assert error.tenant_id == PARTNER
    message = str(error)
    assert message.startswith("The partner refresh token expired after 90 days without use")
    assert "inactive for 90.00:00:00" in message
    assert "Trace ID" not in message
    assert "d9ceba41" not in message
    assert "sync365 consent" in error.remedy
    assert message.endswith(error.remedy)
    assert not error.retryable


@pytest.mark.parametrize(
    ("body", "partner_level", "expected"),
    [
        (aad(50173), False, RefreshTokenRevoked),  # dead RT seen at a customer: still partner-level
        (aad(50057), True, RefreshTokenRevoked),
        (aad(7000215, "invalid_client", "Invalid client secret provided."), True, InvalidClient),
        (aad(700016, "unauthorized_client"), False, InvalidClient),
        (aad(65001, suberror="consent_required"), False, ConsentRevoked),
        (aad(90099), False, ConsentRevoked),
        (aad(50020), False, AccessRemoved),
        (aad(500011, "invalid_resource"), False, AccessRemoved),
        (
            aad(50076, "interaction_required", suberror="basic_action", claims="{}"),
            False,
            MfaRequired,
        ),
        (aad(50076, suberror="basic_action"), True, PartnerMfaMissing),
        (aad(50079, "interaction_required"), True, PartnerMfaMissing),
        (aad(53003), False, Blocked),
        (aad(500213), False, Blocked),
        (aad(90002, "invalid_request"), False, TenantGone),
        (aad(5000224), False, TenantGone),
        (aad(90055), False, Throttled),
        (aad(90033, "temporarily_unavailable"), False, TransientError),
    ],
)
def test_aadsts_codes(body, partner_level, expected):
    tenant = PARTNER if partner_level else CUSTOMER
    error = classify_token_error(body, tenant_id=tenant, partner_level=partner_level)
    assert type(error) is expected
    assert error.code == f"AADSTS{body['error_codes'][0]}"


@pytest.mark.parametrize("code", [65001, 50020, 53003, 90002])
def test_customer_reasons_at_the_partner_authority_stop_the_sync(code):
    error = classify_token_error(aad(code), tenant_id=PARTNER, partner_level=True)
    assert type(error) is PartnerAccessError
    assert error.remedy
    assert error.remedy in str(error)


def test_unknown_code_is_kept_and_maps_to_error():
    error = classify_token_error(
        aad(9999999, "invalid_request"), tenant_id=CUSTOMER, partner_level=False
    )
    assert type(error) is UnclassifiedError
    assert tenant_outcome(error) == (TenantStatus.ERROR, "AADSTS9999999", str(error))


def test_oauth_error_string_is_used_only_without_a_number():
    error = classify_token_error({"error": "invalid_client"}, tenant_id=PARTNER, partner_level=True)
    assert type(error) is InvalidClient
    assert error.code == "invalid_client"


def test_description_is_quoted_briefly_never_whole():
    body = aad(65001, text="x" * 5000)
    message = str(classify_token_error(body, tenant_id=CUSTOMER, partner_level=False))
    assert len(message) < 600


def response(
    status: int, body: object, headers: dict | None = None, url: str = ""
) -> requests.Response:
    built = requests.Response()
    built.status_code = status
    built._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    built.headers.update(headers or {})
    built.url = url or "https://graph.microsoft.com/v1.0/subscribedSkus?$skiptoken=abc"
    return built


GRAPH_403 = {
    "error": {
        "code": "Authorization_RequestDenied",
        "message": "Insufficient privileges to complete the operation.",
        "innerError": {
            "date": "2021-08-05T23:31:52",
            "request-id": "dedd179d-d940-4fc5-a03b-e7e4ab6ec938",
            "client-request-id": "dedd179d-d940-4fc5-a03b-e7e4ab6ec938",
        },
    }
}
GRAPH_401 = {
    "error": {
        "code": "InvalidAuthenticationToken",
        "message": "CompactToken validation failed with reason code: 80049228.",
        "innerError": {
            "request-id": "c2920885-4c71-4dea-bee7-dbe21c52ec1e",
            "date": "2018-08-02T21:52:02",
        },
    }
}


@pytest.mark.parametrize(
    ("service", "status", "body", "tenant", "expected", "code"),
    [
        ("graph", 403, GRAPH_403, CUSTOMER, AccessRemoved, "Authorization_RequestDenied"),
        ("graph", 403, GRAPH_403, None, PartnerAccessError, "Authorization_RequestDenied"),
        ("graph", 401, GRAPH_401, CUSTOMER, UnclassifiedError, "InvalidAuthenticationToken"),
        (
            "graph",
            404,
            {"error": {"code": "Request_ResourceNotFound"}},
            CUSTOMER,
            UnclassifiedError,
            "Request_ResourceNotFound",
        ),
        (
            "graph",
            503,
            {"error": {"code": "serviceNotAvailable"}},
            CUSTOMER,
            TransientError,
            "HTTP 503",
        ),
        (
            "partner_center",
            401,
            {
                "code": 900421,
                "description": "Authentication failed. MFA required.",
                "data": [],
                "source": "PartnerFD",
            },
            None,
            PartnerMfaMissing,
            "900421",
        ),
        (
            "partner_center",
            401,
            {"code": "10001", "description": "MFA required"},
            CUSTOMER,
            PartnerMfaMissing,
            "10001",
        ),
        (
            "partner_center",
            403,
            {"code": "2032", "description": "Access denied", "data": [], "source": "PartnerFD"},
            CUSTOMER,
            AccessRemoved,
            "2032",
        ),
        (
            "partner_center",
            403,
            {"code": 20002, "description": "no commerce relationship"},
            CUSTOMER,
            NoCommerceRelationship,
            "20002",
        ),
        (
            "partner_center",
            404,
            {"code": "60003", "description": "Tenant not found", "data": [], "source": "PartnerFD"},
            CUSTOMER,
            TenantGone,
            "60003",
        ),
        (
            "partner_center",
            500,
            {"code": "800003", "description": "Unexpected service error"},
            CUSTOMER,
            TransientError,
            "HTTP 500",
        ),
        (
            "partner_center",
            400,
            {"code": "800002", "description": "Invalid request input"},
            None,
            UnclassifiedError,
            "800002",
        ),
    ],
)
def test_service_errors(service, status, body, tenant, expected, code):
    error = classify_response(response(status, body), service=service, tenant_id=tenant)
    assert type(error) is expected
    assert error.code == code
    assert error.http_status == status
    assert error.tenant_id == tenant
    assert "skiptoken" not in str(error)


def test_partner_center_gateway_429_keeps_retry_after():
    body = {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 57 seconds."}
    error = classify_response(
        response(429, body, {"Retry-After": "57"}), service="partner_center", tenant_id=CUSTOMER
    )
    assert type(error) is Throttled
    assert error.retry_after == 57
    assert error.retryable
    assert tenant_outcome(error)[:2] == (TenantStatus.THROTTLED, "HTTP 429")


@pytest.mark.parametrize(
    ("status", "code", "description"),
    [
        (409, 409, "Permission entry already exists."),  # microsoft-apis-more.md §4.3 [I]
        (400, "600041", "Request failed: permission entry already exists."),
    ],
)
def test_repeated_consent_is_already_exists_whatever_its_status(status, code, description):
    body = {"code": code, "description": description, "data": [], "source": "PartnerFD"}
    error = classify_response(response(status, body), service="partner_center", tenant_id=CUSTOMER)
    assert type(error) is AlreadyExists
    assert (error.code, error.http_status, error.tenant_id) == (str(code), status, CUSTOMER)
    graph_body = {"error": {"code": "Conflict", "message": description}}
    assert (
        type(classify_response(response(status, graph_body), service="graph", tenant_id=CUSTOMER))
        is not AlreadyExists
    )


def test_graph_429_code_is_kept():
    body = {"error": {"code": "TooManyRequests", "message": "Too many requests."}}
    error = classify_response(response(429, body), service="graph", tenant_id=CUSTOMER)
    assert type(error) is Throttled
    assert error.code == "TooManyRequests"
    assert error.retry_after is None


def test_html_body_is_malformed():
    error = classify_response(
        response(404, b"<html>secret page</html>", {"Content-Type": "text/html"}),
        service="graph",
        tenant_id=CUSTOMER,
    )
    assert type(error) is MalformedResponse
    assert "secret page" not in str(error)
    assert tenant_outcome(error)[0] is TenantStatus.ERROR


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConsentRevoked("x", code="AADSTS65001"), TenantStatus.CONSENT_REVOKED),
        (AccessRemoved("x"), TenantStatus.ACCESS_REMOVED),
        (MfaRequired("x"), TenantStatus.MFA_REQUIRED),
        (Blocked("x"), TenantStatus.BLOCKED),
        (TenantGone("x"), TenantStatus.TENANT_GONE),
        (Throttled("x"), TenantStatus.THROTTLED),
        (TransientError("x"), TenantStatus.ERROR),
        (MalformedResponse("x"), TenantStatus.ERROR),
        (RuntimeError("boom"), TenantStatus.ERROR),
    ],
)
def test_tenant_outcome_statuses(error, status):
    assert tenant_outcome(error)[0] is status
