"""Partner Center REST calls (`/v1/...`), returning Microsoft's JSON items unchanged, and the
CPV consent that lets the partner's app into a customer tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from sync365_pipeline.core.settings import DEFAULT_PARTNER_CENTER_RATE
from sync365_pipeline.microsoft.api import ApiClient
from sync365_pipeline.microsoft.errors import (
    AlreadyExists,
    ConsentFailed,
    MicrosoftError,
    PartnerAccessError,
    TransientError,
)
from sync365_pipeline.microsoft.http import request_json
from sync365_pipeline.microsoft.paging import ContinuationTokenPaginator
from sync365_pipeline.microsoft.rate_limit import RateLimiter

MAX_PAGE_SIZE = 500  # the service's default and maximum `size`
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph, in every cloud


@dataclass(frozen=True)
class ApplicationGrant:
    """One resource app and the delegated scopes the consent grants on it."""

    enterprise_application_id: str
    scopes: tuple[str, ...]

    def as_json(self) -> dict[str, str]:
        """Partner Center's shape: the scopes in one comma-separated string."""
        return {
            "enterpriseApplicationId": self.enterprise_application_id,
            "scope": ",".join(self.scopes),
        }


# The Graph scopes the sync reads customer tenants with (microsoft-apis-more.md §0.2, §5.3):
# subscribedSkus and organization (Organization.Read.All, Directory.Read.All), directory/
# subscriptions (Organization.Read.All), users with their licences (User.Read.All) and their
# signInActivity (AuditLog.Read.All). GDAP relationships and contracts are read in the partner's
# own tenant, which needs no consent.
PIPELINE_GRAPH_SCOPES = (
    "Directory.Read.All",
    "Organization.Read.All",
    "User.Read.All",
    "AuditLog.Read.All",
)
PIPELINE_CONSENT_GRANTS = (ApplicationGrant(GRAPH_APP_ID, PIPELINE_GRAPH_SCOPES),)


class ConsentOutcome(StrEnum):
    """How a CPV consent request ended (the `customer_access.cpv_consent` values it can give)."""

    GRANTED = "granted"
    ALREADY_GRANTED = "already_granted"


class PartnerCenterClient(ApiClient):
    """App+User calls with the partner's Partner Center token.

    Each request gets a fresh `MS-RequestId` (the session's retries resend the same one, which
    is what Partner Center's idempotency expects); all pages of one call share an
    `MS-CorrelationId`. Every request, the later issues' included, waits for the partner's
    `RateLimiter` (Partner Center throttles per partner).
    """

    service = "partner_center"
    max_page_size = MAX_PAGE_SIZE

    def _new_paginator(self) -> ContinuationTokenPaginator:
        return ContinuationTokenPaginator(self._base_url)

    def _default_limiter(self) -> RateLimiter:
        return RateLimiter(DEFAULT_PARTNER_CENTER_RATE)

    def customers(self) -> list[dict[str, Any]]:
        """Every customer of the partner (all pages of `GET /v1/customers`)."""
        return self._items(f"{self._base_url}/v1/customers?size={self._page_size}", tenant_id=None)

    def subscribed_skus(self, tenant_id: str) -> list[dict[str, Any]]:
        """A customer's subscribed SKUs (`GET /v1/customers/{id}/subscribedskus`)."""
        return self._customer_items(tenant_id, "subscribedskus")

    def subscriptions(self, tenant_id: str) -> list[dict[str, Any]]:
        """The subscriptions this partner sold the customer, new-commerce and legacy, cancelled
        and expired ones included (all pages of `GET /v1/customers/{id}/subscriptions`).

        Only the partner's token is needed, so it keeps answering after GDAP is lost; a customer
        the partner does not sell to raises `NoCommerceRelationship` (403 code 20002).
        """
        return self._customer_items(tenant_id, "subscriptions")

    def grant_application_consent(
        self,
        tenant_id: str,
        application_id: str,
        grants: Sequence[ApplicationGrant] = PIPELINE_CONSENT_GRANTS,
    ) -> ConsentOutcome:
        """Consent the app in a customer tenant (`POST /v1/customers/{id}/applicationconsents`).

        Raises `ConsentFailed` when Partner Center refuses it (its `remedy` says what a human
        must do), a `PartnerAccessError` when the partner's own sign-in is broken, and a
        retryable `TransientError` (or `Throttled`) when the service stayed unavailable. Before
        retrying the customer, `TokenProvider.release(tenant_id)`: MSAL replays the refused
        token request from that tenant's app for 60 s.
        """
        url = f"{self._base_url}/v1/customers/{quote(tenant_id, safe='')}/applicationconsents"
        body = {
            "applicationId": application_id,
            "applicationGrants": [grant.as_json() for grant in grants],
        }
        token = self._tokens.partner_center_token()
        headers = {
            "Authorization": token.authorization(),
            "Accept": "application/json",
            **self._request_ids(str(uuid.uuid4())),
        }
        try:
            request_json(
                self._session,
                "POST",
                url,
                headers=headers,
                service=self.service,
                tenant_id=tenant_id,
                limiter=self.limiter,
                body=body,
            )
        except AlreadyExists:
            return ConsentOutcome.ALREADY_GRANTED
        except (PartnerAccessError, TransientError):
            raise
        except MicrosoftError as refused:
            raise ConsentFailed(
                f"Partner Center did not consent the app in tenant {tenant_id}: {refused} "
                f"{ConsentFailed.remedy}",
                code=refused.code,
                http_status=refused.http_status,
                tenant_id=tenant_id,
            ) from None
        return ConsentOutcome.GRANTED

    def _customer_items(self, tenant_id: str, resource: str) -> list[dict[str, Any]]:
        """Every item of one customer's collection (`/v1/customers/{id}/{resource}`)."""
        url = f"{self._base_url}/v1/customers/{quote(tenant_id, safe='')}/{resource}"
        return self._items(url, tenant_id=tenant_id)

    def _items(self, url: str, *, tenant_id: str | None) -> list[dict[str, Any]]:
        token = self._tokens.partner_center_token()
        correlation_id = str(uuid.uuid4())
        return self._fetch_all(
            url,
            token,
            tenant_id=tenant_id,
            request_ids=lambda: self._request_ids(correlation_id),
        )

    @staticmethod
    def _request_ids(correlation_id: str) -> dict[str, str]:
        """A fresh MS-RequestId (kept by the session's retries: the idempotency key) and the
        call's MS-CorrelationId."""
        return {"MS-RequestId": str(uuid.uuid4()), "MS-CorrelationId": correlation_id}
