"""Configuration: one model for an account, one for the run, and the one way they are filled.

Three sources feed the same validators, in one precedence (highest first), in both modes:

1. Dagster resource config (`microsoft`, `warehouse` and `webhook` resources; a secret there is
   set with `dg.EnvVar`, never a literal);
2. `SYNC365_*` environment variables;
3. the accounts file named by `SYNC365_CONFIG` (TOML: several partner accounts and direct
   tenants, one warehouse);
4. the defaults.

Run-level settings (`RunSettings`: warehouse file, lock timeout, concurrency, extra CA, webhook)
follow it in both modes, and its `max_workers` and `ca_bundle` apply to every account. Who signs
in where (`AccountSettings`) comes from the single-account variables or resource config, or, with
an accounts file, from its entries only. Endpoints are configuration, so the same code talks to
Microsoft's global cloud, a national cloud or the bundled simulator. Secrets are never written in
the accounts file: it names where each secret comes from (an environment variable or a file).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError, core_schema

from sync365_pipeline.core.redaction import register_secret

DATA_DIR = Path("data")
DEFAULT_LOCK_TIMEOUT_S = 30.0
# Connect, headers and body of one response: Microsoft answers in well under a second; a body
# that trickles in must not hold a worker for minutes.
DEFAULT_RESPONSE_DEADLINE_S = 30.0
# Requests per minute to Partner Center, per partner: its documented limit for the customer
# resource ("500 requests per minute per tenant identifier").
DEFAULT_PARTNER_CENTER_RATE = 500
MAX_PARTNER_CENTER_RATE = 100_000
# The data-quality checks' thresholds: the share of active customers a sync must reach (below it
# the run reached too few to trust the day), and how many days a reachable customer's facts may
# lag the day of the run.
DEFAULT_MIN_REACHED_SHARE = 0.9
DEFAULT_MAX_FACTS_AGE_DAYS = 1

AccountKind = Literal["partner", "direct"]
CloudName = Literal["global", "usgov", "china"]


class ConfigError(ValueError):
    """The configuration is missing or malformed; the message lists every problem and its fix."""


class Secret:
    """A string that never shows itself in `repr`, `str`, f-strings, logs or exceptions, and that
    `redact` removes from any text it appears in (a hostile service may echo it back)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """A model field of this type takes a string and dumps as the mask, never the value."""
        return core_schema.no_info_plain_validator_function(
            cls._from_text, serialization=core_schema.plain_serializer_function_ser_schema(repr)
        )

    @classmethod
    def _from_text(cls, value: object) -> Secret:
        if isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            raise _invalid("must be text")
        return cls(value)


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


# --- the validators every source goes through ---------------------------------------------------

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_URL_KEYS = ("authority_host", "graph_url", "partner_center_url")


def is_guid(value: str) -> bool:
    """A tenant or application id in GUID form (tenants may also be named by a domain)."""
    return bool(_GUID.match(value))


def _invalid(message: str) -> PydanticCustomError:
    """A problem phrased to follow the name of the setting: `SYNC365_X <message>`."""
    return PydanticCustomError("sync365", message)


def _one_of(choices: Sequence[str]) -> Callable[[object], object]:
    def check(value: object) -> object:
        if value not in choices:
            raise _invalid(f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    return check


def _whole_number(most: int) -> Callable[[object], int]:
    """1 to `most`: a number (file, resource config) or its digits (environment)."""

    def check(value: object) -> int:
        number = int(value) if isinstance(value, str) and value.isdigit() else value
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= most:
            raise _invalid(f"must be a whole number from 1 to {most:,}, not {value!r}")
        return number

    return check


def _seconds(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not 0 < seconds <= 3600:
        raise _invalid(f"must be seconds from 0 to 3600, not {value!r}")
    return seconds


Seconds = Annotated[float, BeforeValidator(_seconds)]


def _share(value: object) -> float:
    try:
        share = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        share = -1.0
    if isinstance(value, bool) or not 0 <= share <= 1:
        raise _invalid(f"must be a share from 0 to 1 (0.9: nine in ten), not {value!r}")
    return share


Share = Annotated[float, BeforeValidator(_share)]


def _per_minute(value: object) -> int:
    """Requests per minute: a number (file, resource config) or its digits (environment)."""
    number = int(value) if isinstance(value, str) and value.isdigit() else value
    if isinstance(number, bool) or not isinstance(number, int):
        number = 0
    if not 1 <= number <= MAX_PARTNER_CENTER_RATE:
        raise _invalid(
            f"must be requests per minute, a whole number from 1 to {MAX_PARTNER_CENTER_RATE}, "
            f"not {value!r}"
        )
    return number


PerMinute = Annotated[int, BeforeValidator(_per_minute)]


_SWITCH_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False}
_SWITCH_WORDS |= {"off": False, "0": False}


def _switch(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _SWITCH_WORDS:
        return _SWITCH_WORDS[value.strip().lower()]
    raise _invalid(f"must be true or false, not {value!r}")


def _readable_file(path: Path) -> Path:
    if not path.is_file():
        raise _invalid(f"points at {path}, which is not a readable file")
    return path


def _https_url(value: str, info: ValidationInfo) -> str:
    value = value.rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        example = getattr(Endpoints(), info.field_name or "graph_url")
        raise _invalid(
            f"must be an https URL such as {example}, not {value!r} "
            "(Microsoft's sign-in library refuses plain http)"
        )
    return value


def _client_id(value: str) -> str:
    if not is_guid(value):
        raise _invalid(f"must be an application (client) id (a GUID), not {value!r}")
    return value


def _account_name(value: str) -> str:
    if not _NAME.match(value):
        raise _invalid(f"may hold only letters, digits, '.', '_' and '-', not {value!r}")
    return value


Workers = Annotated[int, BeforeValidator(_whole_number(256))]
# Tenants per chunk of the bulk fetch: a step each (in parallel under a multiprocess executor),
# and what bounds the memory of one step (its tenants' payloads and rows).
DEFAULT_CHUNK_SIZE = 500
ChunkSize = Annotated[int, BeforeValidator(_whole_number(100_000))]
Days = Annotated[int, BeforeValidator(_whole_number(365))]
# An on/off setting: true or false (also yes, no, on, 1).
Switch = Annotated[bool, BeforeValidator(_switch)]
CaBundle = Annotated[Path, AfterValidator(_readable_file)]
HttpsUrl = Annotated[str, AfterValidator(_https_url)]


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AccountSettings(_Settings):
    """Everything one account needs; the pipeline syncs a list of these into one warehouse.

    The input keys are the accounts file's keys and the `microsoft` resource's fields.
    """

    name: Annotated[str, AfterValidator(_account_name)] = Field(
        description="a name for the account (letters, digits, . _ -), used in logs, in "
        "`sync365 consent --account` and in its default token cache file name"
    )
    kind: Annotated[AccountKind, BeforeValidator(_one_of(get_args(AccountKind)))] = "partner"
    tenant_id: str = Field(description="the partner's own tenant id")
    client_id: Annotated[str, AfterValidator(_client_id)] = Field(
        description="the application (client) id of the partner's app"
    )
    client_secret: Secret = Field(description="a client secret value of that app")
    refresh_token: Secret | None = None
    token_cache_path: Path = Field(validation_alias="token_cache")
    cloud: Annotated[CloudName, BeforeValidator(_one_of(tuple(CLOUDS)))] = "global"
    authority_host: HttpsUrl | None = None
    graph_url: HttpsUrl | None = None
    partner_center_url: HttpsUrl | None = None
    ca_bundle: CaBundle | None = None
    max_workers: Workers = 16
    chunk_size: ChunkSize = DEFAULT_CHUNK_SIZE
    response_deadline_s: Seconds = DEFAULT_RESPONSE_DEADLINE_S
    partner_center_rate: PerMinute = DEFAULT_PARTNER_CENTER_RATE
    # Grant the app's CPV consent in a customer whose token request was refused for want of it
    # (AADSTS65001, AADSTS90099), once per tenant per run.
    auto_consent: Switch = True
    # Read who holds each licence (`user_licenses`): personal data, so it can be turned off.
    users: Switch = True

    @property
    def credentials(self) -> PartnerCredentials:
        return PartnerCredentials(
            client_id=self.client_id,
            client_secret=self.client_secret,
            partner_tenant_id=self.tenant_id,
            refresh_token=self.refresh_token,
        )

    @property
    def endpoints(self) -> Endpoints:
        """The cloud's endpoints, explicit URLs (the simulator, a proxy) taking precedence."""
        urls = {key: url for key in _URL_KEYS if (url := getattr(self, key)) is not None}
        return replace(CLOUDS[self.cloud], **urls)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AccountSettings:
        """The single account of the `SYNC365_*` variables (an accounts file is not read)."""
        env = os.environ if environ is None else environ
        (account,) = load_accounts({k: v for k, v in env.items() if k != "SYNC365_CONFIG"})
        return account


class RunSettings(_Settings):
    """What one run shares: the warehouse, its lock wait, and what applies to every account."""

    config_file: Path | None = None
    duckdb_path: Path = DATA_DIR / "sync365.duckdb"
    lock_timeout_s: Seconds = DEFAULT_LOCK_TIMEOUT_S
    max_workers: Workers = 16
    chunk_size: ChunkSize = DEFAULT_CHUNK_SIZE
    response_deadline_s: Seconds = DEFAULT_RESPONSE_DEADLINE_S
    partner_center_rate: PerMinute = DEFAULT_PARTNER_CENTER_RATE
    auto_consent: Switch = True
    users: Switch = True
    ca_bundle: CaBundle | None = None
    webhook_url: Secret | None = None
    min_reached_share: Share = DEFAULT_MIN_REACHED_SHARE
    max_facts_age_days: Days = DEFAULT_MAX_FACTS_AGE_DAYS


# --- where each setting is read ----------------------------------------------------------------

# Every setting by its key (the accounts file's key and the resource field), with its variable.
ENVIRONMENT: dict[str, str] = {
    # the run
    "config_file": "SYNC365_CONFIG",
    "duckdb_path": "SYNC365_DUCKDB_PATH",
    "lock_timeout_s": "SYNC365_LOCK_TIMEOUT",
    "max_workers": "SYNC365_MAX_WORKERS",
    "chunk_size": "SYNC365_CHUNK_SIZE",
    "response_deadline_s": "SYNC365_RESPONSE_DEADLINE",
    "partner_center_rate": "SYNC365_PARTNER_CENTER_RATE",
    "auto_consent": "SYNC365_AUTO_CONSENT",
    "users": "SYNC365_USERS",
    "ca_bundle": "SYNC365_CA_BUNDLE",
    "webhook_url": "SYNC365_WEBHOOK_URL",
    "min_reached_share": "SYNC365_MIN_REACHED_SHARE",
    "max_facts_age_days": "SYNC365_MAX_FACTS_AGE_DAYS",
    # the single account (an accounts file replaces these)
    "tenant_id": "SYNC365_PARTNER_TENANT_ID",
    "client_id": "SYNC365_CLIENT_ID",
    "client_secret": "SYNC365_CLIENT_SECRET",
    "refresh_token": "SYNC365_REFRESH_TOKEN",
    "token_cache": "SYNC365_TOKEN_CACHE",
    "cloud": "SYNC365_CLOUD",
    "authority_host": "SYNC365_AUTHORITY_HOST",
    "graph_url": "SYNC365_GRAPH_URL",
    "partner_center_url": "SYNC365_PARTNER_CENTER_URL",
}
_RUN_KEYS = tuple(RunSettings.model_fields)
_APPLIED_TO_ACCOUNTS = (
    "max_workers",
    "chunk_size",
    "ca_bundle",
    "response_deadline_s",
    "partner_center_rate",
    "auto_consent",
    "users",
)
_SINGLE_ACCOUNT_KEYS = tuple(key for key in ENVIRONMENT if key not in _RUN_KEYS)
_FILE_RUN_KEYS = (
    "duckdb_path",
    "max_workers",
    "chunk_size",
    "response_deadline_s",
    "partner_center_rate",
    "auto_consent",
    "users",
    "min_reached_share",
    "max_facts_age_days",
)
_ENTRY_KEYS = (
    "name",
    "kind",
    "tenant_id",
    "client_id",
    "client_secret_env",
    "client_secret_file",
    "refresh_token_env",
    "token_cache",
    "cloud",
    *_URL_KEYS,
    "ca_bundle",
    "auto_consent",
    "users",
)


@dataclass(frozen=True)
class ResourceConfig:
    """What a Dagster resource's config sets, by settings key (None: not set there)."""

    resource: str
    values: Mapping[str, object] = field(default_factory=dict)


def load_accounts(
    environ: Mapping[str, str] | None = None, resource: ResourceConfig | None = None
) -> list[AccountSettings]:
    """The accounts to sync: the accounts file's, else the single one of `SYNC365_*` (and resource
    config), with the run's `max_workers` and `ca_bundle` applied. Raises `ConfigError` naming
    every problem in the run's and the accounts' settings at once."""
    sources = _Sources(os.environ if environ is None else environ, resource)
    file = _accounts_file(sources)
    run, run_values = _run_settings(sources, file)
    overrides = _run_overrides(run, run_values)
    if file is None:
        accounts = [account] if (account := _single_account(sources, overrides)) else []
    else:
        accounts = _file_accounts(sources, file, overrides)
    sources.raise_if_problems(file)
    return accounts


def load_run_settings(
    environ: Mapping[str, str] | None = None, resource: ResourceConfig | None = None
) -> RunSettings:
    """The run-level settings only: what the warehouse and the webhook need, no credentials."""
    sources = _Sources(os.environ if environ is None else environ, resource)
    file = _accounts_file(sources)
    run, _ = _run_settings(sources, file)
    sources.raise_if_problems(file)
    assert run is not None, "invalid run settings are problems raised above"
    return run


def accounts_from_file(
    path: Path, environ: Mapping[str, str] | None = None
) -> list[AccountSettings]:
    """The accounts of one accounts file, as `SYNC365_CONFIG={path}` would load them."""
    env = os.environ if environ is None else environ
    return load_accounts({**env, ENVIRONMENT["config_file"]: str(path)})


# --- reading the sources -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Value:
    """A setting's raw value and how an error names where it was set."""

    value: object
    where: str


_Layer = dict[str, _Value]
M = TypeVar("M", bound=_Settings)


def _layer(values: Mapping[str, object], where: Callable[[str], str]) -> _Layer:
    """The values a source sets; blank text counts as not set, so the next source applies."""
    layer = {}
    for key, value in values.items():
        text = value.strip() if isinstance(value, str) else value
        if text is not None and text != "":
            layer[key] = _Value(text, where(key))
    return layer


def _merge(*layers: _Layer) -> _Layer:
    """Lowest precedence first: a later layer's value wins."""
    merged: _Layer = {}
    for layer in layers:
        merged.update(layer)
    return merged


class _Sources:
    """The environment and resource config of one load, and every problem found so far."""

    def __init__(self, environ: Mapping[str, str], resource: ResourceConfig | None) -> None:
        self.environ = environ
        self.resource = resource or ResourceConfig("none")
        self.problems: list[str] = []

    def environment(self, keys: Sequence[str]) -> _Layer:
        return _layer({key: self.environ.get(ENVIRONMENT[key]) for key in keys}, ENVIRONMENT.get)

    def resource_config(self, keys: Sequence[str]) -> _Layer:
        values = {key: value for key, value in self.resource.values.items() if key in keys}
        return _layer(values, lambda key: f"{key} on the {self.resource.resource} resource")

    def validated(
        self,
        model: type[M],
        values: _Layer,
        where_unset: Callable[[str], str | None],
        context: str = "(configuration)",
    ) -> M | None:
        """The model, or None with every problem recorded under the name of where it was set.

        `where_unset` names where to set a missing key; None when its problem is recorded already.
        """
        try:
            return model.model_validate({key: item.value for key, item in values.items()})
        except ValidationError as exc:
            for error in exc.errors():
                key = str(error["loc"][0]) if error["loc"] else ""
                if key in values:
                    where: str | None = values[key].where
                elif key:
                    where = where_unset(key)
                else:
                    where = context
                if where is not None:
                    self.problems.append(_problem(model, key, where, error))
            return None

    def raise_if_problems(self, file: _AccountsFile | None) -> None:
        if not self.problems:
            return
        places = "the environment" if file is None else f"{file.path} or the environment it names"
        raise ConfigError(
            "sync365 is not configured:\n- "
            + "\n- ".join(self.problems)
            + f"\nFix them in {places} (see README, 'Configuration'), or run `sync365 demo` to "
            "try the pipeline against the built-in simulator."
        )


def _problem(model: type[_Settings], key: str, where: str, error: Any) -> str:
    """One line: the setting's name, then what is wrong (never the value of a secret)."""
    if error["type"] == "sync365":
        return f"{where} {error['msg']}."
    if error["type"] == "missing":
        fields = {info.validation_alias or name: info for name, info in model.model_fields.items()}
        meaning = fields[key].description if key in fields else None
        return f"{where} is not set" + (f": {meaning}." if meaning else ".")
    return f"{where}: {error['msg']}."


def _run_settings(
    sources: _Sources, file: _AccountsFile | None
) -> tuple[RunSettings | None, _Layer]:
    values = _merge(
        file.run_values() if file else {},
        sources.environment(_RUN_KEYS),
        sources.resource_config(_RUN_KEYS),
    )
    return sources.validated(RunSettings, values, ENVIRONMENT.get), values


def _run_overrides(run: RunSettings | None, values: _Layer) -> _Layer:
    """The run's `max_workers` and `ca_bundle`, where set, for every account."""
    if run is None:
        return {}  # their problems are recorded; the accounts are still checked
    return {
        key: _Value(getattr(run, key), values[key].where)
        for key in _APPLIED_TO_ACCOUNTS
        if key in values
    }


def _single_account(sources: _Sources, overrides: _Layer) -> AccountSettings | None:
    defaults = {"name": "default", "token_cache": DATA_DIR / "token_cache.json"}
    values = _merge(
        _layer(defaults, lambda key: key),
        sources.environment(_SINGLE_ACCOUNT_KEYS),
        sources.resource_config(_SINGLE_ACCOUNT_KEYS),
        overrides,
    )
    return sources.validated(AccountSettings, values, ENVIRONMENT.get)


# --- the accounts file -------------------------------------------------------------------------


@dataclass(frozen=True)
class _AccountsFile:
    """The parsed TOML of an accounts file; its keys are checked, its values validated later."""

    path: Path
    data: Mapping[str, Any]

    def run_values(self) -> _Layer:
        return _layer({key: self.data.get(key) for key in _FILE_RUN_KEYS}, lambda key: key)

    def entries(self, problems: list[str]) -> list[tuple[str, Mapping[str, Any]]]:
        """Each `[[accounts]]` table with its place (`accounts.0`); unknown keys are problems."""
        for key in self.data:
            if key not in (*_FILE_RUN_KEYS, "accounts"):
                problems.append(_unknown(key, (*_FILE_RUN_KEYS, "accounts")))
        tables = self.data.get("accounts")
        if not isinstance(tables, list) or not tables:
            problems.append("accounts is not set: list each account as an [[accounts]] table.")
            return []
        entries = []
        for index, entry in enumerate(tables):
            place = f"accounts.{index}"
            if not isinstance(entry, dict):
                problems.append(f"{place} must be a table ([[accounts]]), not {entry!r}.")
                continue
            problems.extend(
                _unknown(f"{place}.{key}", _ENTRY_KEYS) for key in entry if key not in _ENTRY_KEYS
            )
            entries.append((place, {key: entry[key] for key in entry if key in _ENTRY_KEYS}))
        return entries


def _unknown(where: str, known: Sequence[str]) -> str:
    return f"{where} is not a known key (a typo?); the keys are: {', '.join(known)}."


def _accounts_file(sources: _Sources) -> _AccountsFile | None:
    """The accounts file named by resource config or `SYNC365_CONFIG`; unreadable: ConfigError."""
    keys = ("config_file",)
    named = _merge(sources.environment(keys), sources.resource_config(keys)).get("config_file")
    if named is None:
        return None
    path = Path(str(named.value))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{named.where} names {path}, which does not exist.") from None
    except OSError as exc:
        raise ConfigError(f"{named.where} names {path}, which cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return _AccountsFile(path, data)


def _file_accounts(
    sources: _Sources, file: _AccountsFile, overrides: _Layer
) -> list[AccountSettings]:
    # An entry's own value of a run-wide key (ca_bundle, auto_consent, users) is a file value: it
    # beats the file's top level, and the environment and resource config beat it.
    outer = _merge(
        sources.environment(_APPLIED_TO_ACCOUNTS), sources.resource_config(_APPLIED_TO_ACCOUNTS)
    )
    accounts = []
    for place, entry in file.entries(sources.problems):
        values, where_unset = _entry_values(place, entry, sources.environ, sources.problems)
        default_cache = DATA_DIR / f"token_cache-{entry.get('name', '')}.json"
        applied = {
            key: value for key, value in overrides.items() if key in outer or key not in values
        }
        values = _merge(_layer({"token_cache": default_cache}, lambda key: key), values, applied)
        if account := sources.validated(AccountSettings, values, where_unset, place):
            accounts.append(account)
    for attribute in ("name", "tenant_id"):
        seen = [getattr(account, attribute).lower() for account in accounts]
        if duplicates := sorted({value for value in seen if seen.count(value) > 1}):
            sources.problems.append(f"accounts share a {attribute}: {', '.join(duplicates)}.")
    return accounts


def _entry_values(
    place: str, entry: Mapping[str, Any], environ: Mapping[str, str], problems: list[str]
) -> tuple[_Layer, Callable[[str], str | None]]:
    """An entry's values, its secrets read from where it names them, and where to set a missing
    key (None for the client secret when its problem is recorded here)."""
    values = _layer(
        {key: value for key, value in entry.items() if not key.endswith(("_env", "_file"))},
        lambda key: f"{place}.{key}",
    )
    secret_env, secret_file = entry.get("client_secret_env"), entry.get("client_secret_file")
    secret_where: str | None = None
    if (secret_env is None) == (secret_file is None):
        problems.append(f"{place}: give exactly one of client_secret_env or client_secret_file.")
    elif secret_env is not None:
        secret_where = f"{place}.client_secret_env: environment variable {secret_env}"
        values |= _layer({"client_secret": environ.get(str(secret_env))}, lambda _: secret_where)
    else:
        values |= _secret_from_file(place, Path(str(secret_file)), problems)
    if (token_env := entry.get("refresh_token_env")) is not None:
        if entry.get("kind") == "direct":
            problems.append(
                f"{place}.refresh_token_env: a direct tenant signs in with client credentials, "
                "so it has no refresh token: remove the key."
            )
        values |= _layer(
            {"refresh_token": environ.get(str(token_env))},
            lambda _: f"{place}.refresh_token_env: environment variable {token_env}",
        )

    def where_unset(key: str) -> str | None:
        return secret_where if key == "client_secret" else f"{place}.{key}"

    return values, where_unset


def _secret_from_file(place: str, path: Path, problems: list[str]) -> _Layer:
    where = f"{place}.client_secret_file"
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.append(f"{where}: cannot read {path} ({exc.strerror}).")
        return {}
    if not secret:
        problems.append(f"{where}: {path} is empty.")
    return _layer({"client_secret": secret}, lambda _: where)
