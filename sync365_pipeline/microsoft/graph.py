"""Microsoft Graph calls (`/v1.0/...`), returning Microsoft's JSON objects unchanged."""

from __future__ import annotations

import uuid
from typing import Any

from sync365_pipeline.microsoft.api import ApiClient
from sync365_pipeline.microsoft.auth import AccessToken
from sync365_pipeline.microsoft.errors import MalformedResponse
from sync365_pipeline.microsoft.paging import ODataNextLinkPaginator

MAX_RELATIONSHIPS_PAGE = 300  # `$top` limit of delegatedAdminRelationships


class GraphClient(ApiClient):
    """Graph with a customer-tenant token (SKUs, organization) or the partner's (GDAP, contracts).

    Each request carries a fresh `client-request-id` (resent unchanged by the session's retries)
    so a failure can be traced with Microsoft support.
    """

    service = "graph"
    max_page_size = MAX_RELATIONSHIPS_PAGE

    def _new_paginator(self) -> ODataNextLinkPaginator:
        return ODataNextLinkPaginator()

    def subscribed_skus(self, tenant_id: str) -> list[dict[str, Any]]:
        """The customer's subscribed SKUs (all pages of `GET /v1.0/subscribedSkus`)."""
        token = self._tokens.graph_token(tenant_id)
        return self._items(f"{self._base_url}/v1.0/subscribedSkus", token, tenant_id)

    def organization(self, tenant_id: str) -> dict[str, Any]:
        """The customer's organization object (`GET /v1.0/organization`, one element)."""
        token = self._tokens.graph_token(tenant_id)
        organizations = self._items(f"{self._base_url}/v1.0/organization", token, tenant_id)
        if not organizations:
            raise MalformedResponse(
                f"Graph returned no organization for tenant {tenant_id}.", tenant_id=tenant_id
            )
        return organizations[0]

    def delegated_admin_relationships(self) -> list[dict[str, Any]]:
        """Every GDAP relationship of the partner, whatever its status."""
        url = (
            f"{self._base_url}/v1.0/tenantRelationships/delegatedAdminRelationships"
            f"?$top={self._page_size}"
        )
        return self._items(url, self._tokens.partner_graph_token(), None)

    def contracts(self) -> list[dict[str, Any]]:
        """The partner's DAP-era contracts (`GET /v1.0/contracts`)."""
        return self._items(
            f"{self._base_url}/v1.0/contracts", self._tokens.partner_graph_token(), None
        )

    def _items(self, url: str, token: AccessToken, tenant_id: str | None) -> list[dict[str, Any]]:
        return self._fetch_all(
            url,
            token,
            tenant_id=tenant_id,
            request_ids=lambda: {"client-request-id": str(uuid.uuid4())},
        )
