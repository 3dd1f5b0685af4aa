"""The warehouse explains itself: every table, view and column has a comment, in the live file and
the analyst copy, and docs/data-dictionary.md is exactly what they say."""

from __future__ import annotations

from pathlib import Path

import duckdb

from sync365_pipeline.warehouse import Warehouse
from sync365_pipeline.warehouse.analyst_copy import ANALYST_STORAGE_VERSION, NOT_FOR_ANALYSTS
from sync365_pipeline.warehouse.comments import DESCRIPTIONS, MACROS
from sync365_pipeline.warehouse.dictionary import REGENERATE, data_dictionary
from sync365_pipeline_tests.samples import CONTOSO, DAY1, PARTNER, SPB, facts

COMMENTS_MODULE = "sync365_pipeline/warehouse/comments.py"
DICTIONARY = Path(__file__).parents[2] / "docs" / "data-dictionary.md"

RELATIONS_SQL = """
    SELECT table_name AS name, 'table' AS kind, comment FROM duckdb_tables()
    WHERE database_name = current_database() AND NOT temporary
    UNION ALL
    SELECT view_name, 'view', comment FROM duckdb_views()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary
"""
MACROS_SQL = """
    SELECT function_name, comment FROM duckdb_functions()
    WHERE database_name = current_database() AND NOT internal
        AND function_type IN ('macro', 'table_macro')
"""
COLUMNS_SQL = """
    SELECT table_name, column_name, data_type, comment FROM duckdb_columns()
    WHERE database_name = current_database() AND NOT internal
"""


def comments(path: Path) -> dict[str, str | None]:
    """Every relation's, column's and macro's comment, keyed `table`, `table.column` or
    `macro`."""
    with duckdb.connect(str(path), read_only=True) as con:
        relations = {name: comment for name, _, comment in con.execute(RELATIONS_SQL).fetchall()}
        relations |= dict(con.execute(MACROS_SQL).fetchall())
        columns = {
            f"{table}.{column}": comment
            for table, column, _, comment in con.execute(COLUMNS_SQL).fetchall()
        }
    return relations | columns


def test_every_table_view_and_column_has_a_comment(warehouse: Warehouse) -> None:
    found = comments(warehouse.path)

    missing = sorted(name for name, comment in found.items() if not (comment or "").strip())
    assert len(found) > 150, "the query sees every table, view and column"
    assert not missing, (
        f"No comment for {', '.join(missing)}: describe them in {COMMENTS_MODULE}, then run "
        f"`{REGENERATE}`."
    )


def test_every_timestamp_column_says_it_is_utc(warehouse: Warehouse) -> None:
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        timestamps = [
            (f"{table}.{column}", comment or "")
            for table, column, data_type, comment in con.execute(COLUMNS_SQL).fetchall()
            if data_type.startswith("TIMESTAMP")
        ]

    assert len(timestamps) > 20
    not_utc = [name for name, comment in timestamps if "UTC" not in comment]
    assert not not_utc, f"Timestamp columns whose comment does not say UTC: {', '.join(not_utc)}"


def test_every_description_names_a_table_view_or_column_that_exists(
    warehouse: Warehouse,
) -> None:
    found = comments(warehouse.path)

    stale = [relation for relation in DESCRIPTIONS if relation not in found] + [
        f"{relation}.{column}"
        for relation, described in DESCRIPTIONS.items()
        for column in described.columns
        if f"{relation}.{column}" not in found
    ]
    assert not stale, f"{COMMENTS_MODULE} describes what does not exist: {', '.join(stale)}"


def test_comments_survive_a_second_migrate_and_reach_the_analyst_copy(tmp_path: Path) -> None:
    path = tmp_path / "sync365.duckdb"
    Warehouse(path).migrate()
    first = comments(path)
    store = Warehouse(path)  # a new process's Warehouse migrates again: the views are recreated
    store.replace_license_facts(
        DAY1, {CONTOSO: facts(CONTOSO, DAY1, {SPB: (5, 2)})}, partner_tenant_id=PARTNER
    )

    copy = store.publish_analyst_copy()

    assert comments(path) == first
    assert comments(copy) == {
        name: comment
        for name, comment in first.items()
        if name.split(".")[0] not in NOT_FOR_ANALYSTS
    }, "every comment but those of the tables the copy leaves out"
    with duckdb.connect(str(copy), read_only=True) as con:
        row = con.execute(
            "SELECT tags['storage_version'] FROM duckdb_databases() "
            "WHERE database_name = current_database()"
        ).fetchone()
    assert row == (f"{ANALYST_STORAGE_VERSION}+",), "written in the format older DuckDBs read"


def test_the_data_dictionary_is_what_the_schema_says() -> None:
    expected = data_dictionary()

    assert "### `license_facts` (table)" in expected
    assert "Timestamps are UTC" in expected
    assert DICTIONARY.read_text(encoding="utf-8") == expected, (
        f"docs/data-dictionary.md is out of date with the schema's comments: run `{REGENERATE}` "
        "and commit the result."
    )


def test_every_macro_and_its_result_columns_are_described(warehouse: Warehouse) -> None:
    """A macro's columns cannot carry comments: the dictionary shows each with its text."""
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        macros = dict(con.execute(MACROS_SQL).fetchall())
    dictionary = data_dictionary()
    macro_part = dictionary[dictionary.index("## Macros") :]

    assert {"license_changes_between", "license_changes_since"} <= set(macros)
    assert all((comment or "").strip() for comment in macros.values()), macros
    assert set(macros) == set(MACROS), f"describe every macro in {COMMENTS_MODULE}"
    column_rows = [line for line in macro_part.splitlines() if line.startswith("| `")]
    assert len(column_rows) > 40
    assert not [row for row in column_rows if row.endswith("|  |")], "a column without text"
