"""Configuration: one place that reads `SYNC365_*` settings, validates them and says what is wrong.

Endpoints are configuration so that the same code talks to Microsoft's global cloud (the default), a
national cloud, or the bundled simulator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

DATA_DIR = Path("data")


class ConfigError(ValueError):
    """The configuration is missing or malformed; the message lists every problem and its fix."""


class Secret:
    """A string that never shows itself in `repr`, `str`, f-strings, logs or exceptions."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the three Microsoft services, without a trailing slash.

    The `*_resource` values are the resource identifiers put in OAuth scopes
    (`{resource}/.default`); they stay Microsoft's even when the URLs point at the simulator.
    """

    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com"
    partner_center_url: str = "https://api.partnercenter.microsoft.com"
    graph_resource: str = "https://graph.microsoft.com"
    partner_center_resource: str = "https://api.partnercenter.microsoft.com"


@dataclass(frozen=True)
class PartnerCredentials:
    """The partner's app registration and the Secure Application Model refresh token."""

    client_id: str
    client_secret: Secret
    partner_tenant_id: str
    refresh_token: Secret | None = None


@dataclass(frozen=True)
class Settings:
    credentials: PartnerCredentials
    endpoints: Endpoints = field(default_factory=Endpoints)
    ca_bundle: Path | None = None
    token_cache_path: Path = DATA_DIR / "token_cache.json"
    duckdb_path: Path = DATA_DIR / "sync365.duckdb"
    max_workers: int = 16

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read `SYNC365_*` variables; raise `ConfigError` naming every missing or bad one."""
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def required(name: str, meaning: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set: {meaning}.")
            return value

        client_id = required(
            "SYNC365_CLIENT_ID", "the application (client) id of the partner's app"
        )
        secret = required("SYNC365_CLIENT_SECRET", "a client secret value of that app")
        tenant = required("SYNC365_PARTNER_TENANT_ID", "the partner's own tenant id")
        refresh_token = env.get("SYNC365_REFRESH_TOKEN", "").strip()

        defaults = Endpoints()
        endpoints = Endpoints(
            authority_host=_url(env, "SYNC365_AUTHORITY_HOST", defaults.authority_host, problems),
            graph_url=_url(env, "SYNC365_GRAPH_URL", defaults.graph_url, problems),
            partner_center_url=_url(
                env, "SYNC365_PARTNER_CENTER_URL", defaults.partner_center_url, problems
            ),
        )

        ca_bundle = None
        if ca := env.get("SYNC365_CA_BUNDLE", "").strip():
            ca_bundle = Path(ca)
            if not ca_bundle.is_file():
                problems.append(f"SYNC365_CA_BUNDLE points at {ca}, which is not a readable file.")

        max_workers = 16
        if raw := env.get("SYNC365_MAX_WORKERS", "").strip():
            if raw.isdigit() and 1 <= int(raw) <= 256:
                max_workers = int(raw)
            else:
                problems.append(
                    f"SYNC365_MAX_WORKERS must be a whole number from 1 to 256, not {raw!r}."
                )

        if problems:
            raise ConfigError(
                "sync365 is not configured:\n- "
                + "\n- ".join(problems)
                + "\nSet them in the environment (see README, 'Configuration'), or run "
                "`sync365 demo` to try the pipeline against the built-in simulator."
            )
        return cls(
            credentials=PartnerCredentials(
                client_id=client_id,
                client_secret=Secret(secret),
                partner_tenant_id=tenant,
                refresh_token=Secret(refresh_token) if refresh_token else None,
            ),
            endpoints=endpoints,
            ca_bundle=ca_bundle,
            token_cache_path=Path(env.get("SYNC365_TOKEN_CACHE") or DATA_DIR / "token_cache.json"),
            duckdb_path=duckdb_path_from_env(env),
            max_workers=max_workers,
        )

    def with_endpoints(self, endpoints: Endpoints) -> Settings:
        return replace(self, endpoints=endpoints)


def duckdb_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The warehouse file; readers need only this, not the partner's credentials."""
    env = os.environ if environ is None else environ
    return Path(env.get("SYNC365_DUCKDB_PATH") or DATA_DIR / "sync365.duckdb")


def _url(env: Mapping[str, str], name: str, default: str, problems: list[str]) -> str:
    value = (env.get(name) or default).strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        problems.append(
            f"{name} must be an https URL such as {default}, not {value!r} "
            "(Microsoft's sign-in library refuses plain http)."
        )
    return value
