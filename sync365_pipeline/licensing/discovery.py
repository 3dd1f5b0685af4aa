"""Discovery: every customer tenant an account can reach, merged into `customers`; and, for a
partner, its app's client secrets (`app_credentials`), read with the same partner token."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.licensing.normalize import (
    MalformedPayload,
    app_credential_rows,
    customers_frame,
    direct_tenant_frame,
)
from sync365_pipeline.microsoft import MicrosoftCloud, MicrosoftError, PartnerAccessError
from sync365_pipeline.warehouse import AppCredentialRow, CustomerChanges, SkippedRecord, Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Discovery:
    customers: pd.DataFrame
    changes: CustomerChanges
    skipped: tuple[SkippedRecord, ...] = ()  # each list record that was not used, and why


def discover_customers(
    cloud: MicrosoftCloud, warehouse: Warehouse, settings: AccountSettings, seen_at: datetime
) -> Discovery:
    """Every tenant the account can reach, merged into `customers`.

    A partner: Partner Center customers merged with GDAP relationships and DAP contracts. A
    direct account: its own tenant. The records that could not be used are stored with the
    list (`skipped_customer_records`), not only logged. A partner's app secrets are read too
    (`record_app_credentials`), which never fails discovery.
    """
    if settings.kind == "direct":
        normalized = direct_tenant_frame(
            settings.tenant_id, cloud.graph.organization(settings.tenant_id)
        )
    else:
        normalized = customers_frame(
            settings.tenant_id,
            cloud.partner_center.customers(),
            cloud.graph.delegated_admin_relationships(),
            cloud.graph.contracts(),
        )
    for record in normalized.skipped:
        log.warning("Account %s: skipped a record: %s", settings.name, record.reason)
    changes = warehouse.upsert_customers(
        settings.tenant_id, normalized.frame, seen_at, normalized.skipped
    )
    if settings.kind == "partner":
        warehouse.record_app_credentials(app_credentials(cloud, settings, seen_at))
    return Discovery(customers=normalized.frame, changes=changes, skipped=normalized.skipped)


def app_credentials(
    cloud: MicrosoftCloud, settings: AccountSettings, checked_at: datetime
) -> list[AppCredentialRow]:
    """The partner app's client secrets, which one is in use, and when each ends.

    Reading them needs Application.Read.All, which a partner may not have granted: any failure
    is one row whose message says what Microsoft answered and what to do, never an exception,
    since the sync does not depend on it.
    """
    try:
        listed = cloud.graph.password_credentials(settings.client_id)
        rows, skipped = app_credential_rows(
            settings.tenant_id, checked_at, listed, settings.client_secret.reveal()[:3]
        )
    except PartnerAccessError:
        raise  # the account's sign-in itself failed: the sync cannot go on
    except Exception as exc:  # Microsoft's refusal, a bad record, or a bug: never the sync's end
        problem = str(exc) if isinstance(exc, (MicrosoftError, MalformedPayload)) else repr(exc)
        log.warning("Account %s: the app's client secrets are unknown: %s", settings.name, problem)
        return [AppCredentialRow(settings.tenant_id, checked_at, message=problem)]
    for record in skipped:
        log.warning("Account %s: skipped a client secret record: %s", settings.name, record.reason)
    return rows
