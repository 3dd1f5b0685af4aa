"""`python -m sync365_pipeline.catalog SOURCE TARGET`: derive the SKU table from Microsoft's CSV."""

from __future__ import annotations

import sys
from pathlib import Path

from sync365_pipeline.catalog.skus import refresh_sku_names


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report = refresh_sku_names(argv[0], Path(argv[1]))
    print(
        f"{report.target}: {report.total} SKUs "
        f"({report.new} new, {report.changed} changed, {report.removed} removed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
