"""Vocabulary shared by the Microsoft clients, the normalizer, the warehouse and the Dagster layer.

Kept free of I/O so every layer can import it without pulling in another layer.
"""

from __future__ import annotations

from enum import StrEnum


class TenantStatus(StrEnum):
    """Outcome of one sync attempt for one customer tenant (the `tenant_status.status` column)."""

    OK = "ok"
    CONSENT_REVOKED = "consent_revoked"
    ACCESS_REMOVED = "access_removed"
    MFA_REQUIRED = "mfa_required"
    BLOCKED = "blocked"
    TENANT_GONE = "tenant_gone"
    THROTTLED = "throttled"
    ERROR = "error"

    @property
    def is_access_loss(self) -> bool:
        """Statuses the consent sensor flags: access that a human must restore."""
        return self in ACCESS_LOSS_STATUSES


ACCESS_LOSS_STATUSES = frozenset(
    {
        TenantStatus.CONSENT_REVOKED,
        TenantStatus.ACCESS_REMOVED,
        TenantStatus.MFA_REQUIRED,
        TenantStatus.BLOCKED,
    }
)
