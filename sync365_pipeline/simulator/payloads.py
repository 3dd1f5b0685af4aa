"""Scenario objects rendered as the JSON resources Graph and Partner Center return.

Ids that Microsoft would assign (subscription ids, relationship ids, account ids) are derived with
uuid5 from the tenant and SKU, so they are stable across requests, runs and servers.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sync365_pipeline.simulator.catalog import SkuCatalog
from sync365_pipeline.simulator.scenario import (
    AccessAssignment,
    Customer,
    GdapRelationship,
    Partner,
    SkuAssignment,
)

_NAMESPACE = uuid.UUID("6f1c3c1e-6d3a-4f3e-9a55-0b4f1c2d3e4f")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_applies_to(plan_name: str) -> str:
    """Graph's `appliesTo` of a service plan: the tenant-wide foundation plans apply to the
    Company, the rest to each User."""
    return "Company" if "FOUNDATION" in plan_name else "User"


def graph_subscribed_sku(
    tenant_id: str,
    account_name: str,
    sku: SkuAssignment,
    catalog: SkuCatalog,
    subscription_ids: list[str],
) -> dict[str, Any]:
    """One Graph `subscribedSku`; `subscription_ids` are its `companySubscription` ids."""
    product = catalog.by_id(sku.sku_id or "")
    assert product is not None, "SkuAssignment resolves its SKU in the catalog"
    status = sku.effective_capability_status()
    provisioning = "Success" if status in ("Enabled", "Warning") else "Disabled"
    return {
        "accountName": account_name,
        "accountId": stable_id(tenant_id, "billing-account"),
        "appliesTo": "User",
        "capabilityStatus": status,
        "consumedUnits": sku.consumed,
        "id": f"{tenant_id}_{product.sku_id}",
        "prepaidUnits": {
            "enabled": sku.enabled,
            "lockedOut": sku.locked_out,
            "suspended": sku.suspended,
            "warning": sku.warning,
        },
        "servicePlans": [
            {
                "servicePlanId": plan.id,
                "servicePlanName": plan.name,
                "provisioningStatus": provisioning,
                "appliesTo": plan_applies_to(plan.name),
            }
            for plan in product.service_plans
        ],
        "skuId": product.sku_id,
        "skuPartNumber": product.part_number,
        "subscriptionIds": subscription_ids,
    }


def partner_center_subscribed_sku(sku: SkuAssignment, catalog: SkuCatalog) -> dict[str, Any]:
    """One Partner Center `SubscribedSku` (totalUnits = active + warning, as documented)."""
    product = catalog.by_id(sku.sku_id or "")
    assert product is not None, "SkuAssignment resolves its SKU in the catalog"
    status = sku.effective_capability_status()
    total = sku.enabled + sku.warning
    return {
        "availableUnits": max(0, total - sku.consumed),
        "activeUnits": sku.enabled,
        "consumedUnits": sku.consumed,
        "suspendedUnits": sku.suspended,
        "totalUnits": total,
        "warningUnits": sku.warning,
        "productSku": {
            "id": product.sku_id,
            "name": product.display_name,
            "skuPartNumber": product.part_number,
            "targetType": "User",
            "licenseGroupId": "group1",
        },
        "servicePlans": [
            {
                "displayName": plan.display_name,
                "serviceName": plan.name,
                "id": plan.id,
                "capabilityStatus": status,
                "targetType": plan_applies_to(plan.name).replace("Company", "Tenant"),
            }
            for plan in product.service_plans
        ],
        "capabilityStatus": status,
        "attributes": {"objectType": "SubscribedSku"},
    }


def partner_center_customer(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.tenant_id,
        "commerceId": stable_id(customer.tenant_id, "commerce"),
        "companyProfile": {
            "tenantId": customer.tenant_id,
            "domain": customer.default_domain,
            "companyName": customer.display_name,
            "attributes": {"objectType": "CustomerCompanyProfile"},
        },
        "relationshipToPartner": customer.relationship_to_partner,
        "links": {
            "self": {"uri": f"/v1/customers/{customer.tenant_id}", "method": "GET", "headers": []}
        },
        "attributes": {"objectType": "Customer"},
    }


def gdap_relationship(
    customer: Customer, index: int, relationship: GdapRelationship, now: datetime
) -> dict[str, Any]:
    end = relationship.end(now)
    activated = end - timedelta(days=730)
    relationship_id = gdap_relationship_id(customer, index)
    return {
        "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
        "@odata.etag": f'W/"{stable_id(relationship_id, "etag")}"',
        "id": relationship_id,
        "displayName": relationship.display_name or f"{customer.display_name} admin relationship",
        "duration": relationship.duration,
        "customer": {"tenantId": customer.tenant_id, "displayName": customer.display_name},
        "accessDetails": {
            "unifiedRoles": [{"roleDefinitionId": role} for role in relationship.roles]
        },
        "status": relationship.effective_status(now),
        "autoExtendDuration": relationship.auto_extend_duration,
        "createdDateTime": iso(activated - timedelta(hours=1)),
        "lastModifiedDateTime": iso(activated),
        "activatedDateTime": iso(activated),
        "endDateTime": iso(end),
    }


def gdap_relationship_id(customer: Customer, index: int) -> str:
    """`{guid}-{guid}`, as Graph's relationship ids are."""
    return (
        f"{stable_id(customer.tenant_id, 'gdap', str(index))}-"
        f"{stable_id(customer.tenant_id, 'gdap-customer', str(index))}"
    )


def access_assignment(
    relationship_id: str, index: int, assignment: AccessAssignment, now: datetime
) -> dict[str, Any]:
    """One `delegatedAdminAccessAssignment` (microsoft-apis-more.md §5.2)."""
    assignment_id = stable_id(relationship_id, "assignment", str(index))
    created = now - timedelta(days=30)
    return {
        "@odata.type": "#microsoft.graph.delegatedAdminAccessAssignment",
        "@odata.etag": f'W/"{stable_id(assignment_id, "etag")}"',
        "id": assignment_id,
        "status": assignment.status,
        "createdDateTime": iso(created),
        "lastModifiedDateTime": iso(created + timedelta(hours=1)),
        "accessContainer": {
            "accessContainerId": assignment.group_id or stable_id(assignment_id, "group"),
            "accessContainerType": "securityGroup",
        },
        "accessDetails": {
            "unifiedRoles": [{"roleDefinitionId": role} for role in assignment.roles]
        },
    }


def application(partner: Partner, now: datetime) -> dict[str, Any]:
    """The partner's app registration with its client secrets (microsoft-apis-more.md §6);
    `secretText` is null on a GET, `hint` is a secret's first three characters."""
    credentials = []
    for index, credential in enumerate(partner.password_credentials):
        end = credential.end(now)
        credentials.append(
            {
                "customKeyIdentifier": None,
                "displayName": credential.display_name,
                "endDateTime": iso(end),
                "hint": credential.hint or partner.client_secret[:3],
                "keyId": credential.key_id or stable_id(partner.client_id, "secret", str(index)),
                "secretText": None,
                "startDateTime": iso(end - timedelta(days=730)),
            }
        )
    return {
        "id": stable_id(partner.client_id, "application"),
        "appId": partner.client_id,
        "displayName": partner.app_name,
        "passwordCredentials": credentials,
        "keyCredentials": [],
    }


def contract(customer: Customer) -> dict[str, Any]:
    """Graph `contract`: the legacy (DAP/reseller) partnership."""
    return {
        "id": stable_id(customer.tenant_id, "contract"),
        "contractType": "ResellerPartner",
        "customerId": customer.tenant_id,
        "defaultDomainName": customer.default_domain,
        "displayName": customer.display_name,
    }


def organization(
    tenant_id: str,
    display_name: str,
    domain: str,
    country: str,
    partner_tenant_type: str | None = None,
) -> dict[str, Any]:
    org: dict[str, Any] = {
        "id": tenant_id,
        "displayName": display_name,
        "countryLetterCode": country,
        "tenantType": "AAD",
        "createdDateTime": "2019-03-14T09:21:07Z",
        "verifiedDomains": [
            {
                "name": domain,
                "isDefault": True,
                "isInitial": True,
                "type": "Managed",
                "capabilities": "Email, OfficeCommunicationsOnline",
            }
        ],
        "technicalNotificationMails": [f"admin@{domain}"],
    }
    if partner_tenant_type is not None:
        org["partnerTenantType"] = partner_tenant_type
    return org


def partner_organization(partner: Partner) -> dict[str, Any]:
    return organization(
        partner.tenant_id,
        partner.display_name,
        partner.domain,
        "US",
        partner_tenant_type="ResellerPartnerDelegatedAdmin",
    )
