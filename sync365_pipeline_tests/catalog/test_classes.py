"""SKU classes: free and viral SKUs from Microsoft's names and the free list; the user's file
wins, by id or part number; a bad file says where."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync365_pipeline.catalog import CatalogError, SkuCatalog, sku_classes

FLOW_FREE = "f30db892-07e9-47e9-837c-80727f46fd3d"


def free_skus(data_dir: Path | None) -> set[str | None]:
    return {
        entry.sku_part_number or entry.sku_id
        for entry in sku_classes(SkuCatalog.load(data_dir=None), data_dir)
        if entry.sku_class == "free"
    }


def test_the_catalog_names_free_viral_and_trial_skus_and_leaves_paid_ones(tmp_path: Path) -> None:
    free = free_skus(tmp_path)
    assert {"FLOW_FREE", "POWER_BI_STANDARD", "TEAMS_EXPLORATORY", "POWERAPPS_VIRAL"} <= free
    assert not {"SPB", "ENTERPRISEPACK", "O365_BUSINESS_PREMIUM", "Teams_Ess"} & free


def test_the_users_file_wins_by_part_number_and_by_id(tmp_path: Path) -> None:
    (tmp_path / "sku_classes.csv").write_text(
        f"sku,class\nSPB,free\n{FLOW_FREE.upper()},paid\nteams_exploratory,paid\n",
        encoding="utf-8",
    )
    classes = sku_classes(SkuCatalog.load(data_dir=None), tmp_path)
    own = {(entry.sku_id, entry.sku_part_number): entry.sku_class for entry in classes}
    assert own[(None, "SPB")] == "free"
    assert own[(FLOW_FREE, None)] == "paid"
    assert own[(None, "teams_exploratory")] == "paid"
    overridden = {FLOW_FREE, "TEAMS_EXPLORATORY"}
    catalogs = [entry for entry in classes if entry.source == "catalog"]
    assert not [e for e in catalogs if {e.sku_id, e.sku_part_number} & overridden]


def test_a_bad_users_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "sku_classes.csv").write_text("sku,class\nSPB,cheap\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="line 2"):
        sku_classes(SkuCatalog.load(data_dir=None), tmp_path)
