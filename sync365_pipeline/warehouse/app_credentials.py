"""The partner app's client secrets in `Warehouse`: what each discovery saw, for the expiry flag
and doctor. Never a secret, nor its hint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import pandas as pd

from sync365_pipeline.core.clock import utc_naive
from sync365_pipeline.warehouse.file import WarehouseFile, clip, insert_records
from sync365_pipeline.warehouse.rows import AppCredentialRow


class AppCredentials(WarehouseFile):
    """One check per partner per discovery: its rows share `checked_at`."""

    def record_app_credentials(self, rows: Sequence[AppCredentialRow]) -> None:
        """Append one check's rows (one per secret, or one that says why there is none)."""
        records = [
            {
                **asdict(row),
                "checked_at": utc_naive(row.checked_at),
                "end_date": utc_naive(row.end_date) if row.end_date else None,
                "message": clip(row.message),
            }
            for row in rows
        ]
        if records:
            with self._transaction() as con:
                insert_records(con, "app_credentials", records)

    def latest_app_credentials(self) -> pd.DataFrame:
        """Each partner's latest check: its rows (columns as `app_credentials`)."""
        return self._read(
            "SELECT * FROM app_credentials QUALIFY checked_at = max(checked_at) OVER "
            "(PARTITION BY partner_tenant_id) "
            "ORDER BY partner_tenant_id, in_use DESC NULLS LAST, end_date DESC, key_id"
        )
