"""Discovery: every customer tenant an account can reach, merged into `customers`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.licensing.normalize import customers_frame, direct_tenant_frame
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.warehouse import CustomerChanges, SkippedRecord, Warehouse

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
    list (`skipped_customer_records`), not only logged.
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
    return Discovery(customers=normalized.frame, changes=changes, skipped=normalized.skipped)
