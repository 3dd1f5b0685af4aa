"""The simulator's SKU catalog: real SKU ids, part numbers, names and service plans.

Read from `sku_catalog.json` (shipped in the package, produced by `build_catalog.py` from
Microsoft's CSV), so the simulator never needs the CSV at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOG_PATH = Path(__file__).with_name("sku_catalog.json")
# Free and viral SKUs: a customer signs up for them itself, nobody sells them.
FREE_PART_NUMBERS = frozenset({"FLOW_FREE", "POWER_BI_STANDARD", "TEAMS_EXPLORATORY"})


@dataclass(frozen=True)
class ServicePlan:
    id: str
    name: str
    display_name: str


@dataclass(frozen=True)
class SkuProduct:
    sku_id: str
    part_number: str
    display_name: str
    service_plans: tuple[ServicePlan, ...]


class SkuCatalog:
    """The products, indexed by SKU id (lower case) and by part number."""

    def __init__(self, products: tuple[SkuProduct, ...]) -> None:
        self.products = products
        self._by_id = {product.sku_id: product for product in products}
        self._by_part_number = {product.part_number: product for product in products}

    def by_id(self, sku_id: str) -> SkuProduct | None:
        return self._by_id.get(sku_id.lower())

    def by_part_number(self, part_number: str) -> SkuProduct | None:
        return self._by_part_number.get(part_number)


@cache
def load_catalog(path: Path = CATALOG_PATH) -> SkuCatalog:
    """Parse the catalog once per process: scenarios of 10,000 tenants look SKUs up constantly."""
    entries = json.loads(path.read_text(encoding="utf-8"))
    return SkuCatalog(
        tuple(
            SkuProduct(
                sku_id=entry["sku_id"],
                part_number=entry["part_number"],
                display_name=entry["display_name"],
                service_plans=tuple(ServicePlan(**plan) for plan in entry["service_plans"]),
            )
            for entry in entries
        )
    )
