"""Warehouse schema: numbered migrations recorded in `schema_version`, plus the analyst views.

Tables are only ever changed by appending a migration; views are recreated from `views.sql` and
every comment set again whenever a file's `schema_objects` digest differs from this release's, so
changing a view or a comment needs no migration, and a current file is left untouched (recreating
the views costs a write transaction and WAL on every step otherwise). All timestamps are UTC,
stored as naive TIMESTAMP. Unit counts are BIGINT exactly as Microsoft reports them.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

import duckdb

from sync365_pipeline.core.clock import utc_naive, utcnow
from sync365_pipeline.warehouse.comments import (
    DESCRIPTIONS,
    MACROS,
    SHARED_COLUMNS,
    apply_comments,
)
from sync365_pipeline.warehouse.connection import transaction

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE customers (
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            display_name VARCHAR,
            default_domain VARCHAR,
            relationship VARCHAR NOT NULL,
            gdap_status VARCHAR,
            gdap_end_date TIMESTAMP,
            first_seen TIMESTAMP NOT NULL,
            last_seen TIMESTAMP NOT NULL,
            active BOOLEAN NOT NULL,
            departed_at TIMESTAMP,
            PRIMARY KEY (partner_tenant_id, tenant_id)
        );
        CREATE TABLE license_facts (
            snapshot_date DATE NOT NULL,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            sku_id VARCHAR NOT NULL,
            sku_part_number VARCHAR NOT NULL,
            product_name VARCHAR NOT NULL,
            product_name_source VARCHAR NOT NULL,
            capability_status VARCHAR NOT NULL,
            enabled_units BIGINT NOT NULL CHECK (enabled_units >= 0),
            suspended_units BIGINT NOT NULL CHECK (suspended_units >= 0),
            warning_units BIGINT NOT NULL CHECK (warning_units >= 0),
            locked_out_units BIGINT NOT NULL CHECK (locked_out_units >= 0),
            consumed_units BIGINT NOT NULL CHECK (consumed_units >= 0),
            available_units BIGINT NOT NULL
                CHECK (available_units = enabled_units - consumed_units),
            billing_accounts INTEGER NOT NULL DEFAULT 1,
            synced_at TIMESTAMP NOT NULL,
            PRIMARY KEY (snapshot_date, tenant_id, sku_id)
        );
        -- One row per written (snapshot_date, tenant) slice, even an empty one: "this tenant had
        -- zero SKUs that day" must be distinguishable from "this tenant was not synced that day".
        CREATE TABLE license_snapshots (
            snapshot_date DATE NOT NULL,
            tenant_id VARCHAR NOT NULL,
            sku_count INTEGER NOT NULL,
            written_at TIMESTAMP NOT NULL,
            PRIMARY KEY (snapshot_date, tenant_id)
        );
        CREATE TABLE tenant_status (
            sync_id VARCHAR,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            checked_at TIMESTAMP NOT NULL,
            status VARCHAR NOT NULL,
            error_code VARCHAR,
            message VARCHAR
        );
        CREATE TABLE partner_status (
            sync_id VARCHAR,
            partner_tenant_id VARCHAR NOT NULL,
            checked_at TIMESTAMP NOT NULL,
            status VARCHAR NOT NULL,
            error_code VARCHAR,
            message VARCHAR,
            token_expires_at TIMESTAMP,
            account VARCHAR,
            mfa BOOLEAN
        );
        CREATE TABLE raw_subscribed_skus (
            snapshot_date DATE NOT NULL,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            source VARCHAR NOT NULL CHECK (source IN ('graph', 'partner_center')),
            fetched_at TIMESTAMP NOT NULL,
            payload VARCHAR NOT NULL,
            PRIMARY KEY (snapshot_date, tenant_id, source)
        );
        CREATE TABLE consent_flags (
            flag_id VARCHAR PRIMARY KEY,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR,
            status VARCHAR NOT NULL,
            error_code VARCHAR,
            message VARCHAR,
            raised_at TIMESTAMP NOT NULL,
            cleared_at TIMESTAMP
        );
        CREATE INDEX tenant_status_by_tenant ON tenant_status (tenant_id, checked_at);
        """,
    ),
    # Migration 1 once created a `sync_runs` table that nothing ever wrote; files made then have it.
    (2, "DROP TABLE IF EXISTS sync_runs;"),
    # The records of the customer, relationship and contract lists that discovery could not use:
    # one row per record per discovery (`seen_at` is that discovery's `customers.last_seen`).
    # Skipped SKU records are in `tenant_status` (code `SkippedRecords`), with their tenant.
    (
        3,
        """
        CREATE TABLE skipped_customer_records (
            partner_tenant_id VARCHAR NOT NULL,
            seen_at TIMESTAMP NOT NULL,
            list_name VARCHAR NOT NULL,
            list_index INTEGER NOT NULL,
            record_key VARCHAR,
            reason VARCHAR NOT NULL
        );
        """,
    ),
    # Keys include the partner: two partner accounts that reach the same customer (a merger) keep
    # their rows apart instead of overwriting each other. DuckDB cannot change a primary key in
    # place, so each table is rebuilt and its rows carried over. `license_facts` gains `source`
    # (where its counts came from; every earlier fact came from Graph). A slice in
    # `license_snapshots` had no partner: it takes the one of the facts it holds, else of its raw
    # payload, else of its tenant's latest status by then, else of its customer row.
    (
        4,
        """
        CREATE TABLE license_facts_keyed (
            snapshot_date DATE NOT NULL,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            sku_id VARCHAR NOT NULL,
            sku_part_number VARCHAR NOT NULL,
            product_name VARCHAR NOT NULL,
            product_name_source VARCHAR NOT NULL,
            capability_status VARCHAR NOT NULL,
            enabled_units BIGINT NOT NULL CHECK (enabled_units >= 0),
            suspended_units BIGINT NOT NULL CHECK (suspended_units >= 0),
            warning_units BIGINT NOT NULL CHECK (warning_units >= 0),
            locked_out_units BIGINT NOT NULL CHECK (locked_out_units >= 0),
            consumed_units BIGINT NOT NULL CHECK (consumed_units >= 0),
            available_units BIGINT NOT NULL
                CHECK (available_units = enabled_units - consumed_units),
            billing_accounts INTEGER NOT NULL DEFAULT 1,
            source VARCHAR NOT NULL DEFAULT 'graph' CHECK (source IN ('graph', 'partner_center')),
            synced_at TIMESTAMP NOT NULL,
            PRIMARY KEY (snapshot_date, partner_tenant_id, tenant_id, sku_id)
        );
        INSERT INTO license_facts_keyed BY NAME SELECT * FROM license_facts;

        CREATE TABLE license_snapshots_keyed (
            snapshot_date DATE NOT NULL,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            sku_count INTEGER NOT NULL,
            written_at TIMESTAMP NOT NULL,
            PRIMARY KEY (snapshot_date, partner_tenant_id, tenant_id)
        );
        INSERT INTO license_snapshots_keyed
        SELECT
            s.snapshot_date,
            coalesce(
                (SELECT min(f.partner_tenant_id) FROM license_facts AS f
                 WHERE f.snapshot_date = s.snapshot_date AND f.tenant_id = s.tenant_id),
                (SELECT min(r.partner_tenant_id) FROM raw_subscribed_skus AS r
                 WHERE r.snapshot_date = s.snapshot_date AND r.tenant_id = s.tenant_id),
                (SELECT t.partner_tenant_id FROM tenant_status AS t
                 WHERE t.tenant_id = s.tenant_id
                 ORDER BY t.checked_at <= s.written_at DESC, t.checked_at DESC LIMIT 1),
                (SELECT c.partner_tenant_id FROM customers AS c
                 WHERE c.tenant_id = s.tenant_id ORDER BY c.active DESC, c.last_seen DESC LIMIT 1)
            ),
            s.tenant_id,
            s.sku_count,
            s.written_at
        FROM license_snapshots AS s;

        CREATE TABLE raw_subscribed_skus_keyed (
            snapshot_date DATE NOT NULL,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            source VARCHAR NOT NULL CHECK (source IN ('graph', 'partner_center')),
            fetched_at TIMESTAMP NOT NULL,
            payload VARCHAR NOT NULL,
            PRIMARY KEY (snapshot_date, partner_tenant_id, tenant_id, source)
        );
        INSERT INTO raw_subscribed_skus_keyed BY NAME SELECT * FROM raw_subscribed_skus;

        DROP TABLE license_facts;
        DROP TABLE license_snapshots;
        DROP TABLE raw_subscribed_skus;
        ALTER TABLE license_facts_keyed RENAME TO license_facts;
        ALTER TABLE license_snapshots_keyed RENAME TO license_snapshots;
        ALTER TABLE raw_subscribed_skus_keyed RENAME TO raw_subscribed_skus;

        DROP INDEX tenant_status_by_tenant;
        CREATE INDEX tenant_status_by_customer
            ON tenant_status (partner_tenant_id, tenant_id, checked_at);
        """,
    ),
    # The access each customer gives: discovery keeps its active GDAP relationships (the access
    # audit reads their assignments) and whether the chosen one extends itself; each sync adds a
    # `customer_access` row per customer it attempted (roles, CPV consent, end of access).
    (
        5,
        """
        ALTER TABLE customers ADD COLUMN gdap_relationship_ids VARCHAR[];
        ALTER TABLE customers ADD COLUMN gdap_auto_extend BOOLEAN;
        CREATE TABLE customer_access (
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            checked_at TIMESTAMP NOT NULL,
            gdap_roles VARCHAR[],
            can_read_licenses BOOLEAN,
            cpv_consent VARCHAR NOT NULL CHECK (cpv_consent IN
                ('granted', 'already_granted', 'failed', 'not_needed', 'disabled')),
            gdap_end_date TIMESTAMP,
            auto_extend BOOLEAN,
            message VARCHAR,
            sync_id VARCHAR,
            PRIMARY KEY (partner_tenant_id, tenant_id, checked_at)
        );
        """,
    ),
    # Flags of three kinds: lost access (every earlier flag), a GDAP relationship and the app's
    # client secret ending soon (`ends_at`: when). DuckDB cannot add a column with a CHECK, so
    # `consent_flags` is rebuilt and its rows carried over. Each discovery of a partner records
    # the app's client secrets as Graph lists them (never a secret, nor its hint): one row per
    # secret, or one row with NULLs and `message` when the list could not be read or was empty.
    (
        6,
        """
        CREATE TABLE consent_flags_kinds (
            flag_id VARCHAR PRIMARY KEY,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR,
            kind VARCHAR NOT NULL DEFAULT 'access_lost' CHECK (kind IN
                ('access_lost', 'gdap_expiring', 'client_secret_expiring')),
            status VARCHAR NOT NULL,
            error_code VARCHAR,
            message VARCHAR,
            ends_at TIMESTAMP,
            raised_at TIMESTAMP NOT NULL,
            cleared_at TIMESTAMP
        );
        INSERT INTO consent_flags_kinds BY NAME SELECT * FROM consent_flags;
        DROP TABLE consent_flags;
        ALTER TABLE consent_flags_kinds RENAME TO consent_flags;

        CREATE TABLE app_credentials (
            partner_tenant_id VARCHAR NOT NULL,
            checked_at TIMESTAMP NOT NULL,
            key_id VARCHAR,
            display_name VARCHAR,
            end_date TIMESTAMP,
            in_use BOOLEAN,
            message VARCHAR
        );
        """,
    ),
    # What the partner sells and what each tenant holds, subscription by subscription (issue 11):
    # Partner Center's `subscriptions` and Graph's `directory/subscriptions` (as
    # `tenant_subscriptions`), one slice per (snapshot date, partner, tenant) recorded in
    # `dataset_snapshots` even when empty, so a tenant whose fetch failed keeps its last good
    # slice; each attempt's outcome per dataset in `dataset_status`, apart from the tenant's SKU
    # status. `sku_classes`: which SKUs are free or viral (out of `unused_licenses`).
    (
        7,
        """
        CREATE TABLE subscriptions (
            snapshot_date DATE NOT NULL,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            subscription_id VARCHAR NOT NULL,
            offer_id VARCHAR,
            offer_name VARCHAR,
            friendly_name VARCHAR,
            sku_id VARCHAR,
            quantity BIGINT NOT NULL CHECK (quantity >= 0),
            unit_type VARCHAR,
            status VARCHAR NOT NULL,
            billing_cycle VARCHAR,
            term_duration VARCHAR,
            commitment_end_date DATE,
            auto_renew BOOLEAN,
            is_trial BOOLEAN NOT NULL,
            cancellation_allowed_until TIMESTAMP,
            creation_date TIMESTAMP,
            effective_start_date TIMESTAMP,
            synced_at TIMESTAMP NOT NULL,
            PRIMARY KEY (snapshot_date, partner_tenant_id, tenant_id, subscription_id)
        );
        CREATE TABLE tenant_subscriptions (
            snapshot_date DATE NOT NULL,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            commerce_subscription_id VARCHAR NOT NULL,
            sku_id VARCHAR NOT NULL,
            sku_part_number VARCHAR,
            status VARCHAR NOT NULL,
            total_licenses BIGINT NOT NULL CHECK (total_licenses >= 0),
            is_trial BOOLEAN NOT NULL,
            created TIMESTAMP,
            next_lifecycle TIMESTAMP,
            owner_tenant_id VARCHAR,
            owner_type VARCHAR,
            synced_at TIMESTAMP NOT NULL,
            PRIMARY KEY (snapshot_date, partner_tenant_id, tenant_id, commerce_subscription_id)
        );
        CREATE TABLE dataset_snapshots (
            snapshot_date DATE NOT NULL,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            dataset VARCHAR NOT NULL,
            row_count INTEGER NOT NULL,
            written_at TIMESTAMP NOT NULL,
            PRIMARY KEY (snapshot_date, partner_tenant_id, tenant_id, dataset)
        );
        CREATE TABLE dataset_status (
            sync_id VARCHAR,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            dataset VARCHAR NOT NULL,
            checked_at TIMESTAMP NOT NULL,
            status VARCHAR NOT NULL,
            error_code VARCHAR,
            message VARCHAR
        );
        CREATE TABLE sku_classes (
            sku_id VARCHAR,
            sku_part_number VARCHAR,
            sku_class VARCHAR NOT NULL CHECK (sku_class IN ('paid', 'free')),
            source VARCHAR NOT NULL
        );
        """,
    ),
    # Who holds each licence (issue 12): Graph `users` with their licence assignments, one row
    # per (snapshot date, customer, user, SKU), sliced like the subscriptions (dataset
    # `user_licenses` in dataset_snapshots and dataset_status). Personal data: the setting
    # `users` turns it off.
    (
        8,
        """
        CREATE TABLE user_licenses (
            snapshot_date DATE NOT NULL,
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            user_id VARCHAR NOT NULL,
            sku_id VARCHAR NOT NULL,
            user_principal_name VARCHAR,
            display_name VARCHAR,
            account_enabled BOOLEAN,
            user_type VARCHAR,
            assigned_by_group VARCHAR,
            assignment_state VARCHAR,
            assignment_error VARCHAR,
            last_sign_in TIMESTAMP,
            department VARCHAR,
            office_location VARCHAR,
            city VARCHAR,
            synced_at TIMESTAMP NOT NULL,
            PRIMARY KEY (snapshot_date, partner_tenant_id, tenant_id, user_id, sku_id)
        );
        """,
    ),
    # The users delta query (issue 12): per customer, the Graph delta link that lists the users
    # changed since its latest user_licenses slice, written in the transaction of that slice (a
    # link is never newer or older than the slice it continues), and when the users were last
    # read in full (with sign-in activity, which delta does not carry).
    (
        9,
        """
        CREATE TABLE user_delta_links (
            partner_tenant_id VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            delta_link VARCHAR NOT NULL,
            obtained_at TIMESTAMP NOT NULL,
            full_read_at TIMESTAMP NOT NULL,
            PRIMARY KEY (partner_tenant_id, tenant_id)
        );
        """,
    ),
    # Each evaluation of a data-quality check (issue 13): what `sync365 status` shows without the
    # Dagster UI, also for a run whose blocking check stopped it before the analyst copy. A step
    # retry evaluates a check again in the same run and replaces its row.
    (
        10,
        """
        CREATE TABLE check_results (
            sync_id VARCHAR NOT NULL,
            asset VARCHAR NOT NULL,
            check_name VARCHAR NOT NULL,
            passed BOOLEAN NOT NULL,
            severity VARCHAR NOT NULL CHECK (severity IN ('ERROR', 'WARN')),
            blocking BOOLEAN NOT NULL,
            offending BIGINT NOT NULL CHECK (offending >= 0),
            summary VARCHAR NOT NULL,
            remedy VARCHAR,
            checked_at TIMESTAMP NOT NULL,
            PRIMARY KEY (sync_id, asset, check_name)
        );
        """,
    ),
    # Which views and comments the file carries (the digest of `views.sql` and every comment
    # text): `migrate()` recreates them only when it differs from this release's.
    (
        11,
        """
        CREATE TABLE schema_objects (
            digest VARCHAR NOT NULL,
            applied_at TIMESTAMP NOT NULL
        );
        """,
    ),
)
LATEST_VERSION = MIGRATIONS[-1][0]


def applied_version(con: duckdb.DuckDBPyConnection) -> int:
    """The newest migration recorded in the file, 0 for a new file."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
    )
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


@cache
def _views_sql() -> str:
    return resources.files(__package__).joinpath("views.sql").read_text("utf-8")


@cache
def objects_digest() -> str:
    """The digest of what `migrate()` recreates on a file that is not current: the views and
    every comment's text. Computed on first use, not at import."""
    described = repr((SHARED_COLUMNS, DESCRIPTIONS, MACROS))
    return hashlib.sha256(f"{_views_sql()}\0{described}".encode()).hexdigest()


def is_current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the file has every migration and this release's views and comments; reads only,
    so it works on a read-only connection."""
    tables = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND table_name IN ('schema_version', 'schema_objects')"
    ).fetchall()
    if len(tables) < 2:
        return False
    version = con.execute("SELECT max(version) FROM schema_version").fetchone()
    digests = con.execute("SELECT digest FROM schema_objects").fetchall()
    return version == (LATEST_VERSION,) and digests == [(objects_digest(),)]


def migrate(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Apply pending migrations, recreate the views and describe everything (`comments`), in one
    transaction, unless the file is current already (then it writes nothing); returns the
    version."""
    if is_current(con):
        return LATEST_VERSION
    with transaction(con, path):
        current = applied_version(con)
        applied_at = utc_naive(utcnow())
        for version, sql in MIGRATIONS:
            if version > current:
                con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, applied_at])
        con.execute(_views_sql())
        apply_comments(con)
        con.execute("DELETE FROM schema_objects")
        con.execute("INSERT INTO schema_objects VALUES (?, ?)", [objects_digest(), applied_at])
    return LATEST_VERSION
