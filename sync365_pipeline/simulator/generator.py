"""Deterministic synthetic customers for large scenarios (10,000 tenants in well under a second).

Everything comes from one `random.Random(seed)`, so a seed always yields the same tenants, names,
domains, SKUs, unit counts, relationships and faults. Models are built with `model_construct`
(no validation): the generator only produces valid values, and validating 10,000 tenants would
dominate start-up.
"""

from __future__ import annotations

import random
import re
import uuid

from sync365_pipeline.simulator.catalog import SkuCatalog
from sync365_pipeline.simulator.scenario import (
    DIRECTORY_READERS_ROLE,
    LICENSE_ADMINISTRATOR_ROLE,
    AccessFault,
    Customer,
    GdapRelationship,
    Generate,
    SkuAssignment,
)

_NAME_STEMS = (
    "Northwind", "Fabrikam", "Tailspin", "Adatum", "Litware", "Proseware", "Wingtip", "Alpine",
    "Bluebird", "Cedar", "Harbor", "Summit", "Maple", "Granite", "Riverside", "Lakeshore",
    "Pioneer", "Evergreen", "Oakridge", "Silverline", "Redwood", "Beacon", "Crescent", "Falcon",
    "Keystone", "Meridian", "Orchard", "Pinnacle", "Quarry", "Sterling", "Trident", "Vantage",
)  # fmt: skip
_NAME_TRADES = (
    "Dental", "Legal", "Logistics", "Engineering", "Accounting", "Health", "Architects",
    "Builders", "Consulting", "Marketing", "Foods", "Motors", "Realty", "Insurance", "Energy",
    "Pharmacy", "Veterinary", "Travel", "Printing", "Plumbing", "Design", "Robotics",
)  # fmt: skip
_NAME_FORMS = ("Ltd", "LLC", "Inc", "Group", "Partners", "& Co", "GmbH", "BV", "Pty Ltd", "SAS")
_COUNTRIES = ("US", "US", "US", "GB", "CA", "AU", "DE", "NL", "FR", "NZ", "IE")

# Business SKUs most customers of an MSP hold, with the add-ons that come with them.
_COMMON_PARTS = (
    "O365_BUSINESS_ESSENTIALS", "O365_BUSINESS_PREMIUM", "SPB", "EXCHANGESTANDARD",
    "O365_BUSINESS", "SPE_E3", "ENTERPRISEPACK", "POWER_BI_PRO", "FLOW_FREE", "AAD_PREMIUM",
    "EXCHANGEARCHIVE_ADDON", "MCOEV", "VISIOCLIENT", "PROJECTPROFESSIONAL", "ATP_ENTERPRISE",
    "Microsoft_365_Copilot", "POWER_BI_STANDARD", "TEAMS_EXPLORATORY",
)  # fmt: skip
_FREE_PARTS = {"FLOW_FREE", "POWER_BI_STANDARD", "TEAMS_EXPLORATORY"}


def generate_customers(spec: Generate, catalog: SkuCatalog, taken: set[str]) -> list[Customer]:
    """`spec.count` customers whose tenant ids and domains avoid those in `taken` (lower case)."""
    rng = random.Random(spec.seed)
    products = [catalog.by_part_number(part) for part in _COMMON_PARTS]
    skus_pool = [product for product in products if product is not None]
    used = set(taken)
    customers = []
    for _ in range(spec.count):
        tenant_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        name = f"{rng.choice(_NAME_STEMS)} {rng.choice(_NAME_TRADES)} {rng.choice(_NAME_FORMS)}"
        slug = re.sub(r"[^a-z0-9]", "", name.lower())[:24]
        domain = f"{slug}.onmicrosoft.com"
        suffix = 1
        while domain in used or tenant_id in used:
            suffix += 1
            domain = f"{slug}{suffix}.onmicrosoft.com"
        used.update((tenant_id, domain))

        skus = []
        for product in rng.sample(skus_pool, rng.randint(spec.min_skus, spec.max_skus)):
            if product.part_number in _FREE_PARTS:
                enabled = 10_000
                consumed = rng.randint(0, 40)
            else:
                enabled = max(1, int(rng.lognormvariate(2.3, 1.0)))
                consumed = min(
                    enabled + rng.choice((0, 0, 0, 1)), int(enabled * rng.uniform(0.5, 1.0))
                )
            skus.append(
                SkuAssignment.model_construct(
                    sku_id=product.sku_id,
                    part_number=product.part_number,
                    enabled=enabled,
                    consumed=consumed,
                    suspended=0,
                    warning=rng.choice((0,) * 30 + (1,)),
                    locked_out=0,
                    capability_status=None,
                )
            )

        expired = rng.random() < spec.expired_gdap_rate
        relationship = GdapRelationship.model_construct(
            display_name=f"sync365 {slug[:40]}",
            status="active",
            duration="P730D",
            auto_extend_duration="P180D",
            end_date_time=None,
            ends_in_days=-rng.randint(1, 60) if expired else rng.randint(30, 700),
            roles=[DIRECTORY_READERS_ROLE, LICENSE_ADMINISTRATOR_ROLE],
        )
        in_partner_center = rng.random() >= spec.gdap_only_rate
        faults = []
        if spec.fault_types and rng.random() < spec.fault_rate:
            faults.append(
                AccessFault.model_construct(type=rng.choice(spec.fault_types), times=None)
            )
        customers.append(
            Customer.model_construct(
                tenant_id=tenant_id,
                display_name=name,
                default_domain=domain,
                country=rng.choice(_COUNTRIES),
                relationship_to_partner="reseller" if in_partner_center else "none",
                in_partner_center=in_partner_center,
                dap=False,
                gdap_relationships=[relationship],
                skus=skus,
                faults=faults,
            )
        )
    return customers
