"""The assets under `dg.materialize`, on stub Microsoft clients and a real DuckDB warehouse."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.defs.assets import customers, license_facts, partner_token, subscribed_skus
from sync365_pipeline.defs.checks import tenants_synced
from sync365_pipeline.defs.resources import WarehouseResource
from sync365_pipeline.licensing.access_report import ENABLE_CONSENT_FIX
from sync365_pipeline.microsoft import ConsentRevoked, RefreshTokenExpired
from sync365_pipeline.warehouse import TenantStatusRow, Warehouse
from sync365_pipeline_tests.access_seed import Access, write_access

from .stubs import BUSINESS_STANDARD, E3, StubMicrosoft, StubTenant, partner_account

PARTNER = "5b7a3c1e-0f4d-4c55-9d1a-2f8e6b0c9a11"
SECOND_PARTNER = "6c8b4d2f-1a5e-4d66-8e2b-3a9f7c1d0b22"
ALPHA = "11111111-1111-4111-8111-111111111111"
BETA = "22222222-2222-4222-8222-222222222222"
GAMMA = "33333333-3333-4333-8333-333333333333"
DELTA = "44444444-4444-4444-8444-444444444444"


def tenants() -> list[StubTenant]:
    """Three customers; Beta revoked the partner app's consent."""
    return [
        StubTenant(ALPHA, "Alpha Dental", {E3: (25, 22), BUSINESS_STANDARD: (10, 4)}),
        StubTenant(
            BETA,
            "Beta Logistics",
            {E3: (5, 5)},
            failure=ConsentRevoked("Consent was revoked.", code="AADSTS65001", tenant_id=BETA),
        ),
        StubTenant(GAMMA, "Gamma Retail", {BUSINESS_STANDARD: (3, 1)}),
    ]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    instance = dg.DagsterInstance.ephemeral()
    yield instance
    instance.dispose()


@pytest.fixture
def duckdb_path(tmp_path: Path) -> Path:
    return tmp_path / "sync365.duckdb"


def materialize(
    assets: Sequence[dg.AssetsDefinition | dg.AssetChecksDefinition],
    microsoft: StubMicrosoft,
    duckdb_path: Path,
    instance: dg.DagsterInstance,
    **kwargs: Any,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources={
            "microsoft": microsoft,
            "warehouse": WarehouseResource(duckdb_path=str(duckdb_path)),
        },
        instance=instance,
        raise_on_error=False,
        **kwargs,
    )


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def metadata(
    result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition, key: str | None = None
) -> dict[str, Any]:
    """The step's metadata: one materialization per run, whatever the number of tenants (`key`
    names the one asset of a multi-asset)."""
    return {name: value.value for name, value in _metadata_values(result, asset, key).items()}


def _metadata_values(
    result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition, key: str | None
) -> dict[str, dg.MetadataValue]:
    wanted = dg.AssetKey(key) if key else asset.key
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == wanted]
    return dict(event.materialization.metadata)


def plotted(
    result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition, key: str | None = None
) -> dict[str, int]:
    """The step's integer metadata: what Dagster plots over the runs of an asset."""
    return {
        name: value.value
        for name, value in _metadata_values(result, asset, key).items()
        if isinstance(value, dg.IntMetadataValue)
    }


def test_customers_lists_each_tenant_it_finds_what_is_new_and_what_departed(
    tmp_path: Path, duckdb_path: Path, instance: dg.DagsterInstance
) -> None:
    account = partner_account("contoso", PARTNER, tmp_path, tenants()[:2])
    microsoft = StubMicrosoft(account)

    first = materialize([partner_token, customers], microsoft, duckdb_path, instance)
    account.tenants.append(tenants()[2])
    account.tenants.pop(0)  # Alpha leaves
    second = materialize([customers], microsoft, duckdb_path, instance)

    assert first.success
    assert second.success
    assert metadata(first, customers)["new"] == [
        f"Alpha Dental ({ALPHA})",
        f"Beta Logistics ({BETA})",
    ]
    assert metadata(second, customers)["new"] == [f"Gamma Retail ({GAMMA})"], "named, with its id"
    assert metadata(second, customers)["departed"] == [f"Alpha Dental ({ALPHA})"]
    assert metadata(second, customers)["returned"] == []
    listed = "SELECT tenant_id, display_name, relationship FROM customers ORDER BY 1"
    assert rows(duckdb_path, listed) == [
        (ALPHA, "Alpha Dental", "reseller"),
        (BETA, "Beta Logistics", "reseller"),
        (GAMMA, "Gamma Retail", "reseller"),
    ]
    assert rows(duckdb_path, "SELECT status, mfa FROM partner_status") == [("ok", True)]
    assert microsoft.closed == ["contoso", "contoso", "contoso"], "each client is closed"


def test_subscribed_skus_records_one_status_per_tenant_and_a_failing_tenant_stops_no_other(
    tmp_path: Path, duckdb_path: Path, instance: dg.DagsterInstance
) -> None:
    microsoft = StubMicrosoft(partner_account("contoso", PARTNER, tmp_path, tenants()))
    assert materialize([partner_token, customers], microsoft, duckdb_path, instance).success

    result = materialize([subscribed_skus, tenants_synced], microsoft, duckdb_path, instance)

    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "tenants_synced"
    assert not check.passed, "a tenant that lost consent fails the check"
    assert check.metadata["failing_tenants"].value == 1
    assert "Beta Logistics" in check.metadata["failing"].value
    assert check.description == "1 of 3 active tenants failing: Beta Logistics (consent_revoked)."
    assert metadata(result, subscribed_skus, "subscribed_skus")["statuses"] == {
        "ok": 2,
        "consent_revoked": 1,
    }
    assert plotted(result, subscribed_skus, "subscribed_skus").items() >= {
        ("ok_tenants", 2),
        ("failing_tenants", 1),
    }
    assert rows(
        duckdb_path,
        "SELECT tenant_id, status, error_code FROM tenant_status ORDER BY tenant_id",
    ) == [(ALPHA, "ok", None), (BETA, "consent_revoked", "AADSTS65001"), (GAMMA, "ok", None)]
    stored = "SELECT DISTINCT tenant_id FROM raw_subscribed_skus ORDER BY 1"
    assert rows(duckdb_path, stored) == [(ALPHA,), (GAMMA,)]


def test_license_facts_writes_exactly_what_the_clients_served(
    tmp_path: Path, duckdb_path: Path, instance: dg.DagsterInstance
) -> None:
    served = tenants()
    microsoft = StubMicrosoft(partner_account("contoso", PARTNER, tmp_path, served))
    assert materialize([partner_token, customers], microsoft, duckdb_path, instance).success

    result = materialize(
        [subscribed_skus, license_facts],
        microsoft,
        duckdb_path,
        instance,
    )

    assert result.success
    expected = sorted(
        (tenant.tenant_id, sku_id, part_number, enabled, consumed)
        for tenant in served
        if tenant.failure is None
        for (sku_id, part_number), (enabled, consumed) in tenant.skus.items()
    )
    facts = rows(
        duckdb_path,
        "SELECT tenant_id, sku_id, sku_part_number, enabled_units, consumed_units "
        "FROM license_facts ORDER BY ALL",
    )
    assert facts == expected
    assert metadata(result, license_facts)["rows_written"] == len(expected)
    # Alpha's E3 25 (22 used) and Business Standard 10 (4), Gamma's Business Standard 3 (1).
    assert plotted(result, license_facts).items() >= {
        ("licensed_units", 38),
        ("consumed_units", 27),
        ("unused_paid_units", 11),
    }


def test_an_account_that_cannot_sign_in_is_recorded_and_the_other_is_synced(
    tmp_path: Path, duckdb_path: Path, instance: dg.DagsterInstance
) -> None:
    expired = RefreshTokenExpired("The partner refresh token expired.", code="AADSTS700082")
    microsoft = StubMicrosoft(
        partner_account("contoso", PARTNER, tmp_path, tenants()),
        partner_account(
            "adventureworks",
            SECOND_PARTNER,
            tmp_path,
            [StubTenant(DELTA, "Delta Bakery")],
            sign_in_failure=expired,
        ),
    )

    result = materialize([partner_token, customers], microsoft, duckdb_path, instance)

    assert result.success
    assert metadata(result, partner_token)["accounts_failed"] == ["adventureworks"]
    assert rows(duckdb_path, "SELECT count(*) FROM customers") == [(3,)]
    statuses = "SELECT DISTINCT partner_tenant_id, status, error_code FROM partner_status"
    assert sorted(rows(duckdb_path, statuses)) == [
        (PARTNER, "ok", None),
        (SECOND_PARTNER, "refresh_token_expired", "AADSTS700082"),
    ], "each step records the failed account, and goes on with the other"


def test_a_single_account_that_cannot_sign_in_fails_the_run_with_the_remedy(
    tmp_path: Path, duckdb_path: Path, instance: dg.DagsterInstance
) -> None:
    expired = RefreshTokenExpired("The partner refresh token expired.", code="AADSTS700082")
    microsoft = StubMicrosoft(
        partner_account("contoso", PARTNER, tmp_path, tenants(), sign_in_failure=expired)
    )

    result = materialize([partner_token], microsoft, duckdb_path, instance)

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert "Account contoso: The partner refresh token expired." in description
    assert "sync365 consent" in description
    assert rows(duckdb_path, "SELECT status FROM partner_status") == [("refresh_token_expired",)]


def test_customers_metadata_summarises_the_last_syncs_access(
    tmp_path: Path, duckdb_path: Path, instance: dg.DagsterInstance
) -> None:
    microsoft = StubMicrosoft(partner_account("contoso", PARTNER, tmp_path, tenants()[:2]))
    assert materialize([partner_token, customers], microsoft, duckdb_path, instance).success
    warehouse = Warehouse(duckdb_path)
    checked = datetime.now(UTC) - timedelta(hours=1)
    warehouse.record_tenant_statuses(
        [
            TenantStatusRow(PARTNER, ALPHA, checked, TenantStatus.OK),
            TenantStatusRow(PARTNER, BETA, checked, TenantStatus.CONSENT_REVOKED, "AADSTS65001"),
        ]
    )
    write_access(
        warehouse,
        [Access(ALPHA, checked, "granted"), Access(BETA, checked, "disabled")],
        PARTNER,
    )

    shown = metadata(materialize([customers], microsoft, duckdb_path, instance), customers)

    assert (
        shown["reachable_via_graph"],
        shown["reachable_via_partner_center"],
        shown["not_reachable"],
        shown["reachable_tenants"],
    ) == (1, 0, 1, 1)
    table = shown["access"].splitlines()
    assert [cell.strip() for cell in table[0].strip("|").split("|")] == [
        "customer",
        "reachable",
        "why",
        "fix",
    ]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert rows == [
        ["Beta Logistics", "NO", "no app consent (auto-consent is off)", ENABLE_CONSENT_FIX],
        [
            "Alpha Dental",
            "yes, Graph",
            f"app consent granted automatically on {checked:%Y-%m-%d}",
            "",
        ],
    ]


def test_before_any_audit_the_summary_is_empty(
    tmp_path: Path, duckdb_path: Path, instance: dg.DagsterInstance
) -> None:
    microsoft = StubMicrosoft(partner_account("contoso", PARTNER, tmp_path, tenants()))

    result = materialize([partner_token, customers], microsoft, duckdb_path, instance)

    shown = metadata(result, customers)
    assert shown["access"] == "_none_"
    assert (shown["reachable_via_graph"], shown["not_reachable"]) == (0, 0)
