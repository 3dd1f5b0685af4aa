"""The SKU catalog: Microsoft's real CSV format, the packaged table, refresh from file or URL."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync365_pipeline.catalog import CatalogError, SkuCatalog, refresh_sku_names

SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
O365_BUSINESS = "cdd28e44-67e3-425e-be4c-737fab2899d3"
RSO = "c1ec4a95-1f05-45b3-a911-aa3fa01094f5"  # made up: not a SKU in Microsoft's file

# The real file's quirks: BOM, quoted commas, an en dash, a SKU repeated on every service-plan
# row (not contiguously), a stray trailing no-break space, and a renamed product listed twice.
MICROSOFT_CSV = (
    "\ufeffProduct_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,"
    "Service_Plans_Included_Friendly_Names\n"
    "Microsoft 365 Business Premium,SPB,cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46,AAD_PREMIUM,"
    "41781fb2-bc02-4b7c-bd55-b576c07bb09d,Microsoft Entra ID P1\n"
    '"Dynamics 365 Field Service, Enterprise Edition - Resource Scheduling Optimization",'
    "RSO,c1ec4a95-1f05-45b3-a911-aa3fa01094f5,X,41781fb2-bc02-4b7c-bd55-b576c07bb09d,"
    '"Plan, with comma"\n'
    "Microsoft 365 Apps for Business,O365_BUSINESS,cdd28e44-67e3-425e-be4c-737fab2899d3\u00a0,"
    "OFFICE_BUSINESS,094e7854-93fc-4d55-b2c0-3ab5369ebdc1,OFFICE 365 BUSINESS\n"
    "Microsoft 365 Business Premium,SPB,cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46,INTUNE_A,"
    "c1ec4a95-1f05-45b3-a911-aa3fa01094f5,Microsoft Intune Plan 1\n"
    "Teams Rooms \u2013 Pro,Teams_Rooms_Pro,4cde982a-ede4-4409-9ae6-b003453c8ea6,A,"
    "41781fb2-bc02-4b7c-bd55-b576c07bb09d,RETIRED - Something\n"
    "Old Name Of Rooms,Teams_Rooms_Pro,4cde982a-ede4-4409-9ae6-b003453c8ea6,B,"
    "41781fb2-bc02-4b7c-bd55-b576c07bb09d,x\n"
)


@pytest.fixture
def microsoft_csv(tmp_path: Path) -> Path:
    path = tmp_path / "Product names and service plan identifiers for licensing.csv"
    path.write_bytes(MICROSOFT_CSV.encode("utf-8"))
    return path


def test_microsoft_csv_gives_one_row_per_guid(microsoft_csv: Path) -> None:
    catalog = SkuCatalog.from_microsoft_csv(microsoft_csv)

    assert len(catalog) == 4
    assert catalog.get(SPB).product_name == "Microsoft 365 Business Premium"
    assert catalog.get(RSO).product_name == (
        "Dynamics 365 Field Service, Enterprise Edition - Resource Scheduling Optimization"
    )
    assert catalog.get(O365_BUSINESS).sku_part_number == "O365_BUSINESS"
    rooms = catalog.get("4CDE982A-EDE4-4409-9AE6-B003453C8EA6")
    assert rooms.product_name == "Teams Rooms \u2013 Pro"  # first row wins, dash intact


def test_text_and_path_give_the_same_catalog(microsoft_csv: Path) -> None:
    from_text = SkuCatalog.from_microsoft_csv(MICROSOFT_CSV)
    assert from_text.skus() == SkuCatalog.from_microsoft_csv(microsoft_csv).skus()


def test_packaged_table_has_the_real_skus() -> None:
    catalog = SkuCatalog.load(data_dir=None)

    assert len(catalog) == 619
    assert catalog.name_for(SPB, "SPB") == ("Microsoft 365 Business Premium", "catalog")
    assert catalog.get(O365_BUSINESS).product_name == "Microsoft 365 Apps for Business"
    assert catalog.get(O365_BUSINESS).sku_part_number == "O365_BUSINESS"


def test_unknown_sku_falls_back_to_part_number_then_id() -> None:
    catalog = SkuCatalog()
    unknown = "00000000-0000-0000-0000-000000000001"
    assert catalog.name_for(unknown, "NEW_SKU") == ("NEW_SKU", "part_number")
    assert catalog.name_for(unknown, None) == (unknown, "sku_id")


def test_malformed_header_names_the_missing_column() -> None:
    with pytest.raises(CatalogError, match="missing column\\(s\\) GUID"):
        SkuCatalog.from_microsoft_csv("Product_Display_Name,String_Id,Guid\nA,B,C\n")


def test_bad_guid_names_the_line() -> None:
    text = "Product_Display_Name,String_Id,GUID\nA,B,not-a-guid\n"
    with pytest.raises(CatalogError, match="line 2"):
        SkuCatalog.from_microsoft_csv(text)


def test_refresh_from_file_reports_counts_and_overrides_the_package(
    microsoft_csv: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    target = data_dir / "sku_names.csv"

    first = refresh_sku_names(str(microsoft_csv), target)
    # Compared with the packaged table: SPB and O365_BUSINESS are identical, the made-up RSO row
    # is new, Rooms Pro differs (made-up names), and the package's other 616 SKUs are absent.
    assert (first.total, first.new, first.changed, first.removed) == (4, 1, 1, 616)

    microsoft_csv.write_text(
        MICROSOFT_CSV.replace("Teams Rooms \u2013 Pro", "Rooms Pro 2"), "utf-8"
    )
    second = refresh_sku_names(str(microsoft_csv), target)
    assert (second.total, second.new, second.changed, second.removed) == (4, 0, 1, 0)

    catalog = SkuCatalog.load(data_dir=data_dir)
    assert len(catalog) == 620  # the refreshed table overrides, the package still fills gaps
    assert catalog.name_for("4cde982a-ede4-4409-9ae6-b003453c8ea6", None)[0] == "Rooms Pro 2"
    assert not list(data_dir.glob(".*"))  # no temp files left behind


@pytest.fixture
def served_csv(microsoft_csv: Path) -> Iterator[str]:
    directory = str(microsoft_csv.parent)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=directory, **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield f"http://127.0.0.1:{port}/{microsoft_csv.name.replace(' ', '%20')}"
    finally:
        server.shutdown()
        server.server_close()


def test_refresh_from_a_loopback_url(served_csv: str, tmp_path: Path) -> None:
    report = refresh_sku_names(served_csv, tmp_path / "sku_names.csv")
    assert report.total == 4
    assert SkuCatalog.from_table((tmp_path / "sku_names.csv").read_text("utf-8")).get(SPB)


def test_refresh_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="plain http"):
        refresh_sku_names("http://download.microsoft.com/x.csv", tmp_path / "t.csv")


def test_refresh_of_a_malformed_csv_keeps_the_old_table(tmp_path: Path) -> None:
    target = tmp_path / "sku_names.csv"
    target.write_text(f"sku_id,sku_part_number,product_name\n{SPB},SPB,Kept\n", "utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("Name,Id\nx,y\n", "utf-8")

    with pytest.raises(CatalogError, match="missing column"):
        refresh_sku_names(str(bad), target)
    assert "Kept" in target.read_text("utf-8")
