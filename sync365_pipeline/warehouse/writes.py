"""The writes of `Warehouse`: license-fact slices, the customer list, statuses, raw payloads."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd

from sync365_pipeline.core.clock import utc_naive, utcnow
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.warehouse.columns import CUSTOMER_COLUMNS, LICENSE_FACT_COLUMNS, UNIT_COLUMNS
from sync365_pipeline.warehouse.file import WarehouseFile, clip, insert_records
from sync365_pipeline.warehouse.rows import (
    CustomerChanges,
    PartnerStatusRow,
    RawPayload,
    SkippedRecord,
    TenantStatusRow,
)

_INTEGER_COLUMNS = (*UNIT_COLUMNS, "billing_accounts")


class InvalidFrameError(ValueError):
    """A DataFrame handed to the warehouse does not match the table it is meant for."""


class Writes(WarehouseFile):
    """Each write is one transaction: it lands whole or not at all."""

    # -- license facts ---------------------------------------------------------------------

    def replace_license_facts(
        self, snapshot_date: date, frames_by_tenant: Mapping[str, pd.DataFrame]
    ) -> int:
        """Replace exactly the given (snapshot_date, tenant) slices; returns rows written.

        All slices go in one transaction: the caller writes once after all fetching is done, so a
        day's snapshot appears whole or not at all, and the lock is taken once (10,000 per-tenant
        commits would each pay a WAL sync). To replace one tenant, pass one tenant. An empty frame
        means the tenant has zero SKUs today: its slice is emptied and recorded as written.
        """
        if not frames_by_tenant:
            return 0
        facts, slices = _stack_slices(snapshot_date, frames_by_tenant)
        columns = ", ".join(LICENSE_FACT_COLUMNS)
        with self._transaction() as con:
            con.register("incoming_facts", facts)
            con.register("incoming_slices", slices)
            _check_dates(con, snapshot_date)
            for table in ("license_facts", "license_snapshots"):
                con.execute(
                    f"DELETE FROM {table} WHERE snapshot_date = ? "  # noqa: S608 (fixed names)
                    "AND tenant_id IN (SELECT tenant_id FROM incoming_slices)",
                    [snapshot_date],
                )
            con.execute(
                f"INSERT INTO license_facts ({columns}) SELECT {columns} FROM incoming_facts"  # noqa: S608
            )
            con.execute(
                "INSERT INTO license_snapshots "
                "SELECT ?, tenant_id, sku_count, ? FROM incoming_slices",
                [snapshot_date, utc_naive(utcnow())],
            )
        return len(facts)

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
                       gdap_status, CAST(gdap_end_date AS TIMESTAMP), $seen, $seen, true, NULL
                FROM incoming_customers
                ON CONFLICT (partner_tenant_id, tenant_id) DO UPDATE SET
                    display_name = coalesce(excluded.display_name, customers.display_name),
                    default_domain = coalesce(excluded.default_domain, customers.default_domain),
                    relationship = excluded.relationship,
                    gdap_status = excluded.gdap_status,
                    gdap_end_date = excluded.gdap_end_date,
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
        records = [
            {
                **asdict(row),
                "status": TenantStatus(row.status).value,
                "checked_at": utc_naive(row.checked_at),
                "message": clip(row.message),
            }
            for row in rows
        ]
        return self._append("tenant_status", records)

    def record_partner_status(self, row: PartnerStatusRow) -> None:
        record = {
            **asdict(row),
            "checked_at": utc_naive(row.checked_at),
            "token_expires_at": utc_naive(row.token_expires_at) if row.token_expires_at else None,
            "message": clip(row.message),
        }
        self._append("partner_status", [record])

    def save_raw_payloads(self, rows: Iterable[RawPayload]) -> int:
        """Keep raw responses, one per (snapshot date, tenant, source); a re-fetch replaces it."""
        records = [
            {
                **asdict(row),
                "fetched_at": utc_naive(row.fetched_at),
                "payload": row.payload if isinstance(row.payload, str) else json.dumps(row.payload),
            }
            for row in rows
        ]
        return self._append("raw_subscribed_skus", records, replace=True)

    def _append(
        self, table: str, records: list[dict[str, object]], *, replace: bool = False
    ) -> int:
        if not records:
            return 0
        with self._transaction() as con:
            insert_records(con, table, records, replace=replace)
        return len(records)


def _stack_slices(
    snapshot_date: date, frames_by_tenant: Mapping[str, pd.DataFrame]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All tenants' facts as one frame (one bulk insert), plus one row per slice, checked first.

    Checks that need no database run here, before the lock is taken: columns, integer dtypes,
    each frame holding only its own tenant. The date is checked in SQL (`_check_dates`); row rules
    (non-negative counts, available = enabled - consumed, one row per SKU) are table constraints.
    Frames straight from the normalizer already have the table's columns in order and are
    concatenated as they are; selecting columns frame by frame costs seconds at 10,000 tenants.
    """
    tenants = [tenant.lower() for tenant in frames_by_tenant]
    frames = list(frames_by_tenant.values())
    expected = list(LICENSE_FACT_COLUMNS)
    for tenant, frame in zip(tenants, frames, strict=True):
        if missing := [column for column in expected if column not in frame.columns]:
            raise InvalidFrameError(f"license facts for tenant {tenant} lack column(s) {missing}.")
    non_empty = [frame if list(frame.columns) == expected else frame[expected] for frame in frames]
    facts = pd.concat(
        [frame for frame in non_empty if len(frame)] or non_empty[:1], ignore_index=True
    )
    for column in _INTEGER_COLUMNS:
        values = facts[column]
        if not len(values):
            continue  # every tenant has zero SKUs today: nothing to type-check
        if not pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise InvalidFrameError(
                f"license facts column {column} is {values.dtype}, not integer."
            )
        if values.isna().any():
            raise InvalidFrameError(f"license facts column {column} has missing values.")
        facts[column] = values.astype("int64")
    sizes = np.array([len(frame) for frame in frames], dtype="int64")
    expected_tenant = np.repeat(np.array(tenants, dtype=object), sizes)
    wrong_tenant = facts["tenant_id"].to_numpy(dtype=object) != expected_tenant
    if wrong_tenant.any():
        tenant = expected_tenant[wrong_tenant.argmax()]
        raise InvalidFrameError(f"the license facts frame for tenant {tenant} holds other rows.")
    return facts, pd.DataFrame({"tenant_id": tenants, "sku_count": sizes})


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
