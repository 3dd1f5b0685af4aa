"""The consent flags of `Warehouse`: lost access a human must restore, raised and cleared by the
consent sensor."""

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
from sync365_pipeline.warehouse.rows import ConsentFlag


class ConsentFlags(WarehouseFile):
    """At most one open flag per (partner, tenant); a sensor tick's changes land together."""

    def open_consent_flags(self) -> list[ConsentFlag]:
        frame = self._read(
            "SELECT * FROM consent_flags WHERE cleared_at IS NULL ORDER BY raised_at, flag_id"
        )
        return [_consent_flag(record) for record in frame.to_dict("records")]

    def apply_consent_changes(
        self,
        raised: Iterable[ConsentFlag],
        cleared: Iterable[tuple[str, str | None]],
        cleared_at: datetime,
    ) -> tuple[list[ConsentFlag], list[tuple[str, str | None]]]:
        """Open the raised flags (unless one is open for that key) and close the cleared ones, in
        one transaction; returns what actually changed, which is what must be announced.

        One transaction, so a sensor tick either records and announces all of its changes or
        none of them (a half-applied tick would leave flags that are never announced).
        """
        with self._transaction() as con:
            return _raise_flags(con, raised), _clear_flags(con, cleared, cleared_at)


def _raise_flags(con: duckdb.DuckDBPyConnection, rows: Iterable[ConsentFlag]) -> list[ConsentFlag]:
    already_open = set(
        con.execute(
            "SELECT partner_tenant_id, tenant_id FROM consent_flags WHERE cleared_at IS NULL"
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
    keys: Iterable[tuple[str, str | None]],
    cleared_at: datetime,
) -> list[tuple[str, str | None]]:
    cleared = []
    for partner, tenant in keys:
        result = con.execute(
            "UPDATE consent_flags SET cleared_at = ? WHERE cleared_at IS NULL "
            "AND partner_tenant_id = ? AND tenant_id IS NOT DISTINCT FROM ?",
            [utc_naive(cleared_at), partner, tenant],
        ).fetchone()
        if result and result[0]:
            cleared.append((partner, tenant))
    return cleared


def _consent_flag(record: Mapping[str, object]) -> ConsentFlag:
    def plain(value: object) -> object:
        if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
            return None
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value

    return ConsentFlag(**{key: plain(value) for key, value in record.items()})  # type: ignore[arg-type]
