"""One DuckDB file, opened per operation: the base every part of `Warehouse` builds on.

Every operation opens the file, does one short transaction and closes it, so the single-writer
lock is held for milliseconds to seconds and never across network calls. A failed write rolls back
and leaves the previous data exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import duckdb
import pandas as pd

from sync365_pipeline.core.redaction import redact
from sync365_pipeline.core.settings import DEFAULT_LOCK_TIMEOUT_S, RunSettings
from sync365_pipeline.core.text import safe_text
from sync365_pipeline.warehouse import schema
from sync365_pipeline.warehouse.connection import (
    WarehouseUnwritable,
    close,
    connect,
    transaction,
)

MAX_MESSAGE_LENGTH = 2000


class WarehouseFile:
    """One DuckDB file. Cheap to construct; holds no connection between calls."""

    def __init__(self, path: Path, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self._schema_ready = False

    @classmethod
    def from_settings(cls, settings: RunSettings) -> Self:
        """The configured warehouse: its file and how long a write waits for a lock."""
        return cls(settings.duckdb_path, lock_timeout_s=settings.lock_timeout_s)

    @property
    def analyst_copy_path(self) -> Path:
        """Where analysts should point their tools: a copy published after each write."""
        return self.path.with_name(self.path.stem + "_analyst.duckdb")

    def readable(self) -> Self | None:
        """What people read from: the analyst copy once published (so a running sync is not
        blocked), else the live file; None when neither exists yet."""
        for path in (self.analyst_copy_path, self.path):
            if path.exists():
                return type(self)(path, lock_timeout_s=self.lock_timeout_s)
        return None

    def staging_dir(self, sync_id: str) -> Path:
        """Where a sync's chunks stage their rows for the writer (`warehouse.staging`). Every
        step of the sync must see it: a volume shared by the pods under a distributed executor."""
        return self.path.with_name(self.path.stem + "_staging") / sync_id

    # -- connections -----------------------------------------------------------------------

    def _connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        return connect(
            self.path,
            read_only=read_only,
            timeout_s=self.lock_timeout_s,
            analyst_copy=self.analyst_copy_path,
        )

    def migrate(self) -> int:
        """Create or upgrade the schema and views; idempotent. Returns the schema version. An
        existing file is checked on a read-only connection first: a current one never takes the
        write lock (an analyst's read-only session does not stop it) and is not written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseUnwritable(self.path, exc.strerror or str(exc)) from exc
        if self.path.exists() and self._is_current():
            self._schema_ready = True
            return schema.LATEST_VERSION
        con = self._connect()
        try:
            version = schema.migrate(con, self.path)
        finally:
            close(con, self.path)
        self._schema_ready = True
        return version

    def _is_current(self) -> bool:
        con = self._connect(read_only=True)
        try:
            return schema.is_current(con)
        finally:
            con.close()

    @contextmanager
    def _open(
        self, *, read_only: bool = False, checkpoint: bool = False
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one operation, closed after it (with `checkpoint`, its WAL folded into
        the file). The schema is migrated first, except for a read of an existing file: readers
        never take the write lock."""
        if not self._schema_ready and not (read_only and self.path.exists()):
            self.migrate()
        con = self._connect(read_only=read_only)
        try:
            yield con
        finally:
            if read_only:
                con.close()
            else:
                close(con, self.path, checkpoint=checkpoint)

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._open() as con, transaction(con, self.path):
            yield con

    def _read(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> pd.DataFrame:
        with self._open(read_only=True) as con:
            return con.execute(
                sql, dict(params) if isinstance(params, Mapping) else list(params)
            ).df()


def insert_records(
    con: duckdb.DuckDBPyConnection,
    table: str,
    records: list[dict[str, object]],
    *,
    replace: bool = False,
) -> None:
    """Insert `records` (dicts of column values) into `table` in one statement."""
    frame = pd.DataFrame.from_records(records)
    con.register("incoming_rows", frame)
    columns = ", ".join(frame.columns)
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    con.execute(f"{verb} INTO {table} ({columns}) SELECT {columns} FROM incoming_rows")  # noqa: S608
    con.unregister("incoming_rows")


def clip(message: str | None) -> str | None:
    """A message safe to store: redacted (whatever echoed a secret into it), then made valid
    text, then short enough (Microsoft's error texts can be long). Redacting first means a
    secret cut at the edge is still recognised."""
    if not message:
        return message
    return safe_text(redact(message))[:MAX_MESSAGE_LENGTH]
