"""The identity platform (Entra ID v2): discovery, the token endpoint, device code, authorize.

One partner user and one app registration (the scenario's partner). A refresh token redeems at the
partner's tenant and at every customer tenant the partner can reach, as Entra's do for a GDAP/DAP
partner user; errors carry the AADSTS codes real tenants produce (see microsoft-apis.md §1.5).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from sync365_pipeline.simulator.disruptions import ServiceErrors, serve
from sync365_pipeline.simulator.payloads import stable_id
from sync365_pipeline.simulator.state import PendingSignIn, SimulatorState
from sync365_pipeline.simulator.tokens import (
    InvalidTokenError,
    RefreshTokenGrant,
    b64url,
    b64url_json,
)
from sync365_pipeline.simulator.wire import (
    NO_CACHE_HEADERS,
    TENANT_KEY,
    identity_error,
    json_response,
)

GRAPH_RESOURCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
PARTNER_CENTER_RESOURCES = (
    "https://api.partnercenter.microsoft.com",
    "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd",
)
# What `.default` expands to: the permissions the SAM app was consented for.
DELEGATED_PERMISSIONS = {
    "graph": (
        "DelegatedAdminRelationship.Read.All Directory.Read.All Organization.Read.All "
        "User.Read.All AuditLog.Read.All"
    ),
    "partner_center": "user_impersonation",
}
APPLICATION_ROLES = {
    "graph": ["Directory.Read.All", "Organization.Read.All"],
    "partner_center": ["Partner.Read.All"],
}
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
APP_NOT_INSTALLED = (
    "This can happen if the application has not been installed by the administrator of the "
    "tenant or consented to by any user in the tenant."
)
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ACCESS_FAULTS = frozenset(
    {"tenant_gone", "consent_revoked", "access_removed", "mfa_required", "blocked"}
)


def _service_of(resource: str) -> str | None:
    if resource.lower() in GRAPH_RESOURCES:
        return "graph"
    if resource.lower() in PARTNER_CENTER_RESOURCES:
        return "partner_center"
    return None


def _identity_throttled(request: web.Request, retry_after: int) -> web.Response:
    return identity_error(
        request,
        "temporarily_unavailable",
        90055,
        "The request was throttled. Too many requests to this tenant; retry later.",
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


def _identity_server_error(
    request: web.Request, status: int, retry_after: int | None
) -> web.Response:
    return identity_error(
        request,
        "temporarily_unavailable",
        90033,
        "A transient error has occurred. Please try again.",
        status=status,
        headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
    )


IDENTITY_ERRORS = ServiceErrors("identity", _identity_throttled, _identity_server_error)


class ScopeRequest:
    """A `scope` form field split into its resource, its permissions and the OIDC extras."""

    def __init__(self, raw: str) -> None:
        words = raw.split()
        self.oidc = {word for word in words if word in OIDC_SCOPES}
        self.resource_scopes = [word for word in words if word not in OIDC_SCOPES]
        self.resource = "https://graph.microsoft.com"
        permissions = []
        for index, scope in enumerate(self.resource_scopes):
            resource, _, permission = scope.rpartition("/")
            if index == 0 and resource:
                self.resource = resource  # a multi-resource request gets the first one's token
            if resource in ("", self.resource):
                permissions.append(permission)
        self.permissions = permissions
        self.service = _service_of(self.resource)

    def scp(self) -> str:
        named = [p for p in self.permissions if p != ".default"]
        if not named and self.service is not None:
            return DELEGATED_PERMISSIONS[self.service]
        return " ".join(named)


class IdentityPlatform:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(
            "/common/discovery/instance", self.instance_discovery, name="identity.instance"
        )
        app.router.add_get(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            self.openid_configuration,
            name="identity.openid_configuration",
        )
        app.router.add_get("/{tenant}/discovery/v2.0/keys", self.keys, name="identity.keys")
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self.token, name="identity.token")
        app.router.add_post(
            "/{tenant}/oauth2/v2.0/devicecode", self.devicecode, name="identity.devicecode"
        )
        app.router.add_get(
            "/{tenant}/oauth2/v2.0/authorize", self.authorize, name="identity.authorize"
        )

    # --- discovery -------------------------------------------------------------------------------

    async def instance_discovery(self, request: web.Request) -> web.Response:
        host = request.host
        return json_response(
            {
                "tenant_discovery_endpoint": (
                    f"https://{host}/{{tenant}}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            },
            headers={"Cache-Control": "max-age=86400, private"},
        )

    def _known_tenant(self, request: web.Request) -> str | web.Response:
        """The tenant id of the path, or the discovery/token error for an unknown or deleted one."""
        segment = request.match_info["tenant"]
        tenant_id = self.state.resolve_tenant(segment)
        request[TENANT_KEY] = tenant_id or segment
        if tenant_id is None or self.state.take_fault(tenant_id, frozenset({"tenant_gone"})):
            return self._tenant_not_found(request, segment)
        return tenant_id

    def _tenant_not_found(self, request: web.Request, segment: str) -> web.Response:
        is_token = request.path.endswith("/token") or request.path.endswith("/devicecode")
        return identity_error(
            request,
            "invalid_request" if is_token else "invalid_tenant",
            90002,
            f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and "
            "are signing into the correct cloud. Check with your subscription administrator, this "
            "may happen if there are no active subscriptions for the tenant.",
        )

    async def openid_configuration(self, request: web.Request) -> web.Response:
        tenant_id = self._known_tenant(request)
        if isinstance(tenant_id, web.Response):
            return tenant_id
        segment = request.match_info["tenant"].lower()
        path_tenant = segment if segment in ("common", "organizations") else tenant_id
        issuer_tenant = "{tenantid}" if path_tenant != tenant_id else tenant_id
        base = f"https://{request.host}/{path_tenant}"
        return json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"https://{request.host}/{issuer_tenant}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": "WW",
                "cloud_instance_name": "microsoftonline.com",
                "msgraph_host": "graph.microsoft.com",
            },
            headers={"Cache-Control": "max-age=86400, private"},
        )

    async def keys(self, request: web.Request) -> web.Response:
        return json_response({"keys": []})

    # --- token endpoint --------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        tenant_id = self._known_tenant(request)
        if isinstance(tenant_id, web.Response):
            return tenant_id
        return await serve(
            request, self.state, tenant_id, IDENTITY_ERRORS, lambda: self._token(request, tenant_id)
        )

    async def _token(self, request: web.Request, tenant_id: str) -> web.Response:
        form = await request.post()
        fields = {key: str(value) for key, value in form.items()}
        grant_type = fields.get("grant_type", "")
        if not grant_type:
            return self._missing(request, "grant_type")
        if "resource" in fields:
            return identity_error(
                request,
                "invalid_request",
                901002,
                "The 'resource' request parameter is not supported.",
            )
        client_id, secret = self._client_credentials(request, fields)
        if not client_id:
            return self._missing(request, "client_id")
        if client_id != self.state.partner.client_id:
            return identity_error(
                request,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self._tenant_name(tenant_id)}'. {APP_NOT_INSTALLED} You may have sent your "
                "authentication request to the wrong tenant.",
            )
        if secret is None and grant_type != DEVICE_CODE_GRANT:
            return identity_error(
                request,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        if secret is not None and not secrets.compare_digest(
            secret.encode(), self.state.partner.client_secret.encode()
        ):
            return identity_error(
                request,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )
        if secret is not None and self.state.client_secret_expired():
            return identity_error(
                request,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{client_id}' are expired. Visit the "
                "Azure portal to create new keys for your app or consider using certificate "
                "credentials for added security.",
            )
        if grant_type == "refresh_token":
            return self._refresh_token_grant(request, tenant_id, fields)
        if grant_type == "client_credentials":
            return self._client_credentials_grant(request, tenant_id, fields)
        if grant_type == "authorization_code":
            return self._authorization_code_grant(request, tenant_id, fields)
        if grant_type == DEVICE_CODE_GRANT:
            return self._device_code_grant(request, tenant_id, fields)
        return identity_error(
            request,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )

    @staticmethod
    def _client_credentials(request: web.Request, fields: dict[str, str]) -> tuple[str, str | None]:
        """client_id and secret from the form, or from HTTP Basic auth (both are accepted)."""
        client_id, secret = fields.get("client_id", ""), fields.get("client_secret")
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode("utf-8")
            except ValueError:
                return client_id, secret
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, secret = client_id or basic_id, secret or basic_secret
        return client_id, secret

    @staticmethod
    def _missing(request: web.Request, name: str) -> web.Response:
        return identity_error(
            request,
            "invalid_request",
            900144,
            f"The request body must contain the following parameter: '{name}'.",
        )

    def _tenant_name(self, tenant_id: str) -> str:
        if self.state.is_partner(tenant_id):
            return self.state.partner.display_name
        customer = self.state.customers.get(tenant_id) or self.state.departed.get(tenant_id)
        return customer.display_name if customer else tenant_id

    # --- grants --------------------------------------------------------------------------------

    def _refresh_token_grant(
        self, request: web.Request, tenant_id: str, fields: dict[str, str]
    ) -> web.Response:
        token = fields.get("refresh_token")
        if not token:
            return self._missing(request, "refresh_token")
        try:
            grant = self.state.read_refresh_token(token)
        except InvalidTokenError:
            return identity_error(
                request,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        if grant.client_id != fields.get("client_id", grant.client_id):
            return identity_error(
                request, "invalid_grant", 700007, "The grant was issued for a different client id."
            )
        issued = datetime.fromtimestamp(grant.issued_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        dead = self.state.refresh_token_dead(grant)
        if dead == "expired":
            return identity_error(
                request,
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity. The token was issued on "
                f"{issued} and was inactive for 90.00:00:00.",
                suberror="bad_token",
            )
        if dead == "revoked":
            return identity_error(
                request,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is "
                "needed. The user might have changed or reset their password. The grant was "
                f"issued on '{issued}' and the TokensValidFrom date (before which tokens are not "
                f"valid) for this user is '{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.0000000Z}'.",
            )
        scopes = ScopeRequest(fields.get("scope", ""))
        return self._user_tokens(request, tenant_id, scopes, fields, grant.mfa, grant.generation)

    def _client_credentials_grant(
        self, request: web.Request, tenant_id: str, fields: dict[str, str]
    ) -> web.Response:
        if request.match_info["tenant"].lower() in ("common", "consumers"):
            return identity_error(
                request,
                "invalid_request",
                9001023,
                "The provided grant type is not supported over the /common or /consumers "
                "endpoints. Please use the /organizations or tenant-specific endpoint.",
            )
        scopes = ScopeRequest(fields.get("scope", ""))
        if len(scopes.resource_scopes) != 1 or scopes.permissions != [".default"]:
            return identity_error(
                request,
                "invalid_scope",
                1002012,
                f"The provided value for scope {fields.get('scope', '')} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the resource "
                "identifier (application ID URI).",
            )
        if scopes.service is None:
            return self._unknown_resource(request, tenant_id, scopes.resource)
        if not self._app_consented(tenant_id):
            return identity_error(
                request,
                "unauthorized_client",
                700016,
                f"Application with identifier '{self.state.partner.client_id}' was not found in "
                f"the directory '{self._tenant_name(tenant_id)}'. {APP_NOT_INSTALLED}",
            )
        now = int(time.time())
        lifetime = self.state.settings.access_token_lifetime_s
        claims = {
            **self._common_claims(tenant_id, scopes.resource, now, lifetime),
            "idtyp": "app",
            "oid": stable_id(tenant_id, self.state.partner.client_id, "service-principal"),
            "roles": APPLICATION_ROLES[scopes.service],
            "sub": stable_id(tenant_id, self.state.partner.client_id, "service-principal"),
        }
        return self._token_response(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": self.state.signer.jwt(claims),
            }
        )

    def _app_consented(self, tenant_id: str) -> bool:
        """App-only access: the partner's own tenant, or a customer that consented to the app."""
        if self.state.is_partner(tenant_id):
            return True
        customer = self.state.customers.get(tenant_id)
        if customer is None or not customer.has_any_relationship():
            return False
        if not self.state.has_cpv_consent(tenant_id):
            return False
        return self.state.take_fault(tenant_id, frozenset({"consent_revoked"})) is None

    def _authorization_code_grant(
        self, request: web.Request, tenant_id: str, fields: dict[str, str]
    ) -> web.Response:
        code = fields.get("code")
        if not code:
            return self._missing(request, "code")
        sign_in = self.state.authorization_codes.get(code)
        if sign_in is None or sign_in.expires_at < time.time():
            return identity_error(
                request,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. "
                "Send a new interactive authorization request for this user and resource.",
            )
        if sign_in.status == "redeemed":
            return identity_error(
                request,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid "
                "code or use an existing refresh token.",
            )
        if sign_in.code_challenge is not None and not _pkce_matches(
            sign_in, fields.get("code_verifier", "")
        ):
            return identity_error(
                request,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization "
                "request.",
            )
        sign_in.status = "redeemed"
        scopes = ScopeRequest(fields.get("scope") or " ".join(sign_in.scopes))
        return self._user_tokens(
            request, tenant_id, scopes, fields, sign_in.mfa, self.state.rt_generation, sign_in.nonce
        )

    def _device_code_grant(
        self, request: web.Request, tenant_id: str, fields: dict[str, str]
    ) -> web.Response:
        code = fields.get("device_code")
        if not code:
            return self._missing(request, "device_code")
        sign_in = self.state.device_codes.get(code)
        if sign_in is None or sign_in.status == "redeemed":
            return identity_error(
                request,
                "bad_verification_code",
                70018,
                "Invalid verification code. The device code is not recognized or was already used.",
            )
        if sign_in.status == "expired" or sign_in.expires_at < time.time():
            return identity_error(request, "expired_token", 70019, "Verification code expired.")
        if sign_in.status == "declined":
            return identity_error(
                request,
                "authorization_declined",
                70000,
                "The user declined to authorize the device sign-in request.",
            )
        if sign_in.status == "pending":
            return identity_error(
                request,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        sign_in.status = "redeemed"
        scopes = ScopeRequest(" ".join(sign_in.scopes))
        return self._user_tokens(
            request, tenant_id, scopes, fields, sign_in.mfa, self.state.rt_generation
        )

    # --- issuing user tokens ---------------------------------------------------------------------

    def _user_access_error(self, request: web.Request, tenant_id: str) -> web.Response | None:
        """Why the partner's user cannot get a token in this tenant, as Entra would say it."""
        partner = self.state.partner
        user = f"User account '{partner.user_upn}' from identity provider 'https://sts.windows.net/{partner.tenant_id}/'"
        not_in_tenant = (
            f"{user} does not exist in tenant '{self._tenant_name(tenant_id)}' and cannot access "
            f"the application '{partner.client_id}'({partner.app_name}) in that tenant. The "
            "account needs to be added as an external user in the tenant first. Sign out and sign "
            "in again with a different Azure Active Directory user account."
        )
        if tenant_id in self.state.departed:
            return identity_error(request, "invalid_grant", 50020, not_in_tenant)
        fault = self.state.take_fault(tenant_id, ACCESS_FAULTS)
        kind = fault.type if fault is not None else None
        if kind == "tenant_gone":
            return self._tenant_not_found(request, tenant_id)
        if kind == "consent_revoked":
            return self._consent_required(request)
        if kind == "mfa_required":
            return identity_error(
                request,
                "invalid_grant",
                50076,
                "Due to a configuration change made by your administrator, or because you moved to "
                "a new location, you must use multi-factor authentication to access "
                f"'{PARTNER_CENTER_RESOURCES[1]}'.",
                suberror="basic_action",
            )
        if kind == "blocked":
            return identity_error(
                request,
                "invalid_grant",
                53003,
                "Access has been blocked by Conditional Access policies. The access policy does "
                "not allow token issuance.",
                suberror="message_only",
            )
        customer = self.state.customers.get(tenant_id)
        if kind == "access_removed" or (
            customer is not None and not customer.has_any_relationship()
        ):
            return identity_error(request, "invalid_grant", 50020, not_in_tenant)
        if customer is not None and not self.state.has_cpv_consent(tenant_id):
            if customer.reached_through_gdap():
                return self._not_authorized_for_gdap(request, tenant_id)
            return self._consent_required(request)
        return None

    def _consent_required(self, request: web.Request) -> web.Response:
        partner = self.state.partner
        return identity_error(
            request,
            "invalid_grant",
            65001,
            f"The user or administrator has not consented to use the application with ID "
            f"'{partner.client_id}' named '{partner.app_name}'. Send an interactive "
            "authorization request for this user and resource.",
            suberror="consent_required",
        )

    def _not_authorized_for_gdap(self, request: web.Request, tenant_id: str) -> web.Response:
        """A GDAP delegated admin before CPV consent (microsoft-apis-more.md §4.5)."""
        partner = self.state.partner
        return identity_error(
            request,
            "invalid_grant",
            90099,
            f"The application '{partner.client_id}' ({partner.app_name}) has not been authorized "
            f"in the tenant '{tenant_id}'. Applications must be authorized to access the customer "
            "tenant before partner delegated administrators can use them. Provide pre-consent or "
            "execute the appropriate Partner Center API to authorize the application.",
        )

    def _unknown_resource(
        self, request: web.Request, tenant_id: str, resource: str
    ) -> web.Response:
        return identity_error(
            request,
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant named "
            f"{self._tenant_name(tenant_id)}. {APP_NOT_INSTALLED} You might have sent your "
            "authentication request to the wrong tenant.",
        )

    def _common_claims(
        self, tenant_id: str, audience: str, now: int, lifetime: int
    ) -> dict[str, Any]:
        return {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": self.state.partner.client_id,
            "appidacr": "1",
            "tid": tenant_id,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }

    def _user_tokens(
        self,
        request: web.Request,
        tenant_id: str,
        scopes: ScopeRequest,
        fields: dict[str, str],
        mfa: bool,
        generation: int,
        nonce: str | None = None,
    ) -> web.Response:
        refusal = self._user_access_error(request, tenant_id)
        if refusal is not None:
            return refusal
        if scopes.service is None:
            return self._unknown_resource(request, tenant_id, scopes.resource)
        partner = self.state.partner
        now = int(time.time())
        lifetime = self.state.settings.access_token_lifetime_s
        claims: dict[str, Any] = {
            **self._common_claims(tenant_id, scopes.resource, now, lifetime),
            "acr": "1",
            "amr": ["pwd", "mfa"] if mfa else ["pwd"],
            "idtyp": "user",
            "name": partner.user_display_name,
            "oid": partner.user_object_id,
            "scp": scopes.scp(),
            "sub": stable_id(partner.user_object_id, partner.client_id, "sub"),
            "unique_name": partner.user_upn,
            "upn": partner.user_upn,
        }
        if not self.state.is_partner(tenant_id):
            claims["idp"] = f"https://sts.windows.net/{partner.tenant_id}/"
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(scopes.resource_scopes),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.state.signer.jwt(claims),
        }
        if "offline_access" in scopes.oidc:
            body["refresh_token"] = self.state.signer.refresh_token(
                RefreshTokenGrant(partner.client_id, partner.user_object_id, mfa, generation, now)
            )
        if "openid" in scopes.oidc:
            body["id_token"] = self.state.signer.jwt(
                {
                    "aud": partner.client_id,
                    "iss": f"https://{request.host}/{tenant_id}/v2.0",
                    "iat": now,
                    "nbf": now,
                    "exp": now + lifetime,
                    "name": partner.user_display_name,
                    "oid": partner.user_object_id,
                    "preferred_username": partner.user_upn,
                    "sub": claims["sub"],
                    "tid": tenant_id,
                    "ver": "2.0",
                    **({"nonce": nonce} if nonce is not None else {}),
                }
            )
        if fields.get("client_info") == "1":
            body["client_info"] = b64url_json(
                {"uid": partner.user_object_id, "utid": partner.tenant_id}
            )
        return self._token_response(body)

    def _token_response(self, body: dict[str, Any]) -> web.Response:
        self.state.note_issued(
            body[name] for name in ("access_token", "refresh_token", "id_token") if name in body
        )
        return json_response(
            body, headers={**NO_CACHE_HEADERS, "x-ms-request-id": str(uuid.uuid4())}
        )

    # --- interactive sign-ins (no browser: a control-API call or an immediate redirect) -----------

    async def devicecode(self, request: web.Request) -> web.Response:
        tenant_id = self._known_tenant(request)
        if isinstance(tenant_id, web.Response):
            return tenant_id
        form = await request.post()
        client_id = str(form.get("client_id", ""))
        if not client_id:
            return self._missing(request, "client_id")
        scopes = str(form.get("scope", "")).split()
        sign_in = self.state.new_device_code(client_id, tenant_id, scopes)
        verification_uri = "https://microsoft.com/devicelogin"
        return json_response(
            {
                "user_code": sign_in.user_code,
                "device_code": sign_in.code,
                "verification_uri": verification_uri,
                "expires_in": self.state.settings.device_code_lifetime_s,
                "interval": self.state.settings.device_code_interval_s,
                "message": (
                    f"To sign in, use a web browser to open the page {verification_uri} and enter "
                    f"the code {sign_in.user_code} to authenticate."
                ),
            },
            headers=NO_CACHE_HEADERS,
        )

    async def authorize(self, request: web.Request) -> web.Response:
        """Sign the partner's user in at once (MFA as the scenario says) and redirect back."""
        tenant_id = self._known_tenant(request)
        if isinstance(tenant_id, web.Response):
            return tenant_id
        query = request.query
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri or query.get("client_id") != self.state.partner.client_id:
            return web.Response(status=400, text="AADSTS700016: unknown client_id or redirect_uri")
        code = "0.AXoA" + secrets.token_urlsafe(48)
        self.state.authorization_codes[code] = PendingSignIn(
            code=code,
            client_id=self.state.partner.client_id,
            tenant_id=tenant_id,
            scopes=query.get("scope", "").split(),
            expires_at=time.time() + 600,
            mfa=self.state.partner.mfa,
            redirect_uri=redirect_uri,
            code_challenge=query.get("code_challenge"),
            code_challenge_method=query.get("code_challenge_method", "plain"),
            nonce=query.get("nonce"),
        )
        params = {"code": code, "session_state": str(uuid.uuid4())}
        if "state" in query:
            params["state"] = query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        raise web.HTTPFound(f"{redirect_uri}{separator}{urlencode(params)}")


def _pkce_matches(sign_in: PendingSignIn, verifier: str) -> bool:
    if sign_in.code_challenge_method == "S256":
        expected = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    else:
        expected = verifier
    return secrets.compare_digest(expected, sign_in.code_challenge or "")
