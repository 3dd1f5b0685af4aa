"""Every simulator scenario the tests start from, and the names of their tenants.

Two families, as plain dicts (JSON-able; `simulator_factory` validates them):
- `pipeline_scenario`: a partner with three named customers that differ in SKUs, DAP and GDAP,
  on small pages; the pipeline, command and sensor tests sync it.
- `uniform_scenario`: a partner with three customers of the same shape (three SKUs, active GDAP);
  the simulator and Microsoft client tests call its endpoints directly.
No scenario throttles or adds latency by default: a test about throttling adds it (`add_fault`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from sync365_pipeline_tests.samples import POWER_BI_PRO

Json = dict[str, Any]

# -- the pipeline family ---------------------------------------------------------------------

PARTNER: Json = {
    "tenant_id": "5b7a3c1e-0f4d-4c55-9d1a-2f8e6b0c9a11",
    "domain": "fourthcoffeepartners.onmicrosoft.com",
    "client_id": "0c7e9d9a-6a53-4b1e-9f3e-8b1c2d3e4f50",
    "client_secret": "test-secret-value-123",
    "user_upn": "agent@fourthcoffeepartners.onmicrosoft.com",
    "refresh_token": "1.test-seed-refresh-token",
}
HEALTHY_A = "11111111-1111-4111-8111-111111111111"  # Alpha Dental: DAP + GDAP ending in 200 days
HEALTHY_B = "22222222-2222-4222-8222-222222222222"  # Beta Logistics: GDAP ending in 20 days
HEALTHY_C = "33333333-3333-4333-8333-333333333333"  # Gamma Realty: DAP only, one SKU
THROTTLE_TWICE: Json = {"type": "throttle", "times": 2, "retry_after": 1}

_PIPELINE_CUSTOMERS: dict[str, Json] = {
    HEALTHY_A: {
        "tenant_id": HEALTHY_A,
        "display_name": "Alpha Dental",
        "default_domain": "alphadental.onmicrosoft.com",
        "dap": True,
        "gdap_relationships": [{"ends_in_days": 200}],
        "skus": [
            {"part_number": "SPB", "enabled": 40, "consumed": 37},
            {"part_number": "FLOW_FREE", "enabled": 10000, "consumed": 12},
            {"part_number": "POWER_BI_PRO", "enabled": 0, "consumed": 3, "suspended": 5},
        ],
    },
    HEALTHY_B: {
        "tenant_id": HEALTHY_B,
        "display_name": "Beta Logistics",
        "default_domain": "betalogistics.onmicrosoft.com",
        "gdap_relationships": [{"ends_in_days": 20}],
        "skus": [
            {"part_number": "SPE_E3", "enabled": 120, "consumed": 104, "warning": 5},
            {"part_number": "EMSPREMIUM", "enabled": 20, "consumed": 9},
            {"part_number": "VISIOCLIENT", "enabled": 3, "consumed": 1},
        ],
    },
    HEALTHY_C: {
        "tenant_id": HEALTHY_C,
        "display_name": "Gamma Realty",
        "default_domain": "gammarealty.onmicrosoft.com",
        "dap": True,
        "skus": [{"part_number": "O365_BUSINESS", "enabled": 14, "consumed": 11}],
    },
}

SECOND_PARTNER: Json = {
    **PARTNER,
    "tenant_id": "6c8b4d2f-1a5e-4d66-8e2b-3a9f7c1d0b22",
    "domain": "adventureworksmsp.onmicrosoft.com",
    "client_id": "1d8f0e0b-7b64-4c2f-a04f-9c2d3e4f5061",
    "client_secret": "second-partner-secret-456",
    "refresh_token": "1.second-partner-seed-token",
}
SECOND_CUSTOMER = "44444444-4444-4444-8444-444444444444"
DIRECT_TENANT = "55555555-5555-4555-8555-555555555555"


def pipeline_scenario(
    *tenants: str,
    partner: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Json:
    """`PARTNER` with the named customers (all three by default), in pages of two.

    `partner` changes fields of the partner (e.g. `{"mfa": False}`), `settings` the
    simulator's settings.
    """
    return {
        "name": "pipeline-test",
        "partner": {**copy.deepcopy(PARTNER), **(partner or {})},
        "settings": {"page_size_customers": 2, "page_size_graph": 2, **(settings or {})},
        "customers": [
            copy.deepcopy(_PIPELINE_CUSTOMERS[tenant]) for tenant in tenants or _PIPELINE_CUSTOMERS
        ],
    }


def with_direct_tenant_scenario() -> Json:
    """The pipeline scenario plus a tenant that is not a customer but runs the app itself."""
    scenario = pipeline_scenario()
    scenario["customers"].append(
        {
            "tenant_id": DIRECT_TENANT,
            "display_name": "Direct Manufacturing",
            "default_domain": "directmanufacturing.onmicrosoft.com",
            "in_partner_center": False,
            "skus": [{"part_number": "SPE_E5", "enabled": 35, "consumed": 33}],
        }
    )
    return scenario


def second_partner_scenario() -> Json:
    """Another partner (its own simulator) with one DAP customer."""
    return {
        "name": "second-partner",
        "partner": copy.deepcopy(SECOND_PARTNER),
        "customers": [
            {
                "tenant_id": SECOND_CUSTOMER,
                "display_name": "Delta Bakery",
                "default_domain": "deltabakery.onmicrosoft.com",
                "dap": True,
                "skus": [{"part_number": "O365_BUSINESS_ESSENTIALS", "enabled": 6, "consumed": 5}],
            }
        ],
    }


ENDING_GDAP = (
    "66666666-6666-4666-8666-666666666666"  # Epsilon Clinic: GDAP ends in 9 days, no auto-extend
)
ENDED_GDAP = "77777777-7777-4777-8777-777777777777"  # Zeta Foods: GDAP ended 3 days ago; DAP still
SECRET_ENDING_IN_DAYS = 20


def expiring_access_scenario() -> Json:
    """The pipeline scenario (Beta Logistics' GDAP ends in 20 days but extends itself) plus a
    customer whose GDAP ends in 9 days without auto-extend and one whose GDAP has ended; the
    app's client secret in use ends in `SECRET_ENDING_IN_DAYS` days, an old one ended."""
    scenario = pipeline_scenario(
        partner={
            "password_credentials": [
                {"display_name": "sync365 current", "ends_in_days": SECRET_ENDING_IN_DAYS},
                {"display_name": "sync365 old", "hint": "Zq8", "ends_in_days": -45},
            ]
        }
    )
    scenario["customers"] += [
        {
            "tenant_id": ENDING_GDAP,
            "display_name": "Epsilon Clinic",
            "default_domain": "epsilonclinic.onmicrosoft.com",
            "gdap_relationships": [{"ends_in_days": 9, "auto_extend_duration": "PT0S"}],
            "skus": [{"part_number": "SPB", "enabled": 8, "consumed": 8}],
        },
        {
            "tenant_id": ENDED_GDAP,
            "display_name": "Zeta Foods",
            "default_domain": "zetafoods.onmicrosoft.com",
            "dap": True,
            "gdap_relationships": [{"ends_in_days": -3}],
            "skus": [{"part_number": "O365_BUSINESS", "enabled": 5, "consumed": 4}],
        },
    ]
    return scenario


def consent_scenario(code_lifetime_s: int) -> Json:
    """Alpha Dental and Beta Logistics; device-code polling every second, a code that lives
    `code_lifetime_s`."""
    return pipeline_scenario(
        HEALTHY_A,
        HEALTHY_B,
        settings={"device_code_interval_s": 1, "device_code_lifetime_s": code_lifetime_s},
    )


# -- the uniform family ----------------------------------------------------------------------

UNIFORM_PARTNER = "aaaaaaaa-0000-4000-8000-000000000001"
UNIFORM_CLIENT_ID = "bbbbbbbb-0000-4000-8000-000000000002"
UNIFORM_CLIENT_SECRET = "simulated-client-secret-value"
UNIFORM_SEED_REFRESH_TOKEN = "seed-refresh-token-0123456789abcdef"
UNIFORM_CUSTOMERS = [f"cccccccc-0000-4000-8000-{n:012d}" for n in range(1, 4)]


def uniform_scenario(
    *,
    partner: Mapping[str, Any] | None = None,
    faults: Mapping[str, list[Json]] | None = None,
    settings: Mapping[str, Any] | None = None,
    customers: Sequence[Json] = (),
) -> Json:
    """`UNIFORM_PARTNER` with `UNIFORM_CUSTOMERS`, each with an active GDAP relationship and
    three SKUs (one named by sku_id), plus `customers`; `faults` by tenant id (the partner's
    included)."""
    faults = faults or {}
    return {
        "name": "uniform-test",
        "partner": {
            "tenant_id": UNIFORM_PARTNER,
            "domain": "partner.onmicrosoft.com",
            "client_id": UNIFORM_CLIENT_ID,
            "client_secret": UNIFORM_CLIENT_SECRET,
            "user_upn": "agent@partner.onmicrosoft.com",
            "refresh_token": UNIFORM_SEED_REFRESH_TOKEN,
            "faults": faults.get(UNIFORM_PARTNER, []),
            **(partner or {}),
        },
        "settings": dict(settings or {}),
        "customers": [
            {
                "tenant_id": tenant_id,
                "display_name": f"Customer {index}",
                "default_domain": f"customer{index}.onmicrosoft.com",
                "gdap_relationships": [{"status": "active", "ends_in_days": 100}],
                "skus": [
                    {"part_number": "SPB", "enabled": 20 + index, "consumed": 10 + index},
                    {"sku_id": POWER_BI_PRO, "enabled": 5, "consumed": 3},
                    {"part_number": "FLOW_FREE", "enabled": 10000, "consumed": 2},
                ],
                "faults": faults.get(tenant_id, []),
            }
            for index, tenant_id in enumerate(UNIFORM_CUSTOMERS, start=1)
        ]
        + [copy.deepcopy(customer) for customer in customers],
    }


# -- changes to any scenario -----------------------------------------------------------------


def add_fault(scenario: Json, tenant_id: str, fault: Json) -> Json:
    """Give one customer of `scenario` a fault (e.g. `THROTTLE_TWICE`); returns the scenario."""
    (customer,) = [c for c in scenario["customers"] if c["tenant_id"] == tenant_id]
    customer.setdefault("faults", []).append(dict(fault))
    return scenario


# -- a customer for the users tests ------------------------------------------------------------

USERS_TENANT = "dddddddd-0000-4000-8000-000000000001"


def users_customer(
    skus: Mapping[str, tuple[int, int]],
    *,
    users: Mapping[str, Any] | None = None,
    tenant_id: str = USERS_TENANT,
) -> Json:
    """A GDAP customer (for `uniform_scenario(customers=...)`) with SKUs {part_number:
    (enabled, consumed)} and the knobs of its generated users (`UserMix` fields)."""
    return {
        "tenant_id": tenant_id,
        "display_name": "Users Test Ltd",
        "default_domain": f"users{tenant_id[-4:]}.onmicrosoft.com",
        "gdap_relationships": [{"ends_in_days": 100}],
        "skus": [
            {"part_number": part, "enabled": enabled, "consumed": consumed}
            for part, (enabled, consumed) in skus.items()
        ],
        "users": dict(users or {}),
    }


def outside_partner_center(scenario: Json, *tenant_ids: str) -> Json:
    """Make customers of `scenario` reachable only by GDAP or DAP (no reseller relationship in
    Partner Center), so that when Graph fails for them there is no Partner Center fallback and
    their last good facts stay (stale); returns the scenario."""
    for customer in scenario["customers"]:
        if customer["tenant_id"] in tenant_ids:
            customer.update(in_partner_center=False, relationship_to_partner="none")
    return scenario
