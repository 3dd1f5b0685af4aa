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
SUBSCRIPTION_COLUMNS = (
    "snapshot_date",
    "partner_tenant_id",
    "tenant_id",
    "subscription_id",
    "offer_id",
    "offer_name",
    "friendly_name",
    "sku_id",
    "quantity",
    "unit_type",
    "status",
    "billing_cycle",
    "term_duration",
    "commitment_end_date",
    "auto_renew",
    "is_trial",
    "cancellation_allowed_until",
    "creation_date",
    "effective_start_date",
    "synced_at",
)
TENANT_SUBSCRIPTION_COLUMNS = (
    "snapshot_date",
    "partner_tenant_id",
    "tenant_id",
    "commerce_subscription_id",
    "sku_id",
    "sku_part_number",
    "status",
    "total_licenses",
    "is_trial",
    "created",
    "next_lifecycle",
    "owner_tenant_id",
    "owner_type",
    "synced_at",
)
USER_LICENSE_COLUMNS = (
    "snapshot_date",
    "partner_tenant_id",
    "tenant_id",
    "user_id",
    "sku_id",
    "user_principal_name",
    "display_name",
    "account_enabled",
    "user_type",
    "assigned_by_group",
    "assignment_state",
    "assignment_error",
    "last_sign_in",
    "department",
    "office_location",
    "city",
    "synced_at",
)
# The datasets fetched per tenant beside its SKUs, each named as the table its rows land in and
# with its own status and slices (`dataset_status`, `dataset_snapshots`).
PARTNER_SUBSCRIPTIONS = "subscriptions"  # Partner Center: what the partner sells
TENANT_SUBSCRIPTIONS = "tenant_subscriptions"  # Graph: what the tenant holds, whoever sold it
USERS = "user_licenses"  # Graph: who holds each licence (personal data; setting `users`)
DATASETS = (PARTNER_SUBSCRIPTIONS, TENANT_SUBSCRIPTIONS, USERS)
DATASET_COLUMNS = {
    PARTNER_SUBSCRIPTIONS: SUBSCRIPTION_COLUMNS,
    TENANT_SUBSCRIPTIONS: TENANT_SUBSCRIPTION_COLUMNS,
    USERS: USER_LICENSE_COLUMNS,
}
