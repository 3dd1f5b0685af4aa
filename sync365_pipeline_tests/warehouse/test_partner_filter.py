"""The readers that take a partner: its rows only when given one, every partner's without."""

from __future__ import annotations

from datetime import datetime

import pytest

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.normalize import customers_frame
from sync365_pipeline.warehouse import TenantStatusRow, Warehouse
from sync365_pipeline_tests.samples import CONTOSO, FABRIKAM, NORTHWIND, OTHER_PARTNER, PARTNER

AT = datetime(2026, 7, 1, 5)


@pytest.fixture
def two_partners(warehouse: Warehouse) -> Warehouse:
    """PARTNER has Contoso and Fabrikam, OTHER_PARTNER has Northwind; each tenant synced ok."""
    for partner, tenants in ((PARTNER, [CONTOSO, FABRIKAM]), (OTHER_PARTNER, [NORTHWIND])):
        listing = customers_frame(partner, [], [], [{"customerId": t} for t in tenants]).frame
        warehouse.upsert_customers(partner, listing, AT)
        warehouse.record_tenant_statuses(
            [TenantStatusRow(partner, tenant, AT, TenantStatus.OK) for tenant in tenants]
        )
    return warehouse


@pytest.mark.parametrize(
    ("partner", "tenants"),
    [
        (PARTNER, sorted([CONTOSO, FABRIKAM])),
        (OTHER_PARTNER, [NORTHWIND]),
        (None, sorted([CONTOSO, FABRIKAM, NORTHWIND])),
        ("33333333-3333-3333-3333-333333333333", []),
    ],
)
def test_each_reader_keeps_the_given_partners_tenants(
    two_partners: Warehouse, partner: str | None, tenants: list[str]
) -> None:
    assert two_partners.active_tenants(partner) == tenants
    assert two_partners.latest_tenant_statuses(partner)["tenant_id"].tolist() == tenants
    assert sorted(two_partners.tenant_health(partner)["tenant_id"]) == tenants
    summary = two_partners.status_summary(partner)
    assert summary["tenants"].sum() == len(tenants)
    assert set(summary["status"]) == ({"ok"} if tenants else set())
