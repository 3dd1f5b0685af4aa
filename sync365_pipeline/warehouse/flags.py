"""The consent flags of `Warehouse`: lost access a human must restore, and GDAP relationships or
client secrets that end soon; raised and cleared by `sync365 sync` and by the consent sensor. Also
what the expiry flags are computed from (customers' GDAP ends) and named by (customer names)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from sync365_pipeline.core.clock import utc_naive
from sync365_pipeline.warehouse.file import WarehouseFile, clip, insert_records
from sync365_pipeline.warehouse.rows import ConsentFlag, CustomerNames, FlagKey


class ConsentFlags(WarehouseFile):
    """At most one open flag per (partner, tenant, kind); one evaluation's changes land together."""

    def open_consent_flags(self) -> list[ConsentFlag]:
        frame = self._read(
            "SELECT * FROM consent_flags WHERE cleared_at IS NULL ORDER BY raised_at, flag_id"
        )
        return [_consent_flag(record) for record in frame.to_dict("records")]

    def apply_consent_changes(
        self,
        raised: Iterable[ConsentFlag],
        cleared: Iterable[FlagKey],
        cleared_at: datetime,
    ) -> tuple[list[ConsentFlag], list[FlagKey]]:
        """Open the raised flags (unless one is open for that key) and close the cleared ones, in
        one transaction; returns what actually changed, which is what must be announced.

        One transaction, so an evaluation either records and announces all of its changes or
        none of them (a half-applied one would leave flags that are never announced); and what
        one evaluation applied, the next finds unchanged, so nothing is announced twice.
        """
        with self._transaction() as con:
            return _raise_flags(con, raised), _clear_flags(con, cleared, cleared_at)

    def gdap_ends(self) -> pd.DataFrame:
        """Every active customer with a GDAP relationship that has an end: partner_tenant_id,
        tenant_id, display_name, gdap_status, gdap_end_date, gdap_auto_extend."""
        return self._read(
            "SELECT partner_tenant_id, tenant_id, display_name, gdap_status, gdap_end_date, "
            "gdap_auto_extend FROM customers WHERE active AND gdap_end_date IS NOT NULL "
            "ORDER BY partner_tenant_id, tenant_id"
        )

    def customer_names(self) -> CustomerNames:
        """{(partner_tenant_id, tenant_id): display name} of every customer that has one."""
        frame = self._read(
            "SELECT partner_tenant_id, tenant_id, display_name FROM customers "
            "WHERE display_name IS NOT NULL"
        )
        return CustomerNames(
            ((row.partner_tenant_id, row.tenant_id), row.display_name) for row in frame.itertuples()
        )


def _raise_flags(con: duckdb.DuckDBPyConnection, rows: Iterable[ConsentFlag]) -> list[ConsentFlag]:
    already_open = set(
        con.execute(
            "SELECT partner_tenant_id, tenant_id, kind FROM consent_flags WHERE cleared_at IS NULL"
        ).fetchall()
    )
    raised: list[ConsentFlag] = []
    for row in rows:
        if row.key in already_open:
            continue
        already_open.add(row.key)
        raised.append(
            ConsentFlag(
                **{
                    **asdict(row),
                    "raised_at": utc_naive(row.raised_at),
                    "ends_at": utc_naive(row.ends_at) if row.ends_at else None,
                    "message": clip(row.message),
                    "cleared_at": None,
                    "flag_id": uuid.uuid4().hex,
                }
            )
        )
    if raised:
        insert_records(con, "consent_flags", [asdict(flag) for flag in raised])
    return raised


def _clear_flags(
    con: duckdb.DuckDBPyConnection,
    keys: Iterable[FlagKey],
    cleared_at: datetime,
) -> list[FlagKey]:
    cleared: list[FlagKey] = []
    for partner, tenant, kind in keys:
        result = con.execute(
            "UPDATE consent_flags SET cleared_at = ? WHERE cleared_at IS NULL "
            "AND partner_tenant_id = ? AND tenant_id IS NOT DISTINCT FROM ? AND kind = ?",
            [utc_naive(cleared_at), partner, tenant, kind],
        ).fetchone()
        if result and result[0]:
            cleared.append((partner, tenant, kind))
    return cleared


def _consent_flag(record: Mapping[str, object]) -> ConsentFlag:
    def plain(value: object) -> object:
        if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
            return None
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value

    return ConsentFlag(**{key: plain(value) for key, value in record.items()})  # type: ignore[arg-type]
