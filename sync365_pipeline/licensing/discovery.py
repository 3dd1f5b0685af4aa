"""Discovery: every customer tenant an account can reach, merged into `customers`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from sync365_pipeline.core.settings import AccountSettings
from sync365_pipeline.licensing.normalize import customers_frame, direct_tenant_frame
from sync365_pipeline.microsoft import MicrosoftCloud
from sync365_pipeline.warehouse import CustomerChanges, Warehouse


@dataclass(frozen=True)
class Discovery:
    customers: pd.DataFrame
    changes: CustomerChanges


def discover_customers(
    cloud: MicrosoftCloud, warehouse: Warehouse, settings: AccountSettings, seen_at: datetime
) -> Discovery:
    """Every tenant the account can reach, merged into `customers`.

    A partner: Partner Center customers merged with GDAP relationships and DAP contracts. A
    direct account: its own tenant.
    """
    if settings.kind == "direct":
        frame = direct_tenant_frame(
            settings.tenant_id, cloud.graph.organization(settings.tenant_id)
        )
    else:
        frame = customers_frame(
            settings.tenant_id,
            cloud.partner_center.customers(),
            cloud.graph.delegated_admin_relationships(),
            cloud.graph.contracts(),
        )
    changes = warehouse.upsert_customers(settings.tenant_id, frame, seen_at)
    return Discovery(customers=frame, changes=changes)
