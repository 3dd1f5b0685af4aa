"""Dagster resources: the Microsoft cloud and the warehouse.

Unset fields fall back to the `SYNC365_*` environment variables, read at execution time, so no
secret is ever part of a definition snapshot or the run config. If you set a secret through
resource config, use `dg.EnvVar("NAME")`, never a literal.
"""

from __future__ import annotations

import logging
import os

import dagster as dg

from sync365_pipeline.core.settings import (
    ConfigError,
    Settings,
    load_accounts,
)
from sync365_pipeline.licensing.notify import WEBHOOK_URL_ENV, WebhookNotifier
from sync365_pipeline.warehouse import Warehouse

_FIELD_TO_ENV = {
    "config_file": "SYNC365_CONFIG",
    "cloud": "SYNC365_CLOUD",
    "client_id": "SYNC365_CLIENT_ID",
    "client_secret": "SYNC365_CLIENT_SECRET",
    "partner_tenant_id": "SYNC365_PARTNER_TENANT_ID",
    "refresh_token": "SYNC365_REFRESH_TOKEN",
    "token_cache": "SYNC365_TOKEN_CACHE",
    "authority_host": "SYNC365_AUTHORITY_HOST",
    "graph_url": "SYNC365_GRAPH_URL",
    "partner_center_url": "SYNC365_PARTNER_CENTER_URL",
    "ca_bundle": "SYNC365_CA_BUNDLE",
    "max_workers": "SYNC365_MAX_WORKERS",
}


class MicrosoftCloudResource(dg.ConfigurableResource):
    """The accounts to sync and Microsoft's endpoints (Partner Center, Graph, identity).

    `config_file` (or `SYNC365_CONFIG`) names an accounts file with several partner accounts and
    direct tenants; otherwise the fields below (or `SYNC365_*`) describe one partner account.
    """

    config_file: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    partner_tenant_id: str | None = None
    refresh_token: str | None = None
    token_cache: str | None = None
    cloud: str | None = None
    authority_host: str | None = None
    graph_url: str | None = None
    partner_center_url: str | None = None
    ca_bundle: str | None = None
    max_workers: int | None = None

    def accounts(self) -> list[Settings]:
        overrides = {
            env_name: str(value)
            for field_name, env_name in _FIELD_TO_ENV.items()
            if (value := getattr(self, field_name)) is not None
        }
        try:
            return load_accounts({**os.environ, **overrides})
        except ConfigError as exc:
            # A configuration problem is permanent: fail with its message, never retry.
            raise dg.Failure(description=str(exc), allow_retries=False) from None


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (`SYNC365_DUCKDB_PATH` unless set here), how long a write waits
    for a lock held by another process (`SYNC365_LOCK_TIMEOUT`, seconds), and the webhook its
    consent flags are posted to (`SYNC365_WEBHOOK_URL` unless set here; the URL holds a secret,
    so set it with `dg.EnvVar`)."""

    duckdb_path: str | None = None
    webhook_url: str | None = None
    lock_timeout_s: float | None = None

    def notifier(self, logger: logging.Logger) -> WebhookNotifier | None:
        """The consent-flag webhook, or None when none is configured."""
        url = self.webhook_url or os.environ.get(WEBHOOK_URL_ENV, "").strip()
        return WebhookNotifier(url, logger=logger) if url else None

    def open(self) -> Warehouse:
        # No migrate() here: the warehouse migrates on its first write, so a sensor tick that
        # only reads never writes the file (or waits for a sync's lock).
        overrides = {
            name: str(value)
            for name, value in (
                ("SYNC365_DUCKDB_PATH", self.duckdb_path),
                ("SYNC365_LOCK_TIMEOUT", self.lock_timeout_s),
            )
            if value is not None
        }
        try:
            return Warehouse.from_env({**os.environ, **overrides})
        except ConfigError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
