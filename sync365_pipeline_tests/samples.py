"""Sample tenant and SKU ids, and a license-facts rows builder, for the tests that need no
simulator (normalizer, warehouse) and for seeding a warehouse."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sync365_pipeline.catalog import SkuCatalog, SkuName
from sync365_pipeline.licensing.normalize import license_fact_rows

PARTNER = "11111111-1111-1111-1111-111111111111"
OTHER_PARTNER = "22222222-2222-2222-2222-222222222222"  # e.g. the account of a merged MSP
CONTOSO = "b44bb1fb-c595-45b0-9e09-d657365580bf"
FABRIKAM = "45c44870-ef77-4fdd-b6fe-3dacb075cff2"
NORTHWIND = "52eaad04-13a2-4a2f-9ce8-93a294fadf36"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
POWER_BI_PRO = "f8a1db68-be16-40ed-86d5-cb42ce701560"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
PART_NUMBERS = {SPB: "SPB", POWER_BI_PRO: "POWER_BI_PRO", E3: "ENTERPRISEPACK"}
CATALOG = SkuCatalog(SkuName(sku, part, f"Product {part}") for sku, part in PART_NUMBERS.items())
DAY1 = date(2026, 7, 1)
DAY2 = date(2026, 7, 2)


def facts(
    tenant: str, day: date, units: dict[str, tuple[int, int]], partner: str = PARTNER
) -> tuple[tuple[Any, ...], ...]:
    """Normalizer-made fact rows for `tenant` (as `partner` reaches it) on `day` with
    {sku_id: (enabled, consumed)}."""
    return license_fact_rows(
        partner_tenant_id=partner,
        tenant_id=tenant,
        snapshot_date=day,
        synced_at=datetime.combine(day, datetime.min.time()).replace(hour=5),
        graph_skus=[
            {
                "skuId": sku,
                "skuPartNumber": PART_NUMBERS[sku],
                "capabilityStatus": "Enabled",
                "consumedUnits": consumed,
                "prepaidUnits": {"enabled": enabled, "suspended": 0, "warning": 0},
            }
            for sku, (enabled, consumed) in units.items()
        ],
        partner_center_skus=None,
        catalog=CATALOG,
    ).rows
