"""The readers of the billing report (`sync365 report`): each customer's paid seats, SKUs,
changes since a day and trend, all from the analyst views and macros."""

from __future__ import annotations

from datetime import date

import pandas as pd

from sync365_pipeline.warehouse.file import WarehouseFile


class BillingReaders(WarehouseFile):
    """Each reader returns one frame for every active customer, keyed by (partner_tenant_id,
    tenant_id), so the report groups them."""

    def customer_overview(self) -> pd.DataFrame:
        """One row per active customer: its access (tenant_health), its current paid seats
        bought, used, unused and assigned beyond what is bought (each SKU on its own: one SKU's
        spare seats do not cover another's overuse), and its licensed users as of its newest
        users read (licensed_users_per_read: 0 if that read found none, NULL if never read)."""
        return self._read(
            """
            WITH seats AS (
                SELECT
                    f.partner_tenant_id,
                    f.tenant_id,
                    sum(f.enabled_units) AS paid_units,
                    sum(f.consumed_units) AS used_units,
                    sum(greatest(f.available_units, 0)) AS unused_paid_units,
                    sum(greatest(-f.available_units, 0)) AS over_assigned_units
                FROM current_license_facts AS f
                JOIN license_classes AS k USING (partner_tenant_id, tenant_id, sku_id)
                WHERE k.sku_class = 'paid'
                GROUP BY ALL
            ),
            users AS (
                SELECT
                    partner_tenant_id,
                    tenant_id,
                    arg_max(licensed_users, snapshot_date) AS licensed_users
                FROM licensed_users_per_read
                GROUP BY ALL
            )
            SELECT
                h.partner_tenant_id,
                h.tenant_id,
                coalesce(h.display_name, h.tenant_id) AS customer,
                coalesce(h.status, 'never_synced') AS status,
                h.status_since,
                h.facts_as_of,
                h.is_stale,
                CAST(coalesce(s.paid_units, 0) AS BIGINT) AS paid_units,
                CAST(coalesce(s.used_units, 0) AS BIGINT) AS used_units,
                CAST(coalesce(s.unused_paid_units, 0) AS BIGINT) AS unused_paid_units,
                CAST(coalesce(s.over_assigned_units, 0) AS BIGINT) AS over_assigned_units,
                u.licensed_users
            FROM tenant_health AS h
            LEFT JOIN seats AS s USING (partner_tenant_id, tenant_id)
            LEFT JOIN users AS u USING (partner_tenant_id, tenant_id)
            WHERE h.active
            ORDER BY customer, h.tenant_id, h.partner_tenant_id
            """
        )

    def current_skus(self) -> pd.DataFrame:
        """Every current SKU of every customer with its class and seats, largest first."""
        return self._read(
            """
            SELECT
                f.partner_tenant_id, f.tenant_id,
                coalesce(f.product_name, f.sku_part_number, f.sku_id) AS product,
                k.sku_class, f.capability_status, f.enabled_units, f.consumed_units,
                greatest(f.available_units, 0) AS unused_units
            FROM current_license_facts AS f
            JOIN license_classes AS k USING (partner_tenant_id, tenant_id, sku_id)
            ORDER BY f.partner_tenant_id, f.tenant_id, k.sku_class, f.enabled_units DESC, product
            """
        )

    def changes_since(self, since: date) -> pd.DataFrame:
        """`license_changes_since(since)`: per customer and paid SKU (`is_paid_sku`, as in
        `paid_trend` and monthly_customer_summary), since that day, so the report leaves free,
        viral and trial SKUs out as it says."""
        return self._read(
            """
            SELECT
                f.partner_tenant_id, f.tenant_id,
                coalesce(f.product_name, f.sku_part_number, f.sku_id) AS product, f.change,
                f.capability_status_before, f.capability_status_after,
                f.enabled_units_before, f.enabled_units_after, f.enabled_units_change,
                f.consumed_units_before, f.consumed_units_after, f.consumed_units_change,
                f.from_snapshot_date, f.to_snapshot_date
            FROM license_changes_since($since) AS f
            LEFT JOIN license_classes AS k USING (partner_tenant_id, tenant_id, sku_id)
            WHERE is_paid_sku(k.sku_class, f.sku_id, f.sku_part_number)
            ORDER BY ALL
            """,
            {"since": since},
        )

    def paid_trend(self, since: date) -> pd.DataFrame:
        """Paid seats bought and used per customer and snapshot, from its snapshot as of `since`
        (the changes' baseline) on; paid by `is_paid_sku` (license_classes' class now, else not
        free or viral by sku_classes)."""
        return self._read(
            """
            SELECT
                f.partner_tenant_id,
                f.tenant_id,
                f.snapshot_date,
                CAST(sum(f.enabled_units) AS BIGINT) AS bought,
                CAST(sum(f.consumed_units) AS BIGINT) AS used
            FROM license_facts AS f
            LEFT JOIN license_classes AS k USING (partner_tenant_id, tenant_id, sku_id)
            WHERE is_paid_sku(k.sku_class, f.sku_id, f.sku_part_number)
                AND f.snapshot_date >= coalesce(
                    (
                        SELECT max(s.snapshot_date) FROM license_snapshots AS s
                        WHERE s.partner_tenant_id = f.partner_tenant_id
                            AND s.tenant_id = f.tenant_id AND s.snapshot_date <= $since
                    ),
                    DATE '0001-01-01'
                )
            GROUP BY ALL
            ORDER BY ALL
            """,
            {"since": since},
        )
