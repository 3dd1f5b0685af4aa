"""Derive the simulator's SKU catalog (`sku_catalog.json`) from Microsoft's licensing CSV.

One-off developer command; the simulator reads only the JSON it writes, so it runs without the CSV:

    python -m sync365_pipeline.simulator.build_catalog \
        /work/shared/data/product-names-and-service-plan-identifiers.csv

The curated list below is the SKUs an MSP's customers commonly hold (business and enterprise
suites, Exchange, security add-ons, Power BI, Teams, Copilot, free/viral SKUs).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

CATALOG_PATH = Path(__file__).with_name("sku_catalog.json")

CURATED_PART_NUMBERS = (
    "O365_BUSINESS_ESSENTIALS",
    "O365_BUSINESS_PREMIUM",
    "SPB",
    "O365_BUSINESS",
    "OFFICESUBSCRIPTION",
    "STANDARDPACK",
    "ENTERPRISEPACK",
    "ENTERPRISEPREMIUM",
    "Office_365_E3_(no_Teams)",
    "DESKLESSPACK",
    "SPE_E3",
    "Microsoft_365_E3_(no_Teams)",
    "SPE_E5",
    "M365_F1",
    "SPE_F1",
    "EXCHANGESTANDARD",
    "EXCHANGEENTERPRISE",
    "EXCHANGEDESKLESS",
    "EXCHANGEARCHIVE_ADDON",
    "EXCHANGE_S_ESSENTIALS",
    "EMS",
    "EMSPREMIUM",
    "AAD_PREMIUM",
    "AAD_PREMIUM_P2",
    "INTUNE_A",
    "ATP_ENTERPRISE",
    "THREAT_INTELLIGENCE",
    "MDE_SMB",
    "DEFENDER_ENDPOINT_P1",
    "POWER_BI_PRO",
    "PBI_PREMIUM_PER_USER",
    "POWER_BI_STANDARD",
    "FLOW_FREE",
    "VISIO_PLAN1_DEPT",
    "VISIOCLIENT",
    "PROJECTPROFESSIONAL",
    "MCOEV",
    "MCOMEETADV",
    "Teams_Ess",
    "TEAMS_EXPLORATORY",
    "Microsoft_Teams_EEA_New",
    "Microsoft_365_Copilot",
)


def build_catalog(csv_path: Path) -> list[dict[str, object]]:
    """One entry per curated SKU, its service plans sorted by name (the CSV's order varies)."""
    products: dict[str, dict[str, str]] = {}
    plans: dict[str, dict[str, dict[str, str]]] = {}
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            part_number = row["String_Id"]
            if part_number not in CURATED_PART_NUMBERS:
                continue
            products.setdefault(
                part_number,
                {
                    "sku_id": row["GUID"].lower(),
                    "part_number": part_number,
                    "display_name": row["Product_Display_Name"],
                },
            )
            plan_id = row["Service_Plan_Id"].lower()
            plans.setdefault(part_number, {})[plan_id] = {
                "id": plan_id,
                "name": row["Service_Plan_Name"],
                "display_name": row["Service_Plans_Included_Friendly_Names"],
            }
    missing = [part for part in CURATED_PART_NUMBERS if part not in products]
    if missing:
        raise SystemExit(f"these curated SKUs are not in {csv_path}: {', '.join(missing)}")
    return [
        {
            **products[part],
            "service_plans": sorted(plans[part].values(), key=lambda plan: plan["name"]),
        }
        for part in CURATED_PART_NUMBERS
    ]


def main(argv: list[str]) -> None:
    if len(argv) not in (1, 2):
        raise SystemExit("usage: python -m sync365_pipeline.simulator.build_catalog CSV [OUT]")
    out = Path(argv[1]) if len(argv) == 2 else CATALOG_PATH
    catalog = build_catalog(Path(argv[0]))
    out.write_text(json.dumps(catalog, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(catalog)} SKUs to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
