"""`sync365 export` and `sync365 report` on a warehouse with history (three syncs of the demo
scenario): the files read back equal to the views, a failed export leaves the previous one
whole, the report renders per customer in each format, and bad input (dates, folders) gets one
line, exit 2, and changes nothing (real processes for the commands; most bad input through click
in this process)."""

from __future__ import annotations

import errno
import os
import re
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from markupsafe import escape

from sync365_pipeline.commands.cli import main
from sync365_pipeline.licensing.report import build_report, render
from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline.warehouse import export as export_module
from sync365_pipeline.warehouse.export import EXPORTED, MANIFEST, ExportError
from sync365_pipeline_tests.history import (
    DAY1,
    DAY2,
    DAY3,
    FABRIKAM,
    NORTHWIND,
    SUMMIT,
    History,
)
from sync365_pipeline_tests.leftovers import ended_pid

from .processes import clean_env, run_sync365

SINCE, UNTIL = date(2026, 11, 1), date(2026, 11, 20)  # DAY2 only, of the dated rows


def view_rows(history: History, relation: str, since: date, until: date) -> list[tuple[Any, ...]]:
    """What the export of `relation` should hold: the view's rows, dated ones in the period."""
    dated_by = EXPORTED[relation]
    where = f"WHERE CAST({dated_by} AS DATE) BETWEEN ? AND ?" if dated_by else ""
    params = [since, until] if dated_by else []
    with duckdb.connect(str(history.warehouse.analyst_copy_path), read_only=True) as con:
        return con.execute(f"SELECT * FROM {relation} {where} ORDER BY ALL", params).fetchall()


def read_back(history: History, folder: Path, relation: str, export_format: str) -> list[tuple]:
    """An exported file read back: the CSV with the view's column types, the Parquet folder
    with its month partitions (their column left out, or, in the monthly summary, turned
    back into the month's first day)."""
    with duckdb.connect(str(history.warehouse.analyst_copy_path), read_only=True) as con:
        types = con.execute(f"DESCRIBE {relation}").fetchall()
        names = ", ".join(f'"{name}"' for name, *_ in types)
        if export_format == "csv":
            columns = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind, *_ in types) + "}"
            source = (
                f"read_csv('{folder / relation}.csv', header = true, columns = {columns}, "
                "allow_quoted_nulls = false)"
            )
        elif EXPORTED[relation] is None:
            source = f"read_parquet('{folder / relation}.parquet')"
        elif not list((folder / relation).iterdir()):
            return []
        else:
            source = (
                f"(SELECT * REPLACE (CAST(month || '-01' AS DATE) AS month) "
                f"FROM read_parquet('{folder / relation}/**/*.parquet', hive_partitioning = true))"
                if relation == "monthly_customer_summary"
                else f"read_parquet('{folder / relation}/**/*.parquet', hive_partitioning = true)"
            )
        return con.execute(f"SELECT {names} FROM {source} ORDER BY ALL").fetchall()


@pytest.mark.parametrize("export_format", ["csv", "parquet"])
def test_every_exported_file_reads_back_equal_to_its_view(
    history: History, tmp_path: Path, export_format: str
) -> None:
    folder = tmp_path / "export"
    written = history.warehouse.readable().export(folder, export_format, since=SINCE, until=UNTIL)

    assert [item.relation for item in written] == list(EXPORTED)
    for item in written:
        expected = view_rows(history, item.relation, SINCE, UNTIL)
        assert read_back(history, folder, item.relation, export_format) == expected, item
        assert item.rows == len(expected), item
    assert any(item.rows == 0 and item.dated_by for item in written), "an empty dated file too"
    facts = view_rows(history, "license_facts", SINCE, UNTIL)
    assert {row[0] for row in facts} == {DAY2}, "dated rows of the period only"
    assert len(view_rows(history, "current_license_facts", SINCE, UNTIL)) > 20


def test_parquet_is_partitioned_by_month_and_the_readme_says_what_each_file_is(
    history: History, tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    history.warehouse.readable().export(folder, "parquet")
    readme = (folder / MANIFEST).read_text(encoding="utf-8")

    assert sorted(path.name for path in (folder / "license_facts").iterdir()) == [
        "month=2026-10",
        "month=2026-11",
    ]
    assert (folder / "tenant_health.parquet").is_file()
    for relation in EXPORTED:
        assert f"## {relation}" in readme
    assert "Seats bought but not assigned" in readme  # unused_licenses' comment
    assert "`unused_units` (BIGINT): Seats bought but not assigned (available_units)" in readme
    assert not {"raw_subscribed_skus", "schema_version", "app_credentials"} & {
        path.stem for path in folder.iterdir()
    }


@pytest.fixture
def previous_export(history: History, tmp_path: Path) -> tuple[Warehouse, Path, dict[str, bytes]]:
    """A CSV export in `tmp_path`/export: the warehouse, the folder and its files' bytes."""
    warehouse = history.warehouse.readable()
    assert warehouse is not None
    folder = tmp_path / "export"
    warehouse.export(folder, "csv")
    return warehouse, folder, contents(folder)


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_a_failed_export_leaves_the_previous_one_whole(
    previous_export: tuple[Warehouse, Path, dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warehouse, folder, before = previous_export
    written = export_module._write
    calls = []

    def fail_on_the_fifth(*args: Any) -> Any:
        calls.append(args[2])
        if len(calls) == 5:  # what DuckDB's COPY raises when the disk is full
            staged = args[1] / f"{args[2]}.csv"
            raise duckdb.IOException(f'Could not write file "{staged}": No space left on device')
        return written(*args)

    monkeypatch.setattr(export_module, "_write", fail_on_the_fifth)
    with pytest.raises(ExportError) as failed:
        warehouse.export(folder, "csv", since=DAY3)

    assert str(failed.value) == (
        f'Cannot write in {tmp_path}: Could not write file "{folder / calls[-1]}.csv": '
        "No space left on device."
    )

    assert contents(folder) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export"], "no leftovers"


def test_a_failed_swap_puts_the_previous_export_back(
    previous_export: tuple[Warehouse, Path, dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warehouse, folder, before = previous_export
    rename = Path.rename
    renamed = []

    def fail_the_finished_one(self: Path, to: Path) -> Path:
        renamed.append((self.name, Path(to).name))
        if self.name.endswith(".tmp"):  # the finished export, after the previous moved aside
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return rename(self, to)

    monkeypatch.setattr(Path, "rename", fail_the_finished_one)
    with pytest.raises(ExportError, match="Invalid cross-device link"):
        warehouse.export(folder, "csv", since=DAY3)

    aside, staged = f".export.{os.getpid()}.old", f".export.{os.getpid()}.tmp"
    assert renamed == [("export", aside), (staged, "export"), (aside, "export")]
    assert contents(folder) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export"], "no leftovers"


def test_the_next_export_clears_what_killed_ones_left(
    previous_export: tuple[Warehouse, Path, dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warehouse, folder, previous = previous_export
    # One export killed between its two renames: the previous export aside, no target.
    killed = ended_pid()
    folder.rename(tmp_path / f".export.{killed}.old")
    (tmp_path / f".export.{killed}.tmp").mkdir()
    (tmp_path / f".export.{killed}.tmp" / "license_facts.csv").write_text("half")
    running = tmp_path / f".export.{os.getppid()}.tmp"  # a live process's: left to it
    running.mkdir()

    def fail(*args: Any) -> Any:
        raise duckdb.IOException("No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(export_module, "_write", fail)
        with pytest.raises(ExportError):
            warehouse.export(folder, "csv", since=DAY3)

    assert contents(folder) == previous, "the previous export is back in place"
    assert sorted(path.name for path in tmp_path.iterdir()) == [running.name, "export"]

    # Another killed after its swap, before removing the previous export: only a leftover.
    (tmp_path / f".export.{ended_pid()}.old").mkdir()
    warehouse.export(folder, "csv", since=DAY3)

    assert sorted(path.name for path in tmp_path.iterdir()) == [running.name, "export"]
    assert contents(folder) != previous


def test_a_folder_that_is_not_an_export_is_never_replaced(history: History, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")

    with pytest.raises(ExportError, match="holds other files"):
        history.warehouse.readable().export(folder, "csv")
    assert [path.name for path in folder.iterdir()] == ["notes.txt"]


def test_the_report_renders_each_customer_with_its_seats_changes_and_trend(
    history: History,
) -> None:
    report = build_report(history.warehouse.readable(), DAY1)
    customers = {customer.tenant_id: customer for customer in report.customers}
    html, markdown, text = render(report, "html"), render(report, "md"), render(report, "text")

    northwind = customers[NORTHWIND]
    assert [(point.day, point.bought) for point in northwind.trend][:2] == [
        (DAY1, northwind.trend[0].bought),
        (DAY2, northwind.trend[0].bought + 5),
    ]
    assert northwind.paid_units == northwind.trend[-1].bought
    assert [change["enabled_units_change"] for change in northwind.changes] == [5]
    assert [change["enabled_units_change"] for change in customers[FABRIKAM].changes] == [-3]
    summit = customers[SUMMIT]
    assert (summit.status, summit.is_stale, summit.facts_as_of) == (
        "access_removed",
        True,
        str(DAY2),
    )
    assert summit.status_since == str(DAY3)
    assert len(report.customers) == len(history.warehouse.readable().customer_overview())
    for document in (html, markdown, text):
        for customer in report.customers:
            assert customer.customer in document
    assert html.count("<svg") == sum(1 for customer in report.customers if customer.trend)
    assert "<script" not in html
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "Microsoft Defender for Business" in markdown
    assert "18 → 15 (-3)" in markdown


def test_seats_assigned_beyond_those_bought_are_counted_per_sku(history: History) -> None:
    """One SKU's spare seats never hide another's overuse (Cedar Harbor's suspended Power BI Pro
    still has users): the report says how many seats are assigned beyond those bought."""
    report = build_report(history.warehouse.readable(), DAY1)
    with duckdb.connect(str(history.warehouse.analyst_copy_path), read_only=True) as con:
        expected = dict(
            con.execute(
                "SELECT tenant_id, sum(greatest(consumed_units - enabled_units, 0)) "
                "FROM current_license_facts JOIN license_classes "
                "USING (partner_tenant_id, tenant_id, sku_id) "
                "WHERE sku_class = 'paid' GROUP BY ALL"
            ).fetchall()
        )
    over = {customer.tenant_id: customer.over_assigned_units for customer in report.customers}
    assert over == {tenant: expected.get(tenant, 0) for tenant in over}
    (overused,) = [customer for customer in report.customers if customer.over_assigned_units]
    line = f"{overused.over_assigned_units} assigned beyond the seats bought"
    assert all(line in render(report, kind) for kind in ("text", "md"))
    assert "assigned beyond" not in render(
        replace(
            report,
            customers=[customer for customer in report.customers if customer is not overused],
        ),
        "text",
    )


def test_the_report_counts_the_users_of_each_customers_newest_users_read(
    history: History, tmp_path: Path
) -> None:
    copy = tmp_path / "analyst.duckdb"
    copy.write_bytes(history.warehouse.analyst_copy_path.read_bytes())
    with duckdb.connect(str(copy)) as con:
        ((read_before,),) = con.execute(
            "SELECT count(DISTINCT user_id) FROM user_licenses "
            "WHERE tenant_id = ? AND snapshot_date = ?",
            [NORTHWIND, DAY2],
        ).fetchall()
        # Its newest read found no licensed user: the writer keeps the slice, with no rows.
        con.execute(
            "DELETE FROM user_licenses WHERE tenant_id = ? AND snapshot_date = ?",
            [NORTHWIND, DAY3],
        )
        con.execute(
            "UPDATE dataset_snapshots SET row_count = 0 "
            "WHERE tenant_id = ? AND snapshot_date = ? AND dataset = 'user_licenses'",
            [NORTHWIND, DAY3],
        )
        never_read = {
            tenant
            for (tenant,) in con.execute(
                "SELECT tenant_id FROM tenant_health WHERE active AND tenant_id NOT IN "
                "(SELECT tenant_id FROM dataset_snapshots WHERE dataset = 'user_licenses')"
            ).fetchall()
        }

    report = build_report(Warehouse(copy), DAY1)
    users = {customer.tenant_id: customer.licensed_users for customer in report.customers}

    assert read_before > 0, "its DAY2 count is not the one to show"
    assert users[NORTHWIND] == 0
    assert never_read
    assert {tenant for tenant, count in users.items() if count is None} == never_read


def test_a_tenant_two_partners_reach_has_a_section_of_its_own_per_partner(
    history: History,
) -> None:
    report = build_report(history.warehouse.readable(), DAY1)
    shared = report.customers[0]
    other_partner = "0c7e5a4b-2f0e-4d8e-9c61-5b8f4a3d2e10"
    report.customers.append(replace(shared, partner_tenant_id=other_partner))

    html = render(report, "html")
    ids = re.findall(r'<section id="([^"]+)"', html)
    links = re.findall(r'<a href="#([^"]+)"', html)
    headings = re.findall(r"<h2>(.*?)</h2>", html)

    assert len(ids) == len(report.customers)
    assert len(set(ids)) == len(ids)
    assert links == ids
    assert headings == [
        f'{escape(c.customer)} <span class="muted">through partner {c.partner_tenant_id}</span>'
        for c in report.customers
    ]


def test_the_reports_changes_leave_out_free_viral_and_trial_skus(history: History) -> None:
    before_the_first = DAY1 - timedelta(days=1)  # every current SKU added, free ones too
    report = build_report(history.warehouse.readable(), before_the_first)
    reported = {
        (customer.tenant_id, change["product"])
        for customer in report.customers
        for change in customer.changes
    }
    with duckdb.connect(str(history.warehouse.analyst_copy_path), read_only=True) as con:
        changes = con.execute(
            "SELECT c.tenant_id, coalesce(c.product_name, c.sku_part_number, c.sku_id), "
            "is_free_sku(c.sku_id, c.sku_part_number), k.sku_class "
            "FROM license_changes_since(?) AS c "
            "LEFT JOIN license_classes AS k USING (partner_tenant_id, tenant_id, sku_id)",
            [before_the_first],
        ).fetchall()
    free = {(tenant, product) for tenant, product, is_free, _ in changes if is_free}
    not_paid = {(tenant, product) for tenant, product, _, kind in changes if kind == "trial"}

    assert free
    assert reported == {(tenant, product) for tenant, product, *_ in changes} - free - not_paid


def test_names_from_microsoft_are_escaped_in_the_html(history: History) -> None:
    report = build_report(history.warehouse.readable(), DAY1)
    report.customers[0].customer = "<img src=x onerror=alert(1)>"

    html = render(report, "html")

    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def commands_env(history: History, tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path) | history.environment


@pytest.mark.e2e
def test_export_and_report_commands_write_their_files(history: History, tmp_path: Path) -> None:
    env = commands_env(history, tmp_path)
    exported = run_sync365(
        ["export", "--format", "parquet", "--since", str(DAY2), "--out", "out"], env, tmp_path
    )
    reported = run_sync365(
        ["report", "--since", str(DAY1), "--format", "html", "--out", "report.html"],
        env,
        tmp_path,
    )
    text = run_sync365(["report", "--since", str(DAY1)], env, tmp_path)

    assert exported.returncode == 0, exported.stderr
    assert f"Wrote {len(EXPORTED)} files" in exported.stdout
    assert sorted(p.name for p in (tmp_path / "out" / "license_facts").iterdir()) == [
        "month=2026-11"
    ]
    assert reported.returncode == 0, reported.stderr
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "Northwind Traders" in html
    assert text.returncode == 0, text.stderr
    assert "Fabrikam Dental Group" in text.stdout


BAD_INPUT = [
    (["export", "--since", "2026-13-01"], "--since '2026-13-01' is not a date"),
    (["export", "--until", "yesterday"], "--until 'yesterday' is not a date"),
    (["export", "--since", "2026-11-20", "--until", "2026-11-01"], "is after --until"),
    (["export", "--out", "a-file.txt"], "is a file, not a folder"),
    (["export", "--out", "missing/export"], "does not exist"),
    (["export", "--out", "/proc/sync365-export"], "Cannot write in /proc:"),
    (["export", "--out", "mine"], "holds other files"),
    (["report", "--since", "11/01/2026"], "--since '11/01/2026' is not a date"),
    (["report", "--since", "2999-01-01"], "--since 2999-01-01 is after today"),
    (["report", "--out", "mine"], "is a folder"),
    (["report", "--out", "missing/report.html"], "does not exist"),
    (["report", "--out", "/proc/sync365-report.html"], "Cannot write"),
]


@pytest.mark.e2e
def test_bad_input_gets_one_line_exit_2_and_changes_nothing(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = commands_env(history, tmp_path)
    (tmp_path / "a-file.txt").write_text("not a folder")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    before = sorted(str(path) for path in tmp_path.rglob("*") if "dagster_home" not in str(path))

    # The first case in a real process, the rest through click in this one (the same command
    # code, without a process start-up each).
    (args, message), *rest = BAD_INPUT
    ran = run_sync365(args, env, tmp_path)
    outcomes = [(args, ran.returncode, ran.stdout, ran.stderr)]
    monkeypatch.chdir(tmp_path)
    for args, _ in rest:
        invoked = CliRunner(env=env).invoke(main, args)
        outcomes.append((args, invoked.exit_code, invoked.stdout, invoked.stderr))
    for (args, code, stdout, stderr), (_, message) in zip(outcomes, BAD_INPUT, strict=True):
        assert code == 2, (args, stdout, stderr)
        assert len(stderr.splitlines()) == 1, (args, stderr)
        assert ".tmp" not in stderr, "names the folder asked for, not the staging one"
        assert message in stderr, (args, stderr)
        assert stdout == ""

    after = sorted(str(path) for path in tmp_path.rglob("*") if "dagster_home" not in str(path))
    assert after == before
    assert not list(Path("/proc").glob("*sync365*"))
