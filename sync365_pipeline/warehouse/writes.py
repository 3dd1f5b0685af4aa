"""The writes of `Warehouse`: license-fact slices, the customer list, statuses, raw payloads."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import date, datetime
from itertools import chain
from typing import Any

import duckdb
import pandas as pd

from sync365_pipeline.core.clock import utc_naive, utcnow
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.warehouse.columns import CUSTOMER_COLUMNS, LICENSE_FACT_COLUMNS, UNIT_COLUMNS
from sync365_pipeline.warehouse.datasets import load_staged_datasets
from sync365_pipeline.warehouse.file import WarehouseFile, clip, insert_records
from sync365_pipeline.warehouse.rows import (
    CustomerAccessRow,
    CustomerChanges,
    PartnerStatusRow,
    RawPayload,
    SkippedRecord,
    TenantStatusRow,
)

_INTEGER_COLUMNS = (*UNIT_COLUMNS, "billing_accounts")
_PARTNER = LICENSE_FACT_COLUMNS.index("partner_tenant_id")
_TENANT = LICENSE_FACT_COLUMNS.index("tenant_id")


class InvalidFrameError(ValueError):
    """Rows or a DataFrame handed to the warehouse do not match the table they are meant for."""


class Writes(WarehouseFile):
    """Each write is one transaction: it lands whole or not at all."""

    # -- license facts ---------------------------------------------------------------------

    def replace_license_facts(
        self,
        snapshot_date: date,
        rows_by_tenant: Mapping[str, Sequence[tuple[Any, ...]]],
        *,
        partner_tenant_id: str,
    ) -> int:
        """Replace exactly the given (snapshot_date, partner, tenant) slices; returns rows written.

        `rows_by_tenant` holds each tenant's fact rows, as `partner_tenant_id` reached it, in
        `LICENSE_FACT_COLUMNS` order (as the normalizer makes them); the same tenant reached
        through another partner keeps its own slice. All slices go in one transaction: the
        caller writes once after all fetching is done, so a day's snapshot appears whole or not
        at all, and the lock is taken once (10,000 per-tenant commits would each pay a WAL
        sync). To replace one tenant, pass one tenant. No rows means the tenant has zero SKUs
        today: its slice is emptied and recorded as written.
        """
        if not rows_by_tenant:
            return 0
        facts, slices = stack_slices(rows_by_tenant, partner_tenant_id=partner_tenant_id)
        with self._transaction() as con:
            con.register("incoming_facts", facts)
            con.register("incoming_slices", slices)
            _replace_slices(con, snapshot_date)
        return len(facts)

    def promote_staged_facts(self, snapshot_date: date, stages: Sequence[Mapping[str, str]]) -> int:
        """Replace the (snapshot_date, partner, tenant) slices that chunks staged
        (`warehouse.staging`), all in one transaction, straight from their files; returns the
        fact rows written."""
        slices = [stage["license_slices"] for stage in stages if "license_slices" in stage]
        if not slices:
            return 0
        facts = [stage["license_facts"] for stage in stages if "license_facts" in stage]
        with self._transaction() as con:
            con.read_parquet(slices).create_view("incoming_slices")
            if facts:
                con.read_parquet(facts).create_view("incoming_facts")
            else:  # every staged tenant has zero SKUs today
                con.execute("CREATE TEMP VIEW incoming_facts AS FROM license_facts LIMIT 0")
            stray = con.execute(
                "SELECT count(*) FROM incoming_facts WHERE NOT EXISTS "  # noqa: S608 (fixed text)
                f"(FROM incoming_slices WHERE {_in_slice('incoming_facts')})"
            ).fetchone()
            if stray and stray[0]:
                raise InvalidFrameError(f"{stray[0]} staged facts belong to no staged slice.")
            written = _replace_slices(con, snapshot_date)
            for view in ("incoming_facts", "incoming_slices"):
                con.execute(f"DROP VIEW {view}")
        return written

    def load_staged_fetches(self, stages: Sequence[Mapping[str, str]]) -> None:
        """Append each chunk's staged tenant statuses and access rows, keep its raw payloads
        (a re-fetch on the same day replaces its payload) and replace its datasets' slices
        (`datasets.load_staged_datasets`), one transaction per chunk: a tenant's status never
        lands without its access row, its subscriptions and the payload it describes, and memory
        stays that of one chunk. Loading a chunk again (a retried writer) replaces its statuses and
        access rows rather than adding them twice."""
        for stage in stages:
            with self._transaction() as con:
                if raw := stage.get("raw_subscribed_skus"):
                    con.execute(
                        "INSERT OR REPLACE INTO raw_subscribed_skus BY NAME "
                        "SELECT * FROM read_parquet(?)",
                        [raw],
                    )
                load_staged_datasets(con, stage)
                for table in ("tenant_status", "customer_access"):
                    if path := stage.get(table):
                        con.execute(
                            f"DELETE FROM {table} AS t USING read_parquet(?) AS s "  # noqa: S608
                            "WHERE t.sync_id IS NOT DISTINCT FROM s.sync_id "
                            "AND t.partner_tenant_id = s.partner_tenant_id "
                            "AND t.tenant_id = s.tenant_id",
                            [path],
                        )
                        con.execute(
                            f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet(?)",  # noqa: S608
                            [path],
                        )

    def replace_sku_classes(self, classes: Iterable[Mapping[str, str | None]]) -> int:
        """Replace `sku_classes` whole (records with its columns: the catalog's free SKUs and
        the user's own classes); returns the rows written."""
        records = [dict(record) for record in classes]
        with self._transaction() as con:
            con.execute("DELETE FROM sku_classes")
            if records:
                insert_records(con, "sku_classes", records)
        return len(records)

    # -- customers -------------------------------------------------------------------------

    def upsert_customers(
        self,
        partner_tenant_id: str,
        frame: pd.DataFrame,
        seen_at: datetime,
        skipped: Sequence[SkippedRecord] = (),
    ) -> CustomerChanges:
        """Merge today's customer list: first_seen kept, last_seen moved, absentees deactivated.

        Customers of this partner missing from `frame` become `active = false` (with
        `departed_at`); nothing is deleted, and one that comes back is active again. The list's
        `skipped` records go to `skipped_customer_records` in the same transaction: the list and
        what was left out of it land together.
        """
        incoming = _customer_frame(partner_tenant_id, frame)
        seen = utc_naive(seen_at)
        skipped_rows: list[dict[str, object]] = [
            {
                **asdict(record),
                "reason": clip(record.reason),
                "partner_tenant_id": partner_tenant_id,
                "seen_at": seen,
            }
            for record in skipped
        ]
        with self._transaction() as con:
            if skipped_rows:
                insert_records(con, "skipped_customer_records", skipped_rows)
            con.register("incoming_customers", incoming)
            new = _column(
                con,
                "SELECT tenant_id FROM incoming_customers WHERE tenant_id NOT IN "
                "(SELECT tenant_id FROM customers WHERE partner_tenant_id = ?) ORDER BY 1",
                [partner_tenant_id],
            )
            returned = _column(
                con,
                "SELECT tenant_id FROM customers WHERE partner_tenant_id = ? AND NOT active "
                "AND tenant_id IN (SELECT tenant_id FROM incoming_customers) ORDER BY 1",
                [partner_tenant_id],
            )
            departed = _column(
                con,
                "SELECT tenant_id FROM customers WHERE partner_tenant_id = ? AND active "
                "AND tenant_id NOT IN (SELECT tenant_id FROM incoming_customers) ORDER BY 1",
                [partner_tenant_id],
            )
            con.execute(
                """
                INSERT INTO customers
                SELECT partner_tenant_id, tenant_id, display_name, default_domain, relationship,
                       gdap_status, CAST(gdap_end_date AS TIMESTAMP), $seen, $seen, true, NULL,
                       CAST(gdap_relationship_ids AS VARCHAR[]), gdap_auto_extend
                FROM incoming_customers
                ON CONFLICT (partner_tenant_id, tenant_id) DO UPDATE SET
                    display_name = coalesce(excluded.display_name, customers.display_name),
                    default_domain = coalesce(excluded.default_domain, customers.default_domain),
                    relationship = excluded.relationship,
                    gdap_status = excluded.gdap_status,
                    gdap_end_date = excluded.gdap_end_date,
                    gdap_relationship_ids = excluded.gdap_relationship_ids,
                    gdap_auto_extend = excluded.gdap_auto_extend,
                    last_seen = excluded.last_seen,
                    active = true,
                    departed_at = NULL
                """,
                {"seen": seen},
            )
            con.execute(
                "UPDATE customers SET active = false, departed_at = $seen "
                "WHERE partner_tenant_id = $partner AND active "
                "AND tenant_id NOT IN (SELECT tenant_id FROM incoming_customers)",
                {"seen": seen, "partner": partner_tenant_id},
            )
        return CustomerChanges(new=new, departed=departed, returned=returned)

    # -- statuses, raw payloads ------------------------------------------------------------

    def record_tenant_statuses(self, rows: Iterable[TenantStatusRow]) -> int:
        """Append one status row per tenant attempt; statuses must be `TenantStatus` values."""
        return self._append("tenant_status", tenant_status_records(rows))

    def record_partner_status(self, row: PartnerStatusRow) -> None:
        record = {
            **asdict(row),
            "checked_at": utc_naive(row.checked_at),
            "token_expires_at": utc_naive(row.token_expires_at) if row.token_expires_at else None,
            "message": clip(row.message),
        }
        self._append("partner_status", [record])

    def save_raw_payloads(self, rows: Iterable[RawPayload]) -> int:
        """Keep raw responses, one per (snapshot date, partner, tenant, source); a re-fetch
        replaces it."""
        return self._append("raw_subscribed_skus", raw_payload_records(rows), replace=True)

    def _append(
        self, table: str, records: list[dict[str, object]], *, replace: bool = False
    ) -> int:
        if not records:
            return 0
        with self._transaction() as con:
            insert_records(con, table, records, replace=replace)
        return len(records)


def tenant_status_records(rows: Iterable[TenantStatusRow]) -> list[dict[str, object]]:
    """`tenant_status` records: status checked, time naive UTC, message redacted and clipped."""
    return [
        {
            **vars(row),
            "status": TenantStatus(row.status).value,
            "checked_at": utc_naive(row.checked_at),
            "message": clip(row.message),
        }
        for row in rows
    ]


def customer_access_records(rows: Iterable[CustomerAccessRow]) -> list[dict[str, object]]:
    """`customer_access` records: times naive UTC, roles a list, message redacted and clipped."""
    return [
        {
            **vars(row),
            "checked_at": utc_naive(row.checked_at),
            "gdap_roles": None if row.gdap_roles is None else list(row.gdap_roles),
            "gdap_end_date": utc_naive(row.gdap_end_date) if row.gdap_end_date else None,
            "message": clip(row.message),
        }
        for row in rows
    ]


def raw_payload_records(rows: Iterable[RawPayload]) -> list[dict[str, object]]:
    """`raw_subscribed_skus` records, the payload as JSON text."""
    return [
        {
            **vars(row),  # not asdict: that deep-copies every payload
            "fetched_at": utc_naive(row.fetched_at),
            "payload": row.payload if isinstance(row.payload, str) else json.dumps(row.payload),
        }
        for row in rows
    ]


def stack_slices(
    rows_by_tenant: Mapping[str, Sequence[tuple[Any, ...]]], *, partner_tenant_id: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All of one partner's tenants' facts as one frame (one bulk insert), plus one row per
    (partner, tenant) slice, checked first.

    One frame for every tenant: a frame per tenant costs milliseconds, most of a minute at 10,000
    tenants. Checks that need no database run here, before the lock is taken: the width of each
    row, each tenant's rows holding only its own partner and tenant, integer columns whole
    int64. The date is checked in SQL (`_check_dates`); row rules (non-negative counts,
    available = enabled - consumed, one row per SKU) are table constraints.
    """
    partner = partner_tenant_id.lower()
    tenants = [tenant.lower() for tenant in rows_by_tenant]
    width = len(LICENSE_FACT_COLUMNS)
    for tenant, rows in zip(tenants, rows_by_tenant.values(), strict=True):
        for row in rows:
            if len(row) != width:
                raise InvalidFrameError(
                    f"a license facts row for tenant {tenant} has {len(row)} values, not {width}."
                )
            if row[_TENANT] != tenant:
                raise InvalidFrameError(
                    f"the license facts rows for tenant {tenant} hold another tenant's."
                )
            if row[_PARTNER] != partner:
                raise InvalidFrameError(
                    f"the license facts rows for tenant {tenant} of partner {partner} hold "
                    "another partner's."
                )
    facts = pd.DataFrame.from_records(
        list(chain.from_iterable(rows_by_tenant.values())), columns=list(LICENSE_FACT_COLUMNS)
    )
    if len(facts):  # else every tenant has zero SKUs today: nothing to type-check
        for column in _INTEGER_COLUMNS:
            values = facts[column]
            if values.isna().any():
                raise InvalidFrameError(f"license facts column {column} has missing values.")
            if values.dtype != "int64":
                raise InvalidFrameError(
                    f"license facts column {column} is {values.dtype}, not int64."
                )
    sizes = [len(rows) for rows in rows_by_tenant.values()]
    slices = pd.DataFrame({"partner_tenant_id": partner, "tenant_id": tenants, "sku_count": sizes})
    return facts, slices


def _replace_slices(con: duckdb.DuckDBPyConnection, snapshot_date: date) -> int:
    """Replace today's (partner, tenant) slices in `incoming_slices` by `incoming_facts`."""
    _check_dates(con, snapshot_date)
    columns = ", ".join(LICENSE_FACT_COLUMNS)
    for table in ("license_facts", "license_snapshots"):
        con.execute(
            f"DELETE FROM {table} WHERE snapshot_date = ? "  # noqa: S608 (fixed names)
            f"AND EXISTS (FROM incoming_slices WHERE {_in_slice(table)})",
            [snapshot_date],
        )
    con.execute(f"INSERT INTO license_facts ({columns}) SELECT {columns} FROM incoming_facts")  # noqa: S608
    con.execute(
        "INSERT INTO license_snapshots "
        "(snapshot_date, partner_tenant_id, tenant_id, sku_count, written_at) "
        "SELECT ?, partner_tenant_id, tenant_id, sku_count, ? FROM incoming_slices",
        [snapshot_date, utc_naive(utcnow())],
    )
    row = con.execute("SELECT count(*) FROM incoming_facts").fetchone()
    return int(row[0]) if row else 0


def _in_slice(table: str) -> str:
    """SQL: the row of `table` belongs to a (partner, tenant) slice of `incoming_slices`."""
    return (
        f"{table}.partner_tenant_id = incoming_slices.partner_tenant_id "
        f"AND {table}.tenant_id = incoming_slices.tenant_id"
    )


def _check_dates(con: duckdb.DuckDBPyConnection, snapshot_date: date) -> None:
    row = con.execute(
        "SELECT count(*) FROM incoming_facts "
        "WHERE CAST(snapshot_date AS DATE) IS DISTINCT FROM CAST(? AS DATE)",
        [snapshot_date],
    ).fetchone()
    if row and row[0]:
        raise InvalidFrameError(f"{row[0]} license facts rows are not dated {snapshot_date}.")


def _customer_frame(partner_tenant_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    if missing := [column for column in CUSTOMER_COLUMNS if column not in frame.columns]:
        raise InvalidFrameError(f"customers frame lacks column(s) {missing}.")
    incoming = frame[list(CUSTOMER_COLUMNS)]
    if (incoming["partner_tenant_id"] != partner_tenant_id).any():
        raise InvalidFrameError(
            f"customers frame holds rows of a partner other than {partner_tenant_id}."
        )
    if incoming["tenant_id"].duplicated().any():
        raise InvalidFrameError("customers frame lists a tenant twice.")
    return incoming


def _column(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> list[str]:
    return [row[0] for row in con.execute(sql, params).fetchall()]
