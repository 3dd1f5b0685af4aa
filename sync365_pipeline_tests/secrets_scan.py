"""The one search of everything a sync wrote or printed for the secrets a simulator issued."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb


def text_in_duckdb(path: Path) -> str:
    """Every value of every table, queried (the file itself may be compressed)."""
    parts = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in tables:
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            parts.append(repr(rows))
    return "\n".join(parts)


def files_under(root: Path) -> list[Path]:
    """Every file below `root` (sqlite databases and their journals, logs, compute logs)."""
    return [path for path in sorted(root.rglob("*")) if path.is_file()]


def bytes_under(root: Path) -> bytes:
    return b"\n".join(path.read_bytes() for path in files_under(root))


def secrets_found(
    secrets: Iterable[str],
    *,
    duckdb_files: Iterable[Path] = (),
    trees: Iterable[Path] = (),
    texts: Iterable[str] = (),
) -> list[str]:
    """Where each secret occurs: "<place>: <first characters>..."; empty when none does.

    `trees` are searched file by file as bytes, `duckdb_files` by their tables' values, `texts`
    (captured output, logs) as they are. Only a prefix of a found secret is shown.
    """
    places = [(str(path), _utf8(text_in_duckdb(path))) for path in duckdb_files]
    places += [(str(path), path.read_bytes()) for root in trees for path in files_under(root)]
    places += [(f"text {index}", _utf8(text)) for index, text in enumerate(texts)]
    return sorted(
        f"{place}: {secret[:6]}..."
        for secret in set(secrets)
        for place, content in places
        if _utf8(secret) in content
    )


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # hostile names may hold lone surrogates
