"""Partner Center REST calls (`/v1/...`), returning Microsoft's JSON items unchanged."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from sync365_pipeline.core.settings import DEFAULT_PARTNER_CENTER_RATE
from sync365_pipeline.microsoft.api import ApiClient
from sync365_pipeline.microsoft.paging import ContinuationTokenPaginator
from sync365_pipeline.microsoft.rate_limit import RateLimiter

MAX_PAGE_SIZE = 500  # the service's default and maximum `size`


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
        url = f"{self._base_url}/v1/customers/{quote(tenant_id, safe='')}/subscribedskus"
        return self._items(url, tenant_id=tenant_id)

    def _items(self, url: str, *, tenant_id: str | None) -> list[dict[str, Any]]:
        token = self._tokens.partner_center_token()
        correlation_id = str(uuid.uuid4())
        return self._fetch_all(
            url,
            token,
            tenant_id=tenant_id,
            request_ids=lambda: {
                "MS-RequestId": str(uuid.uuid4()),
                "MS-CorrelationId": correlation_id,
            },
        )
