"""Dagster resources hand out ready clients: the accounts and a Microsoft client for each, the
warehouse, and the consent webhook.

Every field is optional: what a field leaves unset comes from the `SYNC365_*` environment, then
the accounts file, then the default (core/settings.py, README "Configuration"), read at execution
time, so no secret is ever part of a definition snapshot or the run config. If you set a secret
through resource config, use `dg.EnvVar("NAME")`, never a literal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from sync365_pipeline.core.settings import (
    AccountSettings,
    ConfigError,
    ResourceConfig,
    RunSettings,
    load_accounts,
    load_run_settings,
)
from sync365_pipeline.licensing.notify import WebhookNotifier
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.warehouse import Warehouse

T = TypeVar("T")


class MicrosoftCloudResource(dg.ConfigurableResource):
    """The accounts to sync, and a ready Microsoft client for each.

    `config_file` names an accounts file with several partner accounts and direct tenants;
    otherwise the account fields describe one partner account. `max_workers`, `chunk_size`,
    `ca_bundle`, `auto_consent` (grant a customer's missing CPV consent and retry it) and `users`
    (read who holds each licence) apply to every account in both modes.
    """

    config_file: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    token_cache: str | None = None
    cloud: str | None = None
    authority_host: str | None = None
    graph_url: str | None = None
    partner_center_url: str | None = None
    ca_bundle: str | None = None
    max_workers: int | None = None
    chunk_size: int | None = None
    response_deadline_s: float | None = None
    auto_consent: bool | None = None
    users: bool | None = None

    def accounts(self) -> list[AccountSettings]:
        return _configured(lambda: load_accounts(resource=_config(self, "microsoft")))

    def connect(self, account: AccountSettings, *, saves_tokens: bool = True) -> MicrosoftCloud:
        """The account's session, tokens and API clients. Use it as a context manager: leaving
        it saves the rotated refresh token (unless `saves_tokens` is False: a parallel step)."""
        return MicrosoftCloud.from_settings(account, saves_tokens=saves_tokens)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (`duckdb_path`), how long a write waits for a lock held by
    another process (`lock_timeout_s`, seconds), and the data-quality checks' thresholds
    (`min_reached_share`, `max_facts_age_days`)."""

    duckdb_path: str | None = None
    lock_timeout_s: float | None = None
    min_reached_share: float | None = None
    max_facts_age_days: int | None = None

    def settings(self) -> RunSettings:
        return _configured(lambda: load_run_settings(resource=_config(self, "warehouse")))

    def open(self) -> Warehouse:
        # No migrate() here: the warehouse migrates on its first write, so a sensor tick that
        # only reads never writes the file (or waits for a sync's lock).
        return Warehouse.from_settings(self.settings())


class WebhookResource(dg.ConfigurableResource):
    """The chat webhook consent flags are posted to (`url`). The URL holds a secret: set it
    with `dg.EnvVar`."""

    url: str | None = None

    def notifier(self, logger: logging.Logger) -> WebhookNotifier | None:
        """The webhook's notifier, or None when no webhook is configured."""
        config = ResourceConfig("webhook", {"webhook_url": self.url})
        url = _configured(lambda: load_run_settings(resource=config)).webhook_url
        return WebhookNotifier(url.reveal(), logger=logger) if url else None


def _config(resource: dg.ConfigurableResource, name: str) -> ResourceConfig:
    """A resource's fields are settings keys; None leaves a key to the next source."""
    return ResourceConfig(
        name, {key: getattr(resource, key) for key in type(resource).model_fields}
    )


def _configured(load: Callable[[], T]) -> T:
    try:
        return load()
    except ConfigError as exc:
        # A configuration problem is permanent: fail with its message, never retry.
        raise dg.Failure(description=str(exc), allow_retries=False) from None
