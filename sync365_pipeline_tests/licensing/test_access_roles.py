"""The GDAP role audit's arithmetic: only active assignments grant, any licence-reading role is
enough, and odd records are ignored rather than fatal."""

from __future__ import annotations

from sync365_pipeline.licensing.access import can_read_licenses, granted_roles

DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"


def assignment(status: str, *roles: str) -> dict[str, object]:
    return {
        "status": status,
        "accessDetails": {"unifiedRoles": [{"roleDefinitionId": role} for role in roles]},
    }


def test_only_active_assignments_grant_roles() -> None:
    roles = granted_roles(
        [
            assignment("active", EXCHANGE_ADMIN, DIRECTORY_READERS.upper()),
            assignment("pending", GLOBAL_READER),
            assignment("active", EXCHANGE_ADMIN),
            "not an assignment",  # type: ignore[list-item]
            {"status": "active", "accessDetails": {"unifiedRoles": "nope"}},
        ]
    )
    assert roles == tuple(sorted([EXCHANGE_ADMIN, DIRECTORY_READERS]))
    assert can_read_licenses(roles)


def test_exchange_administrator_alone_cannot_read_licenses() -> None:
    assert not can_read_licenses(granted_roles([assignment("active", EXCHANGE_ADMIN)]))
    assert not can_read_licenses(())
