"""Each data-quality check against a real DuckDB file: good data passes, a seeded defect fails it,
and the result names the offending customer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from sync365_pipeline.catalog.skus import NAME_SOURCE_PART_NUMBER, NAME_SOURCE_SKU_ID
from sync365_pipeline.core.status import TenantStatus
from sync365_pipeline.licensing.normalize import customers_frame
from sync365_pipeline.warehouse import (
    CheckResultRow,
    TenantStatusRow,
    Warehouse,
    staged_files,
    write_stage,
)
from sync365_pipeline_tests.samples import CONTOSO, FABRIKAM, PARTNER, SPB, facts

UNNAMED = (NAME_SOURCE_PART_NUMBER, NAME_SOURCE_SKU_ID)
NAMES = {CONTOSO: "Contoso Dental", FABRIKAM: "Fabrikam Retail"}


@pytest.fixture
def now() -> datetime:
    """The test's moment, read once: its statuses and its day (UTC) agree even across midnight."""
    return datetime.now(UTC)


@pytest.fixture
def named(warehouse: Warehouse, now: datetime) -> Warehouse:
    """Two active customers, with their names."""
    listing = customers_frame(
        PARTNER,
        [
            {
                "id": tenant,
                "companyProfile": {"companyName": name},
                "relationshipToPartner": "reseller",
            }
            for tenant, name in NAMES.items()
        ],
        [],
        [],
    ).frame
    warehouse.upsert_customers(PARTNER, listing, now - timedelta(hours=1))
    return warehouse


def stage(warehouse: Warehouse, chunk: str, *tenants: str) -> list[str]:
    """What a chunk stages for `tenants` today (5 seats of SPB, 3 used): its fact files."""
    write_stage(
        warehouse.staging_dir("run"),
        chunk,
        statuses=[],
        raw_payloads=[],
        facts_by_tenant={
            tenant: facts(tenant, datetime.now(UTC).date(), {SPB: (5, 3)}) for tenant in tenants
        },
        partner_tenant_id=PARTNER,
    )
    return [stage["license_facts"] for stage in staged_files(warehouse.staging_dir("run"))]


def tampered(source: str, column_change: str) -> list[str]:
    """A copy of a staged fact file with one column changed on Fabrikam's row, as a chunk of
    another version (or a damaged file) would hand it to the writer."""
    target = str(Path(source).with_name("tampered.license_facts.parquet"))
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * REPLACE ({column_change}) FROM read_parquet(?)) TO '{target}'",
            [source],
        )
    return [target]


def test_staged_facts_of_every_chunk_pass_the_key_check_until_two_chunks_stage_one_tenant(
    named: Warehouse,
) -> None:
    good = stage(named, "a", CONTOSO) + stage(named, "b", FABRIKAM)[1:]
    passed = named.staged_fact_checks(good).unique_keys
    assert (passed.passed, passed.checked, passed.offending) == (True, 2, 0)

    repeated = stage(named, "c", FABRIKAM)
    failed = named.staged_fact_checks(repeated).unique_keys
    assert (failed.passed, failed.offending) == (False, 1)
    assert failed.examples[["customer", "tenant_id", "copies"]].values.tolist() == [
        ["Fabrikam Retail", FABRIKAM, 2]
    ]
    assert failed.summary == "1 of 3 staged fact keys appear more than once: Fabrikam Retail."
    assert "sync365 sync --failed" in str(failed.remedy)


def test_available_units_other_than_enabled_minus_consumed_fail_the_availability_check(
    named: Warehouse,
) -> None:
    (good,) = stage(named, "a", FABRIKAM)
    assert named.staged_fact_checks([good]).available_units.passed

    failed = named.staged_fact_checks(
        tampered(good, "available_units + 1 AS available_units")
    ).available_units
    assert (failed.passed, failed.offending) == (False, 1)
    assert failed.examples[
        ["customer", "enabled_units", "consumed_units", "available_units"]
    ].values.tolist() == [["Fabrikam Retail", 5, 3, 3]]


def test_a_negative_unit_count_fails_the_counts_check_and_over_assignment_does_not(
    named: Warehouse,
) -> None:
    (good,) = stage(named, "a", FABRIKAM)
    over_assigned = tampered(good, "1 AS enabled_units, 3 AS consumed_units, -2 AS available_units")
    assert named.staged_fact_checks(over_assigned).non_negative.passed, (
        "more used than bought is a fact"
    )

    failed = named.staged_fact_checks(tampered(good, "-1 AS suspended_units")).non_negative
    assert (failed.passed, failed.offending) == (False, 1)
    assert failed.examples["suspended_units"].tolist() == [-1]


def test_no_staged_facts_pass_every_staged_check(named: Warehouse) -> None:
    verdicts = named.staged_fact_checks([])
    for result in (verdicts.unique_keys, verdicts.available_units, verdicts.non_negative):
        assert (result.passed, result.checked) == (True, 0)


def ok(tenant: str, at: datetime) -> TenantStatusRow:
    return TenantStatusRow(PARTNER, tenant, at, TenantStatus.OK)


def test_an_active_customer_without_a_status_for_the_day_fails_the_status_check(
    named: Warehouse,
    now: datetime,
) -> None:
    today = now.date()
    named.record_tenant_statuses([ok(CONTOSO, now - timedelta(days=1)), ok(FABRIKAM, now)])
    failed = named.statuses_of_the_day(today)
    assert (failed.passed, failed.checked, failed.offending) == (False, 2, 1)
    assert failed.examples["customer"].tolist() == ["Contoso Dental"]

    named.record_tenant_statuses([ok(CONTOSO, now)])
    assert named.statuses_of_the_day(today).passed


def test_the_share_of_customers_reached_must_reach_the_threshold(
    named: Warehouse, now: datetime
) -> None:
    revoked = TenantStatusRow(PARTNER, FABRIKAM, now, TenantStatus.CONSENT_REVOKED, "AADSTS65001")
    named.record_tenant_statuses([ok(CONTOSO, now), revoked])

    reached = named.tenant_health().set_index("tenant_id")["reached"]
    assert reached.to_dict() == {CONTOSO: True, FABRIKAM: False}
    assert named.tenants_reached(0.5).passed, "one of two is half"
    failed = named.tenants_reached(0.9)
    assert (failed.passed, failed.checked, failed.offending) == (False, 2, 1)
    assert failed.summary.startswith("Reached 1 of 2 active customers (50%; at least 90% needed).")
    assert failed.examples[["customer", "status", "error_code"]].values.tolist() == [
        ["Fabrikam Retail", "consent_revoked", "AADSTS65001"]
    ]


def test_facts_older_than_the_allowed_age_fail_the_freshness_check_for_reached_customers(
    named: Warehouse,
    now: datetime,
) -> None:
    today = now.date()
    three_days_ago = today - timedelta(days=3)
    named.replace_license_facts(
        three_days_ago,
        {CONTOSO: facts(CONTOSO, three_days_ago, {SPB: (5, 3)})},
        partner_tenant_id=PARTNER,
    )
    named.replace_license_facts(
        today, {FABRIKAM: facts(FABRIKAM, today, {SPB: (5, 3)})}, partner_tenant_id=PARTNER
    )
    named.record_tenant_statuses([ok(CONTOSO, now - timedelta(days=3)), ok(FABRIKAM, now)])

    failed = named.facts_fresh(today, max_age_days=1)
    assert (failed.passed, failed.checked, failed.offending) == (False, 2, 1)
    assert failed.examples[["customer", "facts_as_of"]].astype(str).values.tolist() == [
        ["Contoso Dental", str(three_days_ago)]
    ]
    assert named.facts_fresh(today, max_age_days=3).passed

    unreachable = TenantStatusRow(PARTNER, CONTOSO, now, TenantStatus.ACCESS_REMOVED)
    named.record_tenant_statuses([unreachable])
    assert named.facts_fresh(today, max_age_days=1).passed, "stale because unreachable: not here"


def test_a_current_sku_named_only_by_its_part_number_fails_the_naming_check(
    named: Warehouse,
    now: datetime,
) -> None:
    today = now.date()
    named.record_tenant_statuses([ok(CONTOSO, now), ok(FABRIKAM, now)])
    named.replace_license_facts(
        today,
        {tenant: facts(tenant, today, {SPB: (5, 3)}) for tenant in NAMES},
        partner_tenant_id=PARTNER,
    )
    assert named.skus_named(UNNAMED).passed

    with duckdb.connect(str(named.path)) as con:  # a SKU the catalog did not know that day
        con.execute(
            "UPDATE license_facts SET product_name = sku_part_number, "
            "product_name_source = 'part_number' WHERE tenant_id = ?",
            [FABRIKAM],
        )
    failed = named.skus_named(UNNAMED)
    assert (failed.passed, failed.checked, failed.offending) == (False, 1, 1)
    assert failed.examples[["customer", "sku_part_number", "customers"]].values.tolist() == [
        ["Fabrikam Retail", "SPB", 1]
    ]
    assert "refresh-sku-names" in str(failed.remedy)


def test_each_checks_latest_evaluation_is_what_status_reads(
    warehouse: Warehouse, now: datetime
) -> None:
    def evaluation(sync_id: str, passed: bool, at: datetime) -> CheckResultRow:
        return CheckResultRow(
            sync_id,
            "subscribed_skus",
            "facts_unique_keys",
            passed,
            "ERROR",
            True,
            offending=0 if passed else 2,
            summary="s",
            remedy=None if passed else "r",
            checked_at=at,
        )

    warehouse.record_check_results([evaluation("first", False, now - timedelta(days=1))])
    warehouse.record_check_results([evaluation("second", True, now - timedelta(minutes=1))])
    warehouse.record_check_results([evaluation("second", False, now)])  # a step retry: replaces

    latest = warehouse.latest_check_results()
    assert latest[["sync_id", "passed", "offending"]].values.tolist() == [["second", False, 2]]
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM check_results").fetchone() == (2,)
