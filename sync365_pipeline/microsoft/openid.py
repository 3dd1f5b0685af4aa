"""Every tenant's OpenID configuration at one authority, answered from the home tenant's document.

MSAL builds one app per customer authority and each constructor GETs that tenant's OpenID
configuration: one request per tenant, whose answer differs from the partner's own document only by
the tenant id in its endpoints. `OpenIdConfigurations` fetches the home tenant's document once,
keeps it for a day (Microsoft sends `Cache-Control: max-age=86400`; MSAL keeps it as long), also on
disk beside the token cache so the next sync sends none, and answers each tenant's GET with that
tenant substituted. MSAL stays the token code: `OpenIdServingClient`, its `http_client`, answers
those GETs and sends everything else through the shared session.

The keys never leave: a derived document holds only the endpoints MSAL reads, each on the
configured authority's origin with the template's tenant as its first path segment (MSAL takes the
token cache's realm from it, so a shared `/organizations/` endpoint would hand one customer's token
to another). A template that does not is refused with `OpenIdConfigurationRefused`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from sync365_pipeline.core.settings import is_guid
from sync365_pipeline.microsoft.errors import OpenIdConfigurationRefused
from sync365_pipeline.microsoft.private_file import write_private_file

log = logging.getLogger(__name__)

DOCUMENT_PATH = "v2.0/.well-known/openid-configuration"
MAX_AGE_S = 86_400.0  # Microsoft's Cache-Control for these documents
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint")
# What else MSAL reads: device flow's endpoint, and the issuer (checked only with oidc_authority).
OPTIONAL_ENDPOINTS = ("device_authorization_endpoint", "issuer")


class OpenIdTemplate:
    """One tenant's validated document; `for_tenant` derives any other tenant's."""

    def __init__(self, authority_host: str, document: object) -> None:
        self._origin = _origin(authority_host)
        if not isinstance(document, Mapping):
            raise self._refused("is not a JSON object")
        token_endpoint = document.get("token_endpoint")
        self.tenant = _first_segment(token_endpoint) if isinstance(token_endpoint, str) else ""
        if not self.tenant:
            raise self._refused("has no token_endpoint with a tenant in its path")
        self.endpoints: dict[str, str] = {}
        for key in (*REQUIRED_ENDPOINTS, *OPTIONAL_ENDPOINTS):
            url = document.get(key)
            if url is None and key in OPTIONAL_ENDPOINTS:
                continue
            if not isinstance(url, str) or not self._on_authority(url):
                raise self._refused(
                    f"has a {key} that is not under {self._origin}/{self.tenant}/ (it must point "
                    "at the configured authority and the document's own tenant)"
                )
            self.endpoints[key] = url

    def for_tenant(self, tenant: str) -> dict[str, str]:
        """The document of `tenant`: the template's endpoints with its tenant replaced."""
        return {key: _with_tenant(url, tenant) for key, url in self.endpoints.items()}

    def _on_authority(self, url: str) -> bool:
        return _origin(url) == self._origin and _first_segment(url).lower() == self.tenant.lower()

    def _refused(self, why: str) -> OpenIdConfigurationRefused:
        return OpenIdConfigurationRefused(
            f"The OpenID configuration served by {self._origin} {why}; no token request is sent "
            "on the strength of it."
        )


class OpenIdConfigurations:
    """The documents of `authority_host`'s tenants from one fetch of `home_tenant`'s (thread-safe).

    `store` (a file beside the token cache) keeps the template between syncs.
    """

    def __init__(
        self,
        authority_host: str,
        home_tenant: str,
        session: requests.Session,
        *,
        store: Path | None,
    ) -> None:
        self._authority_host = authority_host.rstrip("/")
        self._home_tenant = home_tenant
        self._session = session
        self._store = store
        self._template: OpenIdTemplate | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def answer(self, url: str) -> requests.Response | None:
        """The local answer to a GET of `url`, or None if it must be sent: not a tenant document
        of this authority, a tenant named by domain (only the authority knows its id), or a home
        document that could not be fetched (its error reaches MSAL as before)."""
        tenant = self._tenant_of(url)
        if tenant is None:
            return None
        with self._lock:
            template = self._current_template()
            if template is None:
                home = self._session.get(self.document_url(self._home_tenant))
                if not home.ok:
                    return home if tenant.lower() == self._home_tenant.lower() else None
                template = self._learn(home.json())
        # The home document as fetched: a home tenant named by domain keeps its id as the realm.
        is_home = tenant.lower() == self._home_tenant.lower()
        return _json_response(url, template.for_tenant(template.tenant if is_home else tenant))

    def document_url(self, tenant: str) -> str:
        return f"{self._authority_host}/{tenant}/{DOCUMENT_PATH}"

    def _tenant_of(self, url: str) -> str | None:
        prefix, suffix = f"{self._authority_host}/", f"/{DOCUMENT_PATH}"
        if not (url.startswith(prefix) and url.endswith(suffix)):
            return None
        tenant = url[len(prefix) : -len(suffix)]
        if is_guid(tenant) or tenant.lower() == self._home_tenant.lower():
            return tenant
        return None

    def _current_template(self) -> OpenIdTemplate | None:
        if self._template is None and self._store is not None:
            self._template, self._fetched_at = self._stored()
        if self._template is not None and time.time() - self._fetched_at < MAX_AGE_S:
            return self._template
        return None

    def _learn(self, document: object) -> OpenIdTemplate:
        template = OpenIdTemplate(self._authority_host, document)
        self._template, self._fetched_at = template, time.time()
        if self._store is not None:
            write_private_file(
                self._store,
                json.dumps(
                    {
                        "authority_host": self._authority_host,
                        "home_tenant": self._home_tenant,
                        "fetched_at": self._fetched_at,
                        "document": document,
                    }
                ),
            )
        return template

    def _stored(self) -> tuple[OpenIdTemplate | None, float]:
        """The stored template if it is this authority's and still valid; else none (fetch)."""
        assert self._store is not None
        try:
            stored = json.loads(self._store.read_text(encoding="utf-8"))
            if (stored["authority_host"], stored["home_tenant"]) != (
                self._authority_host,
                self._home_tenant,
            ):
                return None, 0.0
            return OpenIdTemplate(self._authority_host, stored["document"]), float(
                stored["fetched_at"]
            )
        except FileNotFoundError:
            return None, 0.0
        except (OSError, ValueError, KeyError, TypeError, OpenIdConfigurationRefused) as exc:
            log.info("Ignoring the stored OpenID configuration %s (%s)", self._store, exc)
            return None, 0.0


class OpenIdServingClient:
    """MSAL's `http_client`: tenant documents from `configurations`, the rest via `session`."""

    def __init__(self, session: requests.Session, configurations: OpenIdConfigurations) -> None:
        self._session = session
        self._configurations = configurations

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._configurations.answer(url) or self._session.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._session.post(url, **kwargs)

    def close(self) -> None:
        self._session.close()


def openid_store_path(token_cache_path: Path) -> Path:
    """Where the template is kept between syncs: beside the token cache it serves."""
    return token_cache_path.with_name(f"{token_cache_path.name}.openid-configuration.json")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _first_segment(url: str) -> str:
    return urlsplit(url).path.lstrip("/").partition("/")[0]


def _with_tenant(url: str, tenant: str) -> str:
    parts = urlsplit(url)
    rest = parts.path.lstrip("/").partition("/")[2]
    return urlunsplit(parts._replace(path=f"/{tenant}/{rest}" if rest else f"/{tenant}"))


def _json_response(url: str, document: Mapping[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.url = url
    response.headers["Content-Type"] = "application/json"
    response.encoding = "utf-8"
    response._content = json.dumps(document).encode()
    return response
