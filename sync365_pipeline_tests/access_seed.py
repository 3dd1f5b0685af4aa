"""A warehouse as a sync with the access audit leaves it: customers, statuses, facts and the
`customer_access` rows (written by plain SQL until the sync's own writer exists), for the tests
of what people are shown of access (status, doctor, the customers asset)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb

from sync365_pipeline.core.clock import utc_naive, utcnow
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.normalize import customers_frame, license_fact_rows
from sync365_pipeline.warehouse import TenantStatusRow, Warehouse
from sync365_pipeline_tests.samples import CATALOG, CONTOSO, FABRIKAM, NORTHWIND, PARTNER, SPB

DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
WOODGROVE = "6a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
LEFT = "7b2e1d3f-4c5e-4f60-9b0a-1d2e3f4a5b6c"  # departed: its access row is not shown


@dataclass(frozen=True)
class Access:
    """One `customer_access` row."""

    tenant_id: str
    checked_at: datetime
    cpv_consent: str
    gdap_roles: Sequence[str] | None = (DIRECTORY_READERS,)
    gdap_end_date: datetime | None = None
    auto_extend: bool | None = True
    message: str | None = None

    @property
    def can_read_licenses(self) -> bool | None:
        return None if self.gdap_roles is None else DIRECTORY_READERS in self.gdap_roles


def write_access(warehouse: Warehouse, rows: Sequence[Access], partner: str = PARTNER) -> None:
    with duckdb.connect(str(warehouse.path)) as con:
        for row in rows:
            con.execute(
                "INSERT INTO customer_access VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'sync-1')",
                [
                    partner,
                    row.tenant_id,
                    utc_naive(row.checked_at),
                    list(row.gdap_roles) if row.gdap_roles is not None else None,
                    row.can_read_licenses,
                    row.cpv_consent,
                    utc_naive(row.gdap_end_date) if row.gdap_end_date else None,
                    row.auto_extend,
                    row.message,
                ],
            )


def write_facts(warehouse: Warehouse, tenant: str, day: date, source: str = "graph") -> None:
    rows = license_fact_rows(
        partner_tenant_id=PARTNER,
        tenant_id=tenant,
        snapshot_date=day,
        synced_at=utcnow(),
        graph_skus=[
            {
                "skuId": SPB,
                "skuPartNumber": "SPB",
                "capabilityStatus": "Enabled",
                "consumedUnits": 3,
                "prepaidUnits": {"enabled": 5, "suspended": 0, "warning": 0},
            }
        ],
        partner_center_skus=None,
        catalog=CATALOG,
        source=source,  # type: ignore[arg-type]
    ).rows
    warehouse.replace_license_facts(day, {tenant: rows}, partner_tenant_id=PARTNER)


def seed_access(warehouse: Warehouse, now: datetime) -> None:
    """Five active customers and a departed one, each in another state of access:

    - Contoso: reached via Graph after the sync granted consent.
    - Fabrikam: Graph refused (access_removed), its facts came from Partner Center.
    - Northwind: consent failed (consent_revoked), only yesterday's facts.
    - Woodgrove: via Graph, but GDAP ends in 9 days without auto-extend.
    - Tailwind (LEFT) departed; an older Contoso row is superseded.
    """
    warehouse.migrate()
    earlier = now - timedelta(hours=2)
    names = {
        CONTOSO: "Contoso",
        FABRIKAM: "Fabrikam",
        NORTHWIND: "Northwind",
        WOODGROVE: "Woodgrove Bank",
        LEFT: "Tailwind",
    }
    listing = [{"customerId": tenant, "displayName": name} for tenant, name in names.items()]
    warehouse.upsert_customers(
        PARTNER, customers_frame(PARTNER, [], [], listing).frame, earlier - timedelta(days=1)
    )
    del listing[-1]  # Tailwind leaves
    warehouse.upsert_customers(PARTNER, customers_frame(PARTNER, [], [], listing).frame, earlier)
    today, yesterday = now.date(), now.date() - timedelta(days=1)
    write_facts(warehouse, NORTHWIND, yesterday)
    warehouse.record_tenant_statuses(
        [
            TenantStatusRow(PARTNER, CONTOSO, earlier, TenantStatus.OK),
            TenantStatusRow(
                PARTNER,
                FABRIKAM,
                earlier,
                TenantStatus.ACCESS_REMOVED,
                "Authorization_RequestDenied",
            ),
            TenantStatusRow(PARTNER, WOODGROVE, earlier, TenantStatus.OK),
            TenantStatusRow(PARTNER, LEFT, earlier, TenantStatus.OK),
        ]
    )
    for tenant in (CONTOSO, WOODGROVE):
        write_facts(warehouse, tenant, today)
    write_facts(warehouse, FABRIKAM, today, source="partner_center")
    warehouse.record_tenant_statuses(
        [TenantStatusRow(PARTNER, NORTHWIND, utcnow(), TenantStatus.CONSENT_REVOKED, "AADSTS90099")]
    )
    far = now + timedelta(days=400)
    write_access(
        warehouse,
        [
            Access(CONTOSO, earlier - timedelta(days=1), "failed", gdap_end_date=far),
            Access(CONTOSO, earlier, "granted", gdap_end_date=far),
            Access(
                FABRIKAM, earlier, "not_needed", gdap_roles=(EXCHANGE_ADMIN,), gdap_end_date=far
            ),
            Access(NORTHWIND, earlier, "failed", gdap_end_date=far, message="403 code 2032"),
            Access(
                WOODGROVE,
                earlier,
                "not_needed",
                gdap_roles=(GLOBAL_READER, DIRECTORY_READERS),
                gdap_end_date=now + timedelta(days=9, hours=1),
                auto_extend=False,
            ),
            Access(LEFT, earlier, "disabled"),
        ],
    )
