"""SKU names: the package's table of SKU ids, part numbers and product names, and its refresh."""

from sync365_pipeline.catalog.classes import FREE_PART_NUMBERS, SkuClass, sku_classes
from sync365_pipeline.catalog.skus import (
    MICROSOFT_CSV_URL,
    TABLE_FILE_NAME,
    CatalogError,
    RefreshReport,
    SkuCatalog,
    SkuName,
    refresh_sku_names,
)

__all__ = [
    "FREE_PART_NUMBERS",
    "MICROSOFT_CSV_URL",
    "TABLE_FILE_NAME",
    "CatalogError",
    "RefreshReport",
    "SkuCatalog",
    "SkuClass",
    "SkuName",
    "refresh_sku_names",
    "sku_classes",
]
