"""SKU classes: which SKUs are paid and which are free or viral (self-service sign-ups, free
tiers, viral trials), so that unused seats of a free SKU (Power Automate Free's 10,000) are not
reported as money left on the table.

A SKU is free when Microsoft's product name says so (Free, Trial, vTrial, Exploratory), its part
number does (FREE, VIRAL, TRIAL) or it is in `FREE_PART_NUMBERS`; the user's
`<data_dir>/sku_classes.csv` (`sku,class`: a GUID or part number, then paid or free) wins over
both. Trials among paid SKUs are told by their subscriptions, in the warehouse's views.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sync365_pipeline.catalog.skus import CatalogError, SkuCatalog
from sync365_pipeline.core.settings import DATA_DIR

CLASSES_FILE_NAME = "sku_classes.csv"
SkuClassName = Literal["paid", "free"]
# Free SKUs whatever their names say, and some the catalog may not list.
FREE_PART_NUMBERS = frozenset(
    {
        "FLOW_FREE",
        "POWER_BI_STANDARD",
        "TEAMS_EXPLORATORY",
        "TEAMS_FREE",
        "POWERAPPS_VIRAL",
        "POWERAPPS_DEV",
        "CCIBOTS_PRIVPREV_VIRAL",
        "RIGHTSMANAGEMENT_ADHOC",
        "WINDOWS_STORE",
        "STREAM",
    }
)
_FREE_NAME = re.compile(r"\b(free|trial|vtrial|exploratory)\b", re.IGNORECASE)
_FREE_PART_NUMBER = re.compile(r"FREE|VIRAL|TRIAL", re.IGNORECASE)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class SkuClass:
    """One SKU's class, named by its id or (sku_id None) by its part number."""

    sku_id: str | None
    sku_part_number: str | None
    sku_class: SkuClassName
    source: str


def sku_classes(catalog: SkuCatalog, data_dir: Path | None = DATA_DIR) -> list[SkuClass]:
    """The free SKUs of the catalog and of `FREE_PART_NUMBERS`, with the user's file's lines
    replacing whatever they name (by id or part number). Raises `CatalogError` for a bad file."""
    found = [
        SkuClass(sku.sku_id, sku.sku_part_number, "free", "catalog")
        for sku in catalog.skus()
        if _FREE_NAME.search(sku.product_name) or _FREE_PART_NUMBER.search(sku.sku_part_number)
    ]
    named = {sku.sku_part_number.upper() for sku in found}
    found += [
        SkuClass(None, part_number, "free", "free_list")
        for part_number in sorted(FREE_PART_NUMBERS - named)
    ]
    user_file = data_dir / CLASSES_FILE_NAME if data_dir is not None else None
    if user_file is None or not user_file.is_file():
        return found
    own = list(_user_classes(user_file.read_text(encoding="utf-8-sig"), str(user_file)))
    ids = {entry.sku_id for entry in own if entry.sku_id}
    part_numbers = {entry.sku_part_number.upper() for entry in own if entry.sku_part_number}
    kept = [
        entry
        for entry in found
        if entry.sku_id not in ids and (entry.sku_part_number or "").upper() not in part_numbers
    ]
    return kept + own


def _user_classes(text: str, origin: str) -> Iterable[SkuClass]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or {"sku", "class"} - set(reader.fieldnames):
        raise CatalogError(f"{origin}: the header must be 'sku,class'.")
    for line, row in enumerate(reader, start=2):
        sku, sku_class = (row["sku"] or "").strip(), (row["class"] or "").strip().lower()
        if not sku or sku_class not in ("paid", "free"):
            raise CatalogError(f"{origin}, line {line}: want a SKU, then paid or free.")
        checked: SkuClassName = "paid" if sku_class == "paid" else "free"
        if _GUID.fullmatch(sku):
            yield SkuClass(sku.lower(), None, checked, origin)
        else:
            yield SkuClass(None, sku, checked, origin)
