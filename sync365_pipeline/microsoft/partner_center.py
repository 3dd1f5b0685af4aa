"""Partner Center REST calls (`/v1/...`), returning Microsoft's JSON items unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

from sync365_pipeline.microsoft.auth import TokenProvider
from sync365_pipeline.microsoft.http import get_json
from sync365_pipeline.microsoft.paging import ContinuationTokenPaginator, iter_items

MAX_PAGE_SIZE = 500  # the service's default and maximum `size`


class PartnerCenterClient:
    """App+User calls with the partner's Partner Center token.

    Each request gets a fresh `MS-RequestId` (the session's retries resend the same one, which
    is what Partner Center's idempotency expects); all pages of one call share an
    `MS-CorrelationId`.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        tokens: TokenProvider,
        *,
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, not {page_size}")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._page_size = page_size
        self._paginator = ContinuationTokenPaginator(self._base_url)

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

        def fetch(page_url: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
            request_headers = {
                **headers,
                "MS-RequestId": str(uuid.uuid4()),
                "MS-CorrelationId": correlation_id,
            }
            return get_json(
                self._session,
                page_url,
                headers=request_headers,
                service="partner_center",
                tenant_id=tenant_id,
            )

        # The token goes in as the paging's own headers, which no next link may redirect or
        # replace (`iter_pages`).
        credentials = {"Authorization": token.authorization(), "Accept": "application/json"}
        return list(iter_items(fetch, url, self._paginator, headers=credentials))
