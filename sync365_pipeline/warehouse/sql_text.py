"""Names and text spliced into SQL that DuckDB cannot take as parameters (ATTACH, COMMENT ON)."""

from __future__ import annotations


def identifier(name: str) -> str:
    """`name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def string_literal(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
