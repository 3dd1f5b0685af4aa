"""The data-quality checks of `Warehouse`: plain SQL, each returning a `QualityResult` with counts,
a few offending rows (customer names next to tenant ids) and what to do. Dagster runs them as asset
checks on every sync (defs/checks.py) and records each evaluation in `check_results`, which
`sync365 status` reads.

The facts a run staged are checked before the facts step promotes them: the chunk steps may run
in other processes or on other machines, and each chunk is checked on its own, so only here are
the files of every chunk seen together (a tenant staged by two chunks repeats its keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta

import duckdb
import pandas as pd

from sync365_pipeline.core.clock import utc_naive
from sync365_pipeline.warehouse.file import WarehouseFile, clip, insert_records
from sync365_pipeline.warehouse.rows import CheckResultRow

EXAMPLES = 5  # offending rows a result shows; its count covers them all
_NO_STAGED_FACTS = "SELECT NULL::VARCHAR AS partner_tenant_id, NULL::VARCHAR AS tenant_id LIMIT 0"
# Active customers the latest attempt did not reach (tenant_health.reached: neither Graph answered
# nor Partner Center stood in), and those it reached whose facts are older than a date.
_UNREACHED = (
    "SELECT partner_tenant_id, tenant_id, coalesce(status, 'never_synced') AS status, error_code "
    "FROM tenant_health WHERE active AND NOT reached"
)
_REACHED_COUNT = "SELECT count(*) FROM tenant_health WHERE active AND reached"
_REACHED_WITHOUT_FACTS = (
    "SELECT partner_tenant_id, tenant_id, facts_as_of, last_checked_at FROM tenant_health "
    "WHERE active AND reached AND (facts_as_of IS NULL OR facts_as_of < ?)"
)
# The staged-fact checks' offending rows (`staged_facts`: this run's staged facts, read once).
# Every staged fact has its own (snapshot date, partner, tenant, SKU) key:
_REPEATED_KEYS = (
    "SELECT snapshot_date, partner_tenant_id, tenant_id, sku_id, "
    "any_value(sku_part_number) AS sku_part_number, count(*) AS copies "
    "FROM staged_facts GROUP BY ALL HAVING count(*) > 1"
)
# available_units = enabled_units - consumed_units on every staged fact:
_AVAILABILITY_OFF = (
    "SELECT snapshot_date, partner_tenant_id, tenant_id, sku_id, sku_part_number, "
    "enabled_units, consumed_units, available_units FROM staged_facts "
    "WHERE available_units IS DISTINCT FROM enabled_units - consumed_units"
)
# No staged unit count below zero (available_units may be: over-assigned seats):
_NEGATIVE_COUNTS = (
    "SELECT snapshot_date, partner_tenant_id, tenant_id, sku_id, sku_part_number, "
    "enabled_units, suspended_units, warning_units, locked_out_units, consumed_units "
    "FROM staged_facts WHERE least(enabled_units, suspended_units, warning_units, "
    "locked_out_units, consumed_units) < 0"
)
_COUNT_OFFENDERS = "SELECT count(*) FROM offenders"
_EXAMPLES = (
    "SELECT coalesce(c.display_name, o.tenant_id) AS customer, o.* FROM offenders AS o "
    "LEFT JOIN customers AS c USING (partner_tenant_id, tenant_id) ORDER BY ALL LIMIT ?"
)
_RERUN = (
    "The chunks' files were not promoted: today's facts stay those of the last good run and the "
    "analyst copy was not replaced. Look at the examples (and the staged files under the "
    "warehouse's _staging folder) for the fault; once fixed, rerun the affected tenants "
    "(`sync365 sync --failed`, or `license_sync` naming them)."
)


@dataclass(frozen=True)
class QualityResult:
    """One check's verdict: `offending` of `checked` rows or customers failed, a few examples."""

    passed: bool
    checked: int
    offending: int
    summary: str
    remedy: str | None
    examples: pd.DataFrame


@dataclass(frozen=True)
class StagedFactVerdicts:
    """The verdicts on a run's staged facts, before `license_facts` promotes them."""

    unique_keys: QualityResult
    available_units: QualityResult
    non_negative: QualityResult


class Quality(WarehouseFile):
    """The checks read one consistent state each (one read-only connection per check, one for
    the staged-fact checks together)."""

    def staged_fact_checks(self, fact_files: Sequence[str]) -> StagedFactVerdicts:
        """The three checks on the staged facts, evaluated on one read of the files (each check
        scans them several times: a copy in memory, not every file again)."""
        with self._open(read_only=True) as con:
            if fact_files:
                con.execute(
                    "CREATE TEMP TABLE staged_facts AS SELECT * FROM read_parquet(?)",
                    [list(fact_files)],
                )
                checked = _count(con, "SELECT count(*) FROM staged_facts")
            else:
                checked = 0

            def verdict(offenders: str, noun: str, problem: str) -> QualityResult:
                return _result(
                    con,
                    offenders if fact_files else _NO_STAGED_FACTS,
                    [],
                    checked=checked,
                    noun=noun,
                    problem=problem,
                    remedy=_RERUN,
                )

            return StagedFactVerdicts(
                unique_keys=verdict(_REPEATED_KEYS, "staged fact keys", "appear more than once"),
                available_units=verdict(
                    _AVAILABILITY_OFF,
                    "staged facts",
                    "have available_units other than enabled_units - consumed_units",
                ),
                non_negative=verdict(
                    _NEGATIVE_COUNTS, "staged facts", "have a negative unit count"
                ),
            )

    def statuses_of_the_day(self, day: date) -> QualityResult:
        """Every active customer has a sync status dated `day` (UTC)."""
        with self._open(read_only=True) as con:
            return _result(
                con,
                "SELECT c.partner_tenant_id, c.tenant_id, s.status AS last_status, "
                "s.checked_at AS last_checked_at FROM customers AS c "
                "LEFT JOIN latest_tenant_status AS s USING (partner_tenant_id, tenant_id) "
                "WHERE c.active AND (s.checked_at IS NULL OR s.checked_at::DATE < ?)",
                [day],
                checked=_count(con, "SELECT count(*) FROM customers WHERE active"),
                noun="active customers",
                problem=f"have no sync status for {day}",
                remedy="Run the whole sync (`sync365 sync`, the full_sync job): it attempts every "
                "active customer. One still missing after it was in no chunk that finished: "
                "see that run's log.",
            )

    def tenants_reached(self, min_share: float) -> QualityResult:
        """At least `min_share` of the active customers' latest attempts produced facts."""
        with self._open(read_only=True) as con:
            active = _count(con, "SELECT count(*) FROM tenant_health WHERE active")
            unreached = _result(
                con,
                _UNREACHED,
                [],
                checked=active,
                noun="active customers",
                problem="were not reached",
                remedy="The tenants_synced check names why each customer failed; `sync365 sync "
                "--failed` (the rerun_failed_tenants job) fetches them again. The threshold is "
                "SYNC365_MIN_REACHED_SHARE.",
            )
        share = (active - unreached.offending) / active if active else 1.0
        passed = share >= min_share
        return QualityResult(
            passed=passed,
            checked=active,
            offending=0 if passed else unreached.offending,
            summary=f"Reached {active - unreached.offending} of {active} active customers "
            f"({share:.0%}; at least {min_share:.0%} needed). {unreached.summary}",
            remedy=None if passed else unreached.remedy,
            examples=unreached.examples,
        )

    def facts_fresh(self, day: date, max_age_days: int) -> QualityResult:
        """Every customer the latest attempt reached has facts at most `max_age_days` before
        `day`."""
        oldest = day - timedelta(days=max_age_days)
        with self._open(read_only=True) as con:
            return _result(
                con,
                _REACHED_WITHOUT_FACTS,
                [oldest],
                checked=_count(con, _REACHED_COUNT),
                noun="reachable customers",
                problem=f"have no facts since {oldest}",
                remedy="Their latest attempt succeeded but wrote no current facts: the facts step "
                "failed or did not run. Materialize license_facts (or run `sync365 sync`). The "
                "allowed age is SYNC365_MAX_FACTS_AGE_DAYS.",
            )

    def skus_named(self, unnamed_sources: Sequence[str]) -> QualityResult:
        """Every current SKU has a product name: none whose `product_name_source` is one of
        `unnamed_sources` (the catalog's stand-ins, its part number or its id)."""
        with self._open(read_only=True) as con:
            return _result(
                con,
                "SELECT min(partner_tenant_id) AS partner_tenant_id, min(tenant_id) AS tenant_id, "
                "sku_id, any_value(sku_part_number) AS sku_part_number, "
                "count(*) AS customers FROM current_license_facts "
                "WHERE list_contains(?, product_name_source) GROUP BY sku_id",
                [list(unnamed_sources)],
                checked=_count(con, "SELECT count(DISTINCT sku_id) FROM current_license_facts"),
                noun="current SKUs",
                problem="have no product name",
                remedy="Refresh the names from Microsoft's SKU list (`sync365 refresh-sku-names`) "
                "or add the SKUs to data/sku_names.csv, then rebuild license_facts.",
            )

    def record_check_results(self, rows: Sequence[CheckResultRow]) -> None:
        """Record one check step's evaluations together; a step retry's evaluation of a check in
        the same run replaces the earlier one."""
        records = [
            asdict(row)
            | {
                "summary": clip(row.summary),
                "remedy": clip(row.remedy),
                "checked_at": utc_naive(row.checked_at),
            }
            for row in rows
        ]
        with self._transaction() as con:
            insert_records(con, "check_results", records, replace=True)

    def latest_check_results(self) -> pd.DataFrame:
        """Each check's latest evaluation, failing ones first."""
        return self._read(
            "SELECT * FROM latest_check_results ORDER BY passed, blocking DESC, asset, check_name"
        )


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _result(
    con: duckdb.DuckDBPyConnection,
    offenders: str,
    params: list[object],
    *,
    checked: int,
    noun: str,
    problem: str,
    remedy: str,
) -> QualityResult:
    """The verdict on `offenders` (a query of the offending rows, each with partner_tenant_id and
    tenant_id): their count and the first few, named after their customer."""
    with_offenders = f"WITH offenders AS ({offenders}) "  # this module's fixed text
    counted = con.execute(with_offenders + _COUNT_OFFENDERS, params).fetchone()
    offending = int(counted[0]) if counted else 0
    examples = con.execute(with_offenders + _EXAMPLES, [*params, EXAMPLES]).df()
    if not offending:
        return QualityResult(True, checked, 0, f"All {checked} {noun} pass.", None, examples)
    named = ", ".join(dict.fromkeys(examples["customer"].astype(str)))
    more = " and more" if offending > len(examples) else ""
    return QualityResult(
        passed=False,
        checked=checked,
        offending=offending,
        summary=f"{offending} of {checked} {noun} {problem}: {named}{more}.",
        remedy=remedy,
        examples=examples,
    )
