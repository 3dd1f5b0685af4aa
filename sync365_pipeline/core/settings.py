"""Configuration: one place that reads settings, validates them and says what is wrong.

Two sources: `SYNC365_*` environment variables (one partner account), or an accounts file named
by `SYNC365_CONFIG` (several partner accounts and direct tenants, one warehouse). Endpoints are
configuration, so the same code talks to Microsoft's global cloud (the default), a national cloud,
or the bundled simulator. Secrets are never written in the accounts file: it names where each
secret comes from (an environment variable or a file).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DATA_DIR = Path("data")
DEFAULT_LOCK_TIMEOUT_S = 30.0

AccountKind = Literal["partner", "direct"]
CloudName = Literal["global", "usgov", "china"]


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


# Microsoft's documented endpoints per cloud ("National cloud deployments" for Entra ID and Graph,
# "Partner Center REST URLs" for Partner Center). Partner Center for US Government uses the global
# Partner Center host; the 21Vianet resource id follows its API host (not documented separately).
CLOUDS: dict[str, Endpoints] = {
    "global": Endpoints(),
    "usgov": Endpoints(
        authority_host="https://login.microsoftonline.us",
        graph_url="https://graph.microsoft.us",
        graph_resource="https://graph.microsoft.us",
    ),
    "china": Endpoints(
        authority_host="https://login.chinacloudapi.cn",
        graph_url="https://microsoftgraph.chinacloudapi.cn",
        partner_center_url="https://partner.partnercenterapi.microsoftonline.cn",
        graph_resource="https://microsoftgraph.chinacloudapi.cn",
        partner_center_resource="https://partner.partnercenterapi.microsoftonline.cn",
    ),
}


@dataclass(frozen=True)
class PartnerCredentials:
    """An app registration: for a partner, with the Secure Application Model refresh token.

    For a direct tenant `partner_tenant_id` is that tenant itself (it is its own "partner" in
    every table) and there is no refresh token: the app signs in with client credentials.
    """

    client_id: str
    client_secret: Secret
    partner_tenant_id: str
    refresh_token: Secret | None = None


@dataclass(frozen=True)
class Settings:
    """Everything one account needs; the pipeline syncs a list of these into one warehouse."""

    credentials: PartnerCredentials
    endpoints: Endpoints = field(default_factory=Endpoints)
    ca_bundle: Path | None = None
    token_cache_path: Path = DATA_DIR / "token_cache.json"
    max_workers: int = 16
    name: str = "default"
    kind: AccountKind = "partner"

    @property
    def tenant_id(self) -> str:
        """The account's own tenant: the partner's, or the direct tenant."""
        return self.credentials.partner_tenant_id

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
        cloud = env.get("SYNC365_CLOUD", "").strip() or "global"
        if cloud not in CLOUDS:
            problems.append(f"SYNC365_CLOUD must be one of {', '.join(CLOUDS)}, not {cloud!r}.")
            cloud = "global"
        endpoints = _endpoints(
            CLOUDS[cloud],
            {
                "authority_host": env.get("SYNC365_AUTHORITY_HOST"),
                "graph_url": env.get("SYNC365_GRAPH_URL"),
                "partner_center_url": env.get("SYNC365_PARTNER_CENTER_URL"),
            },
            "SYNC365_",
            problems,
        )
        ca_bundle = _ca_bundle(env.get("SYNC365_CA_BUNDLE"), "SYNC365_CA_BUNDLE", problems)

        max_workers = 16
        if raw := env.get("SYNC365_MAX_WORKERS", "").strip():
            if raw.isdigit() and 1 <= int(raw) <= 256:
                max_workers = int(raw)
            else:
                problems.append(
                    f"SYNC365_MAX_WORKERS must be a whole number from 1 to 256, not {raw!r}."
                )

        _raise_if(problems, "Set them in the environment (see README, 'Configuration')")
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
            max_workers=max_workers,
        )


def load_accounts(environ: Mapping[str, str] | None = None) -> list[Settings]:
    """The accounts to sync: the file named by `SYNC365_CONFIG`, else one from `SYNC365_*`."""
    env = os.environ if environ is None else environ
    if path := env.get("SYNC365_CONFIG", "").strip():
        return accounts_from_file(Path(path), env)
    return [Settings.from_env(env)]


def duckdb_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The warehouse file; readers need only this, not the partner's credentials.

    With an accounts file, its `duckdb_path` applies unless `SYNC365_DUCKDB_PATH` is set.
    """
    env = os.environ if environ is None else environ
    if explicit := env.get("SYNC365_DUCKDB_PATH", "").strip():
        return Path(explicit)
    if (path := env.get("SYNC365_CONFIG", "").strip()) and Path(path).is_file():
        try:
            configured = tomllib.loads(Path(path).read_text()).get("duckdb_path")
        except (OSError, tomllib.TOMLDecodeError):
            configured = None  # reported in full by load_accounts
        if isinstance(configured, str) and configured:
            return Path(configured)
    return DATA_DIR / "sync365.duckdb"


def lock_timeout_from_env(environ: Mapping[str, str] | None = None) -> float:
    """How long a warehouse write waits for another process's lock (`SYNC365_LOCK_TIMEOUT`)."""
    env = os.environ if environ is None else environ
    raw = env.get("SYNC365_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ConfigError(f"SYNC365_LOCK_TIMEOUT must be seconds from 0 to 3600, not {raw!r}.")
    return seconds


# --- the accounts file ------------------------------------------------------------------------

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def is_guid(value: str) -> bool:
    """A tenant or application id in GUID form (tenants may also be named by a domain)."""
    return bool(_GUID.match(value))


class _FileModel(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid")


class AccountEntry(_FileModel):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: AccountKind = "partner"
    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    refresh_token_env: str | None = None
    token_cache: Path | None = None
    cloud: CloudName = "global"
    authority_host: str | None = None
    graph_url: str | None = None
    partner_center_url: str | None = None
    ca_bundle: Path | None = None

    @model_validator(mode="after")
    def _one_secret_source(self) -> AccountEntry:
        if (self.client_secret_env is None) == (self.client_secret_file is None):
            raise ValueError("give exactly one of client_secret_env or client_secret_file")
        if self.kind == "direct" and self.refresh_token_env is not None:
            raise ValueError("a direct tenant signs in with client credentials: no refresh token")
        if not is_guid(self.client_id):
            raise ValueError(f"client_id {self.client_id!r} is not an application (client) id")
        return self


class AccountsFile(_FileModel):
    duckdb_path: Path | None = None
    max_workers: int = Field(default=16, ge=1, le=256)
    accounts: list[AccountEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> AccountsFile:
        for attribute in ("name", "tenant_id"):
            values = [getattr(account, attribute).lower() for account in self.accounts]
            if duplicates := sorted({value for value in values if values.count(value) > 1}):
                raise ValueError(f"accounts share a {attribute}: {', '.join(duplicates)}")
        return self


def accounts_from_file(path: Path, environ: Mapping[str, str] | None = None) -> list[Settings]:
    """Parse and validate an accounts file (TOML); every problem is named with its place."""
    env = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"SYNC365_CONFIG names {path}, which does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        parsed = AccountsFile.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or '(file)'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise ConfigError(f"{path} is invalid:\n- " + "\n- ".join(problems)) from None

    problems: list[str] = []
    accounts = []
    for index, entry in enumerate(parsed.accounts):
        where = f"accounts[{index}] ({entry.name})"
        secret = _read_secret(entry, env, where, problems)
        refresh_token = None
        if entry.refresh_token_env and (value := env.get(entry.refresh_token_env, "").strip()):
            refresh_token = Secret(value)
        accounts.append(
            Settings(
                credentials=PartnerCredentials(
                    client_id=entry.client_id,
                    client_secret=Secret(secret),
                    partner_tenant_id=entry.tenant_id,
                    refresh_token=refresh_token,
                ),
                endpoints=_endpoints(
                    CLOUDS[entry.cloud],
                    {
                        "authority_host": entry.authority_host,
                        "graph_url": entry.graph_url,
                        "partner_center_url": entry.partner_center_url,
                    },
                    f"{where}.",
                    problems,
                ),
                ca_bundle=_ca_bundle(
                    str(entry.ca_bundle) if entry.ca_bundle else None,
                    f"{where}.ca_bundle",
                    problems,
                ),
                token_cache_path=entry.token_cache or DATA_DIR / f"token_cache-{entry.name}.json",
                max_workers=parsed.max_workers,
                name=entry.name,
                kind=entry.kind,
            )
        )
    _raise_if(problems, f"Fix them in {path} or in the environment it names")
    return accounts


def _read_secret(
    entry: AccountEntry, env: Mapping[str, str], where: str, problems: list[str]
) -> str:
    if entry.client_secret_env is not None:
        value = env.get(entry.client_secret_env, "").strip()
        if not value:
            problems.append(f"{where}: environment variable {entry.client_secret_env} is not set.")
        return value
    path = entry.client_secret_file
    try:
        value = path.read_text(encoding="utf-8").strip() if path else ""
    except OSError as exc:
        problems.append(f"{where}: cannot read client_secret_file {path} ({exc.strerror}).")
        return ""
    if not value:
        problems.append(f"{where}: client_secret_file {path} is empty.")
    return value


def _endpoints(
    base: Endpoints, overrides: Mapping[str, str | None], prefix: str, problems: list[str]
) -> Endpoints:
    """A cloud's endpoints with explicit URLs (the simulator, a proxy) taking precedence."""
    values = {}
    for name, value in overrides.items():
        default = getattr(base, name)
        label = f"{prefix}{name.upper()}" if prefix == "SYNC365_" else f"{prefix}{name}"
        values[name] = _url(value or default, default, label, problems)
    return replace(base, **values)


def _ca_bundle(value: str | None, label: str, problems: list[str]) -> Path | None:
    if not value or not value.strip():
        return None
    path = Path(value.strip())
    if not path.is_file():
        problems.append(f"{label} points at {path}, which is not a readable file.")
    return path


def _url(value: str, default: str, label: str, problems: list[str]) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        problems.append(
            f"{label} must be an https URL such as {default}, not {value!r} "
            "(Microsoft's sign-in library refuses plain http)."
        )
    return value


def _raise_if(problems: list[str], where_to_fix: str) -> None:
    if problems:
        raise ConfigError(
            "sync365 is not configured:\n- "
            + "\n- ".join(problems)
            + f"\n{where_to_fix}, or run `sync365 demo` to try the pipeline against the built-in "
            "simulator."
        )
