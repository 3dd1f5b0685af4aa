"""SKU names: the package's table of SKU ids, part numbers and product names, and its refresh."""

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
    "MICROSOFT_CSV_URL",
    "TABLE_FILE_NAME",
    "CatalogError",
    "RefreshReport",
    "SkuCatalog",
    "SkuName",
    "refresh_sku_names",
]
