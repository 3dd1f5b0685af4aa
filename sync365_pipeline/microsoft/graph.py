"""Microsoft Graph calls (`/v1.0/...`), returning Microsoft's JSON objects unchanged."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from sync365_pipeline.microsoft.api import ApiClient
from sync365_pipeline.microsoft.auth import AccessToken
from sync365_pipeline.microsoft.errors import (
    AppCredentialsUnreadable,
    MalformedResponse,
    MicrosoftError,
)
from sync365_pipeline.microsoft.http import get_json
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
        return self._customer_items(tenant_id, "subscribedSkus")

    def directory_subscriptions(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every subscription in the customer tenant, whoever sold it (`ownerTenantId`), with
        its seats and commerce id (all pages of `GET /v1.0/directory/subscriptions`)."""
        return self._customer_items(tenant_id, "directory/subscriptions")

    def organization(self, tenant_id: str) -> dict[str, Any]:
        """The customer's organization object (`GET /v1.0/organization`, one element)."""
        organizations = self._customer_items(tenant_id, "organization")
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

    def access_assignments(self, relationship_id: str) -> list[dict[str, Any]]:
        """The access assignments of one GDAP relationship (all pages, every status): which
        partner security group holds which role template ids in the customer tenant."""
        url = (
            f"{self._base_url}/v1.0/tenantRelationships/delegatedAdminRelationships/"
            f"{quote(relationship_id, safe='')}/accessAssignments?$top={self._page_size}"
        )
        return self._items(url, self._tokens.partner_graph_token(), None)

    def password_credentials(self, app_id: str) -> list[dict[str, Any]]:
        """The client secrets of the partner's app registration (`passwordCredentials`: keyId,
        displayName, hint = a secret's first three characters, endDateTime; never the secret).

        Raises `AppCredentialsUnreadable` when Graph refuses or does not find the app.
        """
        url = (
            f"{self._base_url}/v1.0/applications(appId='{quote(app_id, safe='')}')"
            "?$select=id,appId,displayName,passwordCredentials"
        )
        token = self._tokens.partner_graph_token()
        try:
            app = get_json(
                self._session,
                url,
                headers={
                    "Authorization": token.authorization(),
                    "Accept": "application/json",
                    "client-request-id": str(uuid.uuid4()),
                },
                service=self.service,
                tenant_id=None,
            )
        except MicrosoftError as refused:
            if refused.http_status not in (403, 404):
                raise
            raise AppCredentialsUnreadable(
                f"Graph did not show app {app_id}'s client secrets: {refused} "
                f"{AppCredentialsUnreadable.remedy}",
                code=refused.code,
                http_status=refused.http_status,
            ) from None
        credentials = app.get("passwordCredentials")
        if not isinstance(credentials, list) or not all(isinstance(c, dict) for c in credentials):
            raise MalformedResponse(f"Graph returned app {app_id} without passwordCredentials.")
        return credentials

    def contracts(self) -> list[dict[str, Any]]:
        """The partner's DAP-era contracts (`GET /v1.0/contracts`)."""
        return self._items(
            f"{self._base_url}/v1.0/contracts", self._tokens.partner_graph_token(), None
        )

    def _customer_items(self, tenant_id: str, path: str) -> list[dict[str, Any]]:
        """Every item of `/v1.0/{path}` in the customer tenant, with the customer's token."""
        token = self._tokens.graph_token(tenant_id)
        return self._items(f"{self._base_url}/v1.0/{path}", token, tenant_id)

    def _items(self, url: str, token: AccessToken, tenant_id: str | None) -> list[dict[str, Any]]:
        return self._fetch_all(
            url,
            token,
            tenant_id=tenant_id,
            request_ids=lambda: {"client-request-id": str(uuid.uuid4())},
        )
