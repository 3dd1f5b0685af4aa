"""Microsoft Graph calls (`/v1.0/...`), returning Microsoft's JSON objects unchanged."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

from sync365_pipeline.microsoft.api import ApiClient
from sync365_pipeline.microsoft.auth import AccessToken
from sync365_pipeline.microsoft.errors import (
    AppCredentialsUnreadable,
    MalformedResponse,
    MicrosoftError,
)
from sync365_pipeline.microsoft.http import get_json
from sync365_pipeline.microsoft.paging import (
    ODataDeltaPaginator,
    ODataNextLinkPaginator,
    same_origin,
)

MAX_RELATIONSHIPS_PAGE = 300  # `$top` limit of delegatedAdminRelationships
# Users (microsoft-apis-more.md §3.1): pages of 999 at most, 500 with signInActivity.
MAX_USERS_PAGE = 999
MAX_SIGN_IN_PAGE = 500
USER_PROPERTIES = (
    "id",
    "userPrincipalName",
    "displayName",
    "accountEnabled",
    "userType",
    "assignedLicenses",
    "licenseAssignmentStates",
    "department",
    "officeLocation",
    "city",
    "createdDateTime",
)
SIGN_IN_ACTIVITY = "signInActivity"  # not available in the delta query (§3.5)


class UsersDelta(NamedTuple):
    """One delta round: users added or changed (every selected property), ids removed, and the
    link that starts the next round."""

    changed: list[dict[str, Any]]
    removed: list[str]
    delta_link: str


class ForeignDeltaLinkError(ValueError):
    """A stored delta link names another origin than Graph's: it is never called (the token
    would go there); the caller reads every user instead."""


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

    def licensed_users(self, tenant_id: str, *, sign_in_activity: bool) -> list[dict[str, Any]]:
        """Every user of the tenant holding a licence (all pages of `GET /v1.0/users`, filtered
        by Graph), with `USER_PROPERTIES`; with `sign_in_activity`, `signInActivity` too, which
        needs Entra ID P1 in the tenant: without it `SignInActivityUnavailable`, and the caller
        may read again without."""
        properties = USER_PROPERTIES + ((SIGN_IN_ACTIVITY,) if sign_in_activity else ())
        query = {
            "$select": ",".join(properties),
            # An advanced query: it needs $count=true and ConsistencyLevel on every page.
            "$filter": "assignedLicenses/$count ne 0",
            "$count": "true",
            "$top": str(MAX_SIGN_IN_PAGE if sign_in_activity else MAX_USERS_PAGE),
        }
        url = f"{self._base_url}/v1.0/users?{urlencode(query, quote_via=quote, safe='$/,')}"
        token = self._tokens.graph_token(tenant_id)
        return self._items(url, token, tenant_id, headers={"ConsistencyLevel": "eventual"})

    def users_delta(self, tenant_id: str, delta_link: str | None) -> UsersDelta:
        """One round of `GET /v1.0/users/delta`: from `delta_link` (the last round's), or with
        none every user (`USER_PROPERTIES`; the delta query has no sign-in activity).

        Raises `DeltaTokenExpired` when Graph no longer knows the link's token: start again with
        `delta_link=None`. A stored link is followed only to the Graph origin (else
        `ForeignDeltaLinkError`, before any request).
        """
        if delta_link is None:
            url = self._first_delta_url()
        elif same_origin(delta_link, self._base_url):
            url = delta_link
        else:
            raise ForeignDeltaLinkError(
                f"a delta link must be on {self._base_url}, where the token goes"
            )
        return self._delta_round(tenant_id, url)

    def latest_users_delta_link(self, tenant_id: str) -> str:
        """A delta link that starts from now, without reading a user (`$deltatoken=latest`, one
        request, §3.5): taken before a full read, its next round lists what changed since."""
        return self._delta_round(
            tenant_id, f"{self._first_delta_url()}&$deltatoken=latest"
        ).delta_link

    def _first_delta_url(self) -> str:
        return f"{self._base_url}/v1.0/users/delta?$select={','.join(USER_PROPERTIES)}"

    def _delta_round(self, tenant_id: str, url: str) -> UsersDelta:
        token = self._tokens.graph_token(tenant_id)
        paginator = ODataDeltaPaginator()
        users = self._fetch_all(
            url, token, tenant_id=tenant_id, request_ids=_request_id, paginator=paginator
        )
        latest: dict[str, dict[str, Any] | None] = {}  # by id; None: removed (last word wins)
        for user in users:
            user_id = user.get("id")
            if not isinstance(user_id, str):
                raise MalformedResponse(
                    "Graph returned a delta user without an id.", tenant_id=tenant_id
                )
            latest.pop(user_id, None)  # a replay moves the user to its latest position
            latest[user_id] = None if "@removed" in user else user
        next_delta_link = paginator.delta_link
        if not isinstance(next_delta_link, str) or not same_origin(next_delta_link, url):
            raise MalformedResponse(
                "Graph ended a delta round without a delta link on its own origin.",
                tenant_id=tenant_id,
            )
        return UsersDelta(
            changed=[user for user in latest.values() if user is not None],
            removed=[user_id for user_id, user in latest.items() if user is None],
            delta_link=next_delta_link,
        )

    def _items(
        self,
        url: str,
        token: AccessToken,
        tenant_id: str | None,
        headers: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        return self._fetch_all(
            url, token, tenant_id=tenant_id, request_ids=_request_id, headers=headers
        )


def _request_id() -> dict[str, str]:
    """A fresh `client-request-id` per request, for tracing a failure with Microsoft support."""
    return {"client-request-id": str(uuid.uuid4())}
