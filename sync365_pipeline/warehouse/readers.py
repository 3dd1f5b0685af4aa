"""The readers of `Warehouse`: what to sync, statuses and health, facts for people to look at."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from sync365_pipeline.core.clock import utc_naive
from sync365_pipeline.warehouse.file import WarehouseFile
from sync365_pipeline.warehouse.rows import UserDeltaLink

OF_PARTNER = "($partner IS NULL OR partner_tenant_id = $partner)"


class Readers(WarehouseFile):
    """Each reader opens the file read-only; one that takes `partner_tenant_id` reads that
    partner's rows, or every partner's for None."""

    def active_tenants(self, partner_tenant_id: str | None = None) -> list[str]:
        """Tenant ids to sync: customers currently active (of one partner, or of all)."""
        frame = self._read_of_partner(
            "SELECT tenant_id FROM customers WHERE active AND {of_partner} ORDER BY tenant_id",
            partner_tenant_id,
        )
        return frame["tenant_id"].tolist()

    def active_customers(self) -> set[tuple[str, str]]:
        """(partner_tenant_id, tenant_id) of every active customer: a tenant that two partners
        reach is two customers."""
        frame = self._read("SELECT partner_tenant_id, tenant_id FROM customers WHERE active")
        return set(frame.itertuples(index=False, name=None))

    def customer_routes(self, partner_tenant_id: str) -> pd.DataFrame:
        """How one partner reaches each of its customers, as discovery last recorded it: the
        relationship routes, the ids of the active GDAP relationships, and the chosen
        relationship's end and auto-extend (what the fetch's access audit and fallback need)."""
        return self._read(
            "SELECT tenant_id, coalesce(relationship, '') AS relationship, "
            "coalesce(gdap_relationship_ids, []) AS gdap_relationship_ids, gdap_end_date, "
            "gdap_auto_extend FROM customers WHERE partner_tenant_id = ? ORDER BY tenant_id",
            [partner_tenant_id],
        )

    def tenants_with_dataset_code(
        self, partner_tenant_id: str, dataset: str, code: str, *, since: datetime
    ) -> set[str]:
        """The partner's tenants (lower case) whose attempt at `dataset` since `since` (UTC)
        recorded `code` in `dataset_status` (e.g. sign-in activity refused)."""
        frame = self._read(
            "SELECT DISTINCT lower(tenant_id) AS tenant_id FROM dataset_status "
            "WHERE lower(partner_tenant_id) = lower(?) AND dataset = ? AND error_code = ? "
            "AND checked_at >= ?",
            [partner_tenant_id, dataset, code, utc_naive(since)],
        )
        return set(frame["tenant_id"])

    def user_delta_links(self, partner_tenant_id: str) -> list[UserDeltaLink]:
        """The partner's customers' users delta links, each with a users slice to continue
        (a link without one would apply changes to nothing)."""
        frame = self._read(
            "SELECT l.* FROM user_delta_links AS l SEMI JOIN current_dataset_slices AS c "
            "ON c.dataset = 'user_licenses' AND c.partner_tenant_id = l.partner_tenant_id "
            "AND c.tenant_id = l.tenant_id "
            "WHERE lower(l.partner_tenant_id) = lower(?) ORDER BY l.tenant_id",
            [partner_tenant_id],
        )
        return [
            UserDeltaLink(
                partner_tenant_id=row.partner_tenant_id,
                tenant_id=row.tenant_id,
                delta_link=row.delta_link,
                obtained_at=row.obtained_at.to_pydatetime().replace(tzinfo=UTC),
                full_read_at=row.full_read_at.to_pydatetime().replace(tzinfo=UTC),
            )
            for row in frame.itertuples(index=False)
        ]

    def tenants_with_users_at_most(self, partner_tenant_id: str, users: int) -> set[str]:
        """The partner's tenants (lower case) whose latest users slice holds `users` users at
        most (an empty slice included)."""
        frame = self._read(
            "SELECT lower(s.tenant_id) AS tenant_id FROM current_dataset_slices AS s "
            "LEFT JOIN current_user_licenses AS u "
            "ON u.partner_tenant_id = s.partner_tenant_id AND u.tenant_id = s.tenant_id "
            "WHERE s.dataset = 'user_licenses' AND lower(s.partner_tenant_id) = lower(?) "
            "GROUP BY ALL HAVING count(DISTINCT u.user_id) <= ?",
            [partner_tenant_id, users],
        )
        return set(frame["tenant_id"])

    def latest_tenant_statuses(self, partner_tenant_id: str | None = None) -> pd.DataFrame:
        """The newest status row of every (partner, tenant) ever checked."""
        return self._read_of_partner(
            "SELECT * FROM latest_tenant_status WHERE {of_partner} "
            "ORDER BY tenant_id, partner_tenant_id",
            partner_tenant_id,
        )

    def tenant_health(self, partner_tenant_id: str | None = None) -> pd.DataFrame:
        return self._read_of_partner(
            "SELECT * FROM tenant_health WHERE {of_partner} "
            "ORDER BY active DESC, status, tenant_id, partner_tenant_id",
            partner_tenant_id,
        )

    def latest_partner_statuses(self) -> pd.DataFrame:
        """The newest partner-level sign-in outcome of every partner."""
        return self._read(
            "SELECT * FROM partner_status QUALIFY row_number() OVER "
            "(PARTITION BY partner_tenant_id ORDER BY checked_at DESC) = 1 "
            "ORDER BY partner_tenant_id"
        )

    def status_marker(self) -> str | None:
        """The newest tenant or partner status time as ISO text (a sensor cursor), or None."""
        frame = self._read(
            "SELECT max(checked_at) AS newest FROM "
            "(SELECT checked_at FROM tenant_status UNION ALL SELECT checked_at FROM partner_status)"
        )
        newest = frame["newest"].iloc[0]
        return None if pd.isna(newest) else pd.Timestamp(newest).isoformat()

    def written_since(self, moment: datetime) -> dict[str, int]:
        """What was written at or after `moment`: customer rows seen, tenant and partner status
        rows, and license fact slices; so a failed or stopped sync can say what it left."""
        if not self.path.exists():
            return dict.fromkeys(("customers", "tenant_statuses", "partner_statuses", "slices"), 0)
        since = utc_naive(moment)
        frame = self._read(
            "SELECT"
            " (SELECT count(*) FROM customers WHERE last_seen >= $since) AS customers,"
            " (SELECT count(*) FROM tenant_status WHERE checked_at >= $since) AS tenant_statuses,"
            " (SELECT count(*) FROM partner_status WHERE checked_at >= $since)"
            " AS partner_statuses,"
            " (SELECT count(*) FROM license_snapshots WHERE written_at >= $since) AS slices",
            {"since": since},
        )
        return {name: int(value) for name, value in frame.iloc[0].items()}

    def status_summary(self, partner_tenant_id: str | None = None) -> pd.DataFrame:
        """Active tenants per latest status, with how many of them show stale facts."""
        return self._read_of_partner(
            "SELECT partner_tenant_id, coalesce(status, 'never_synced') AS status, "
            "count(*) AS tenants, count(*) FILTER (WHERE is_stale) AS stale_tenants, "
            "min(status_since) AS oldest_since FROM tenant_health "
            "WHERE active AND {of_partner} "
            "GROUP BY ALL ORDER BY partner_tenant_id, tenants DESC, status",
            partner_tenant_id,
        )

    def latest_customer_access(self) -> pd.DataFrame:
        """The newest `customer_access` row of every active customer (partner, tenant), with its
        name, its latest status and code, where its latest snapshot's facts came from
        (`facts_source`: 'graph' or 'partner_center', NULL without facts) and whether that
        attempt wrote them (`facts_from_latest_attempt`, the stale rule's test). Empty for a file
        from before the table existed (an analyst copy not yet republished)."""
        with self._open(read_only=True) as con:
            if not con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'customer_access'"
            ).fetchone()[0]:
                return pd.DataFrame()
            return con.execute(
                """
                WITH access AS (
                    SELECT * FROM customer_access
                    QUALIFY row_number() OVER (
                        PARTITION BY partner_tenant_id, tenant_id ORDER BY checked_at DESC
                    ) = 1
                ),
                latest_slice AS (
                    SELECT partner_tenant_id, tenant_id, snapshot_date, written_at
                    FROM license_snapshots
                    QUALIFY row_number() OVER (
                        PARTITION BY partner_tenant_id, tenant_id ORDER BY snapshot_date DESC
                    ) = 1
                ),
                slice_source AS (  -- one slice's facts all come from one source
                    SELECT f.partner_tenant_id, f.tenant_id, min(f.source) AS facts_source
                    FROM license_facts AS f JOIN latest_slice AS s USING
                        (partner_tenant_id, tenant_id, snapshot_date)
                    GROUP BY ALL
                )
                SELECT a.partner_tenant_id, a.tenant_id,
                       coalesce(c.display_name, a.tenant_id) AS customer, a.checked_at,
                       a.gdap_roles, a.can_read_licenses, a.cpv_consent, a.gdap_end_date,
                       a.auto_extend, a.message, l.status, l.error_code, src.facts_source,
                       coalesce(s.written_at >= l.checked_at, false) AS facts_from_latest_attempt
                FROM access AS a
                JOIN customers AS c USING (partner_tenant_id, tenant_id)
                LEFT JOIN latest_tenant_status AS l USING (partner_tenant_id, tenant_id)
                LEFT JOIN latest_slice AS s USING (partner_tenant_id, tenant_id)
                LEFT JOIN slice_source AS src USING (partner_tenant_id, tenant_id)
                WHERE c.active
                ORDER BY customer, a.tenant_id, a.partner_tenant_id
                """
            ).df()

    def licenses_per_customer(self) -> pd.DataFrame:
        """One line per customer (as each partner reaches it) from its current facts: SKUs,
        units, unused and assigned beyond those bought (each per SKU, so one SKU's spare seats
        never hide another's overuse), staleness."""
        return self._read(
            "SELECT coalesce(c.display_name, f.tenant_id) AS customer, f.tenant_id, "
            "f.partner_tenant_id, "
            "strftime(max(f.snapshot_date), '%Y-%m-%d') AS snapshot_date, count(*) AS skus, "
            "sum(f.enabled_units) AS enabled_units, sum(f.consumed_units) AS consumed_units, "
            "sum(greatest(f.available_units, 0)) AS unused_units, "
            "sum(greatest(-f.available_units, 0)) AS over_assigned_units, "
            "bool_or(f.is_stale) AS is_stale "
            "FROM current_license_facts AS f LEFT JOIN customers AS c "
            "ON c.partner_tenant_id = f.partner_tenant_id AND c.tenant_id = f.tenant_id "
            "GROUP BY ALL ORDER BY customer, f.tenant_id, f.partner_tenant_id"
        )

    def renewal_actions(self, *, monthly_rollovers: bool = False) -> pd.DataFrame:
        """The `renewal_actions` rows, soonest first; monthly rollovers only when asked."""
        return self._read(
            "SELECT * FROM renewal_actions WHERE $monthly OR NOT is_monthly_rollover "
            "ORDER BY act_by, display_name, tenant_id, offer_name, subscription_id",
            {"monthly": monthly_rollovers},
        )

    def subscription_counts(self) -> dict[str, int]:
        """Current subscriptions (this partner's, and the tenants' whoever sold them) and
        renewal actions (monthly rollovers counted apart), and licensed users (each once)."""
        row = self._read(
            "SELECT (SELECT count(*) FROM current_subscriptions) AS subscriptions, "
            "(SELECT count(*) FROM current_tenant_subscriptions) AS tenant_subscriptions, "
            "(SELECT count(*) FILTER (NOT is_monthly_rollover) FROM renewal_actions) "
            "AS renewal_actions, "
            "(SELECT count(*) FILTER (is_monthly_rollover) FROM renewal_actions) "
            "AS monthly_rollovers, "
            "(SELECT count(DISTINCT (partner_tenant_id, tenant_id, user_id)) "
            "FROM current_user_licenses) AS licensed_users"
        ).iloc[0]
        return {column: int(value) for column, value in row.items()}

    def latest_license_changes(self, limit: int = 10) -> pd.DataFrame:
        """The newest `license_changes` rows (newest day first), with the customer's name: the
        change in enabled and consumed units per SKU."""
        return self._read(
            "SELECT strftime(l.snapshot_date, '%Y-%m-%d') AS day, "
            "coalesce(c.display_name, l.tenant_id) AS customer, l.sku_part_number AS sku, "
            "l.change, l.enabled_units_change AS enabled, l.consumed_units_change AS consumed "
            "FROM license_changes AS l LEFT JOIN customers AS c "
            "ON c.partner_tenant_id = l.partner_tenant_id AND c.tenant_id = l.tenant_id "
            "ORDER BY l.snapshot_date DESC, customer, l.sku_part_number LIMIT ?",
            [limit],
        )

    def current_facts_preview(self, limit: int = 20) -> pd.DataFrame:
        """The first rows of `current_license_facts`, each customer by name, for a look at the
        facts in the UI."""
        return self._read(
            "SELECT coalesce(c.display_name, f.tenant_id) AS customer, f.tenant_id, "
            "f.sku_part_number, f.product_name, f.capability_status, f.enabled_units, "
            "f.consumed_units, f.available_units, f.is_stale, f.source, f.partner_tenant_id "
            "FROM current_license_facts AS f LEFT JOIN customers AS c "
            "ON c.partner_tenant_id = f.partner_tenant_id AND c.tenant_id = f.tenant_id "
            "ORDER BY customer, f.tenant_id, f.sku_part_number, f.partner_tenant_id LIMIT ?",
            [limit],
        )

    def license_totals(self) -> dict[str, int]:
        """Units over every customer's current facts: licensed (enabled), consumed, and paid
        ones left unused (`unused_licenses`); the numbers Dagster plots run after run."""
        row = self._read(
            "SELECT (SELECT coalesce(sum(enabled_units), 0) FROM current_license_facts) "
            "AS licensed_units, "
            "(SELECT coalesce(sum(consumed_units), 0) FROM current_license_facts) "
            "AS consumed_units, "
            "(SELECT coalesce(sum(unused_units), 0) FROM unused_licenses) AS unused_paid_units"
        ).iloc[0]
        return {column: int(value) for column, value in row.items()}

    def raw_payloads_for_facts(
        self, partner_tenant_id: str, snapshot_date: date, *, sync_id: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Raw payloads of `snapshot_date` that one partner fetched, for the tenants whose latest
        attempt through that partner by that day gave facts (and, with `sync_id`, was made by
        that sync): an ok one (its payloads), or one where Graph failed and Partner Center
        answered (that attempt's Partner Center payload only: the fallback).

        Returns {tenant_id: {source: parsed JSON}} with source 'graph' and/or 'partner_center';
        other tenants are left out, so their earlier facts stay untouched.
        """
        frame = self._read(
            """
            WITH latest AS (
                SELECT partner_tenant_id, tenant_id, status, checked_at, sync_id
                FROM tenant_status
                WHERE partner_tenant_id = $1 AND CAST(checked_at AS DATE) <= $2
                QUALIFY row_number() OVER (
                    PARTITION BY partner_tenant_id, tenant_id ORDER BY checked_at DESC
                ) = 1
            )
            SELECT r.tenant_id, r.source, r.payload
            FROM raw_subscribed_skus AS r JOIN latest AS l
                ON l.partner_tenant_id = r.partner_tenant_id AND l.tenant_id = r.tenant_id
            WHERE r.partner_tenant_id = $1 AND r.snapshot_date = $2
                AND ($3 IS NULL OR l.sync_id = $3)
                AND (l.status = 'ok'
                     OR (r.source = 'partner_center' AND r.fetched_at = l.checked_at))
            ORDER BY r.tenant_id, r.source
            """,
            [partner_tenant_id, snapshot_date, sync_id],
        )
        payloads: dict[str, dict[str, Any]] = {}
        for tenant, source, payload in frame.itertuples(index=False):
            payloads.setdefault(tenant, {})[source] = json.loads(payload)
        return payloads

    def _read_of_partner(self, sql: str, partner_tenant_id: str | None) -> pd.DataFrame:
        """`sql` whose `{of_partner}` condition keeps one partner's rows, or all for None."""
        return self._read(sql.format(of_partner=OF_PARTNER), {"partner": partner_tenant_id})
