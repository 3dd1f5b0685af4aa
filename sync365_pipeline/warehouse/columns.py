"""The warehouse tables' column lists, in table order.

The normalizer makes license-fact rows in this order and customer frames with these columns,
and the writes expect them.
"""

from __future__ import annotations

CUSTOMER_COLUMNS = (
    "partner_tenant_id",
    "tenant_id",
    "display_name",
    "default_domain",
    "relationship",
    "gdap_status",
    "gdap_end_date",
    "gdap_relationship_ids",
    "gdap_auto_extend",
)
UNIT_COLUMNS = (
    "enabled_units",
    "suspended_units",
    "warning_units",
    "locked_out_units",
    "consumed_units",
    "available_units",
)
LICENSE_FACT_COLUMNS = (
    "snapshot_date",
    "partner_tenant_id",
    "tenant_id",
    "sku_id",
    "sku_part_number",
    "product_name",
    "product_name_source",
    "capability_status",
    *UNIT_COLUMNS,
    "billing_accounts",
    "source",
    "synced_at",
)
