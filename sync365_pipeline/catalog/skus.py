"""The SKU name catalog: one row per SKU GUID (id, part number, product name).

Graph's `subscribedSkus` gives only ids and part numbers (`SPB`); people read product names
("Microsoft 365 Business Premium"). Microsoft publishes the mapping as the "Product names and
service plan identifiers for licensing" CSV, one row per (product, service plan). The package ships
its own derived table (`sku_names.csv`, one row per GUID) so it never needs the network or
/work/shared at run time; `refresh_sku_names` writes a newer table under the data dir, which then
takes precedence over the packaged one.

Refresh it with `sync365 refresh-sku-names [--from FILE_OR_URL]`; regenerate the packaged table
with `sync365 refresh-sku-names --from SOURCE --output sync365_pipeline/catalog/sku_names.csv`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import requests

from sync365_pipeline.core.settings import DATA_DIR

TABLE_FILE_NAME = "sku_names.csv"
MICROSOFT_CSV_URL = (
    "https://download.microsoft.com/download/e/3/e/e3e9faf2-f28b-490a-9ada-c6089a1fc5b0/"
    "Product%20names%20and%20service%20plan%20identifiers%20for%20licensing.csv"
)
TABLE_COLUMNS = ("sku_id", "sku_part_number", "product_name")
MICROSOFT_COLUMNS = ("GUID", "String_Id", "Product_Display_Name")
MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024  # the real file is about 1 MB; anything far bigger is not it
DOWNLOAD_TIMEOUT_S = 60.0
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

NAME_SOURCE_CATALOG = "catalog"
NAME_SOURCE_PART_NUMBER = "part_number"
NAME_SOURCE_SKU_ID = "sku_id"


class CatalogError(ValueError):
    """A SKU table or Microsoft CSV is unreadable; the message says which file and what is wrong."""


@dataclass(frozen=True)
class SkuName:
    sku_id: str
    sku_part_number: str
    product_name: str


@dataclass(frozen=True)
class RefreshReport:
    """What a refresh changed compared with the table it replaces (counts of SKU GUIDs)."""

    target: Path
    total: int
    new: int
    changed: int
    removed: int


class SkuCatalog:
    """SKU GUID -> part number and product name. Keys are lower-case GUIDs."""

    def __init__(self, skus: Iterable[SkuName] = ()) -> None:
        self._by_id: dict[str, SkuName] = {sku.sku_id: sku for sku in skus}
        by_name: dict[str, list[SkuName]] = {}
        for sku in self._by_id.values():
            by_name.setdefault(sku.product_name.casefold(), []).append(sku)
        # Only names that belong to one SKU: a shared name cannot tell which SKU is meant.
        self._by_name = {name: found[0] for name, found in by_name.items() if len(found) == 1}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, sku_id: str) -> SkuName | None:
        return self._by_id.get(sku_id.lower())

    def by_product_name(self, product_name: str) -> SkuName | None:
        """The one SKU of that display name (any case), e.g. a Partner Center offer's; None
        when no SKU or several have it."""
        return self._by_name.get(product_name.strip().casefold())

    def skus(self) -> list[SkuName]:
        """All entries sorted by GUID, so written tables diff cleanly."""
        return [self._by_id[key] for key in sorted(self._by_id)]

    def name_for(self, sku_id: str, part_number: str | None) -> tuple[str, str]:
        """Best display name and its source: the catalog, else the part number, else the id."""
        if sku := self.get(sku_id):
            return sku.product_name, NAME_SOURCE_CATALOG
        if part_number:
            return part_number, NAME_SOURCE_PART_NUMBER
        return sku_id, NAME_SOURCE_SKU_ID

    def overridden_by(self, newer: SkuCatalog) -> SkuCatalog:
        """This catalog with `newer`'s entries winning; SKUs only this one knows are kept."""
        return SkuCatalog([*self._by_id.values(), *newer._by_id.values()])

    @classmethod
    def load(cls, data_dir: Path | None = DATA_DIR) -> SkuCatalog:
        """The packaged table, overridden per GUID by a refreshed `<data_dir>/sku_names.csv`."""
        packaged_text = resources.files(__package__).joinpath(TABLE_FILE_NAME).read_text("utf-8")
        catalog = cls.from_table(packaged_text, origin=f"packaged {TABLE_FILE_NAME}")
        user_table = data_dir / TABLE_FILE_NAME if data_dir is not None else None
        if user_table is not None and user_table.is_file():
            user_text = user_table.read_text(encoding="utf-8-sig")
            catalog = catalog.overridden_by(cls.from_table(user_text, origin=str(user_table)))
        return catalog

    @classmethod
    def from_table(cls, text: str, *, origin: str = "SKU table") -> SkuCatalog:
        """Read the package's own format (`sku_id,sku_part_number,product_name`)."""
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        reader.fieldnames = _require_columns(reader.fieldnames, TABLE_COLUMNS, origin)
        return cls(
            _sku_name(row["sku_id"], row["sku_part_number"], row["product_name"], origin, line)
            for line, row in enumerate(reader, start=2)
        )

    @classmethod
    def from_microsoft_csv(cls, text_or_path: str | os.PathLike[str]) -> SkuCatalog:
        """One row per GUID from Microsoft's CSV: a `Path` is read as a file, a `str` is CSV text.

        The file repeats a product on every service-plan row and may start with a BOM; values can
        carry stray whitespace (a trailing no-break space on one GUID). When one GUID appears under
        two names (Microsoft keeps rows of renamed products, e.g. Power Virtual Agent / Copilot
        Studio), the first row wins.
        """
        if isinstance(text_or_path, str):
            text, origin = text_or_path, "Microsoft SKU CSV"
        else:
            path = Path(text_or_path)
            text, origin = path.read_text(encoding="utf-8-sig"), str(path)
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        reader.fieldnames = _require_columns(reader.fieldnames, MICROSOFT_COLUMNS, origin)
        by_id: dict[str, SkuName] = {}
        for line, row in enumerate(reader, start=2):
            if not any((value or "").strip() for value in row.values()):
                continue
            sku = _sku_name(
                row["GUID"], row["String_Id"], row["Product_Display_Name"], origin, line
            )
            by_id.setdefault(sku.sku_id, sku)
        if not by_id:
            raise CatalogError(f"{origin} has a header but no SKU rows.")
        return cls(by_id.values())

    def to_table(self) -> str:
        """The package's own CSV format, sorted by GUID."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TABLE_COLUMNS)
        writer.writerows((s.sku_id, s.sku_part_number, s.product_name) for s in self.skus())
        return out.getvalue()


def refresh_sku_names(
    source: str, target: Path, session: requests.Session | None = None
) -> RefreshReport:
    """Derive the SKU table from Microsoft's CSV at `source` (a path or an https URL) into `target`.

    The write is atomic (temp file + `os.replace`), so a reader never sees half a table. Plain http
    is refused except on loopback (a local test server). The report compares with the table being
    replaced, or with the packaged table when `target` does not exist yet.
    """
    fresh = SkuCatalog.from_microsoft_csv(_read_source(source, session))
    previous = (
        SkuCatalog.from_table(target.read_text(encoding="utf-8-sig"), origin=str(target))
        if target.is_file()
        else SkuCatalog.load(data_dir=None)
    )
    report = _compare(previous._by_id, fresh._by_id, target)
    _write_atomically(target, fresh.to_table())
    return report


def _read_source(source: str, session: requests.Session | None) -> str:
    parts = urlsplit(source)
    if parts.scheme not in ("http", "https"):
        path = Path(source)
        if not path.is_file():
            raise CatalogError(
                f"SKU CSV source {source} is neither an https URL nor a readable file."
            )
        return path.read_text(encoding="utf-8-sig")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise CatalogError(f"Refusing plain http for {source}: use the https URL.")
    http = session or requests.Session()
    try:
        with http.get(source, timeout=DOWNLOAD_TIMEOUT_S, stream=True) as response:
            response.raise_for_status()
            body = bytearray()
            for chunk in response.iter_content(chunk_size=64 * 1024):
                body.extend(chunk)
                if len(body) > MAX_DOWNLOAD_BYTES:
                    raise CatalogError(
                        f"{source} is larger than {MAX_DOWNLOAD_BYTES} bytes; not the SKU CSV."
                    )
    except requests.RequestException as exc:
        raise CatalogError(f"Could not download the SKU CSV from {source}: {exc}") from exc
    finally:
        if session is None:
            http.close()
    try:
        return bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{source} is not UTF-8 text: {exc}") from exc


def _compare(old: Mapping[str, SkuName], new: Mapping[str, SkuName], target: Path) -> RefreshReport:
    return RefreshReport(
        target=target,
        total=len(new),
        new=sum(1 for key in new if key not in old),
        changed=sum(1 for key, sku in new.items() if key in old and old[key] != sku),
        removed=sum(1 for key in old if key not in new),
    )


def _write_atomically(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w",
        encoding="utf-8",
        newline="",
        dir=target.parent,
        prefix=f".{target.name}.",
        delete=False,
    ) as tmp:
        tmp.write(text)
        tmp.flush()
        os.fsync(tmp.fileno())
    try:
        os.replace(tmp.name, target)
    except OSError:
        Path(tmp.name).unlink(missing_ok=True)
        raise


def _require_columns(
    found: Iterable[str] | None, required: Iterable[str], origin: str
) -> list[str]:
    """The header with whitespace stripped, or a `CatalogError` naming every missing column."""
    header = [name.strip() for name in found or ()]
    if missing := [name for name in required if name not in header]:
        raise CatalogError(
            f"{origin} is missing column(s) {', '.join(missing)}; "
            f"its header is {', '.join(header)[:300] or '(empty)'}."
        )
    return header


def _sku_name(
    sku_id: str | None, part_number: str | None, product_name: str | None, origin: str, line: int
) -> SkuName:
    guid = (sku_id or "").strip().lower()
    if not _GUID.fullmatch(guid):
        raise CatalogError(f"{origin} line {line}: the SKU GUID is not a GUID.")
    part = (part_number or "").strip()
    if not part:
        raise CatalogError(f"{origin} line {line}: SKU {guid} has no part number (String_Id).")
    return SkuName(
        sku_id=guid, sku_part_number=part, product_name=(product_name or "").strip() or part
    )
