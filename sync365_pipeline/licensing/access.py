"""What access the partner has in each customer: GDAP roles, CPV consent, end of access.

The vocabulary the sync, `sync365 status`, `sync365 doctor` and the flags share. The role ids are
Entra's built-in role templates (microsoft-apis-more.md §5.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

# The roles that can read a tenant's licences: the four Partner Center documents for subscribed
# SKUs (Directory Readers, Global Reader, User Administrator, License Administrator), and Global
# Administrator, which can do everything.
LICENSE_READING_ROLES: Mapping[str, str] = {
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "4d6ac14f-3453-41d0-bef9-a3e0c569773a": "License Administrator",
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
}


class CpvConsent(StrEnum):
    """What the sync did about the app's CPV consent in a customer (`customer_access`)."""

    GRANTED = "granted"  # the token was refused for want of consent; the sync granted it
    ALREADY_GRANTED = "already_granted"  # Partner Center says it exists already
    FAILED = "failed"  # granting it failed (the message says why and what to do)
    NOT_NEEDED = "not_needed"  # the customer's token was not refused for want of consent
    DISABLED = "disabled"  # refused for want of consent, and auto-consent is off


def granted_roles(assignments: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The role template ids that the *active* access assignments of a relationship grant
    (the relationship's own `accessDetails` is only the ceiling), sorted, each once. Records
    that are not assignments are ignored."""
    roles: set[str] = set()
    for assignment in assignments:
        if not isinstance(assignment, Mapping) or assignment.get("status") != "active":
            continue
        details = assignment.get("accessDetails")
        unified = details.get("unifiedRoles") if isinstance(details, Mapping) else None
        for role in unified if isinstance(unified, list) else ():
            if isinstance(role, Mapping) and isinstance(role.get("roleDefinitionId"), str):
                roles.add(role["roleDefinitionId"].lower())
    return tuple(sorted(roles))


def can_read_licenses(roles: Iterable[str]) -> bool:
    return any(role in LICENSE_READING_ROLES for role in roles)
