"""Deterministic synthetic customers for large scenarios (10,000 tenants in well under a second).

Everything comes from `random.Random(seed)` (subscriptions from a second one seeded from it), so a
seed always yields the same tenants, names, domains, SKUs, unit counts, subscriptions,
relationships and faults. Models are built with `model_construct`
(no validation): the generator only produces valid values, and validating 10,000 tenants would
dominate start-up.
"""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

from sync365_pipeline.simulator.catalog import FREE_PART_NUMBERS, SkuCatalog
from sync365_pipeline.simulator.scenario import (
    DIRECTORY_READERS_ROLE,
    LICENSE_ADMINISTRATOR_ROLE,
    AccessFault,
    Customer,
    GdapRelationship,
    Generate,
    SkuAssignment,
    SubscriptionSpec,
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


def generate_customers(spec: Generate, catalog: SkuCatalog, taken: set[str]) -> list[Customer]:
    """`spec.count` customers whose tenant ids and domains avoid those in `taken` (lower case)."""
    rng = random.Random(spec.seed)
    # Subscriptions draw from their own generator, so the rest of the world stays as it was.
    subscription_rng = random.Random(f"{spec.seed}/subscriptions")
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
            if product.part_number in FREE_PART_NUMBERS:
                enabled = 10_000
                consumed = rng.randint(0, 40)
            else:
                enabled = max(1, int(rng.lognormvariate(2.3, 1.0)))
                consumed = min(
                    enabled + rng.choice((0, 0, 0, 1)), int(enabled * rng.uniform(0.5, 1.0))
                )
            free = product.part_number in FREE_PART_NUMBERS
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
                    subscriptions=[] if free else _subscriptions(subscription_rng, enabled),
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


def _subscriptions(rng: random.Random, enabled: int) -> list[SubscriptionSpec]:
    """The subscriptions behind a paid SKU's enabled units: mostly this partner's NCE annual
    terms billed monthly, at any point of their term; some monthly, billed yearly, three-year,
    legacy, not renewing, on trial, or partly bought from another reseller or directly."""
    shape = rng.random()
    fields: dict[str, Any] = {"term_started_days_ago": rng.randrange(365)}
    if shape < 0.12:
        fields = {"term": "P1M", "term_started_days_ago": rng.randrange(28)}
    elif shape < 0.17:
        fields["billing_cycle"] = "annual"
    elif shape < 0.19:
        fields = {
            "term": "P3Y",
            "billing_cycle": rng.choice(("annual", "triennial")),
            "term_started_days_ago": rng.randrange(1095),
        }
    elif shape < 0.22:
        fields["commerce"] = "legacy"
    elif shape < 0.24:
        fields["auto_renew"] = False
    elif shape < 0.26 and enabled <= 25:
        fields = {"trial": True, "term": "P1M", "renewals": 0, "term_started_days_ago": 10}
    elif shape < 0.30 and enabled >= 3:
        seller = rng.choice(("other_partner", "customer"))
        elsewhere = SubscriptionSpec.model_construct(**fields, seller=seller, quantity=enabled // 3)
        return [
            elsewhere,
            SubscriptionSpec.model_construct(term_started_days_ago=rng.randrange(365)),
        ]
    return [SubscriptionSpec.model_construct(**fields)]
