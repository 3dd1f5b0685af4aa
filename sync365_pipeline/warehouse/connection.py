"""Opening the DuckDB file: one writer process at a time, so retry briefly, then say who holds it.

DuckDB locks the whole file per process: a writer elsewhere, or even a read-only analyst shell,
makes `duckdb.connect` fail at once with "Could not set lock on file ... (PID n)". Connections are
therefore opened per operation and closed right after, and opening retries with jittered
exponential backoff (jitter keeps several waiting writers from retrying in lock-step) until a
deadline, then raises `WarehouseLocked` with what to do about it.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0
_HOLDER_PID = re.compile(r"PID (\d+)")


class WarehouseLocked(RuntimeError):  # noqa: N818 (the name other layers catch)
    """Another process held the DuckDB file for longer than the lock timeout."""

    def __init__(
        self, path: Path, analyst_copy: Path, waited_s: float, duckdb_message: str
    ) -> None:
        pid = _HOLDER_PID.search(duckdb_message)
        holder = f"process {pid.group(1)}" if pid else "another process"
        super().__init__(
            f"The warehouse {path} is locked by {holder} (waited {waited_s:.1f} s): another sync "
            f"or an analyst session holds the file. Analysts should open the published copy "
            f"{analyst_copy} instead; close that session or let the sync finish, then retry."
        )
        self.path = path
        self.holder_pid = int(pid.group(1)) if pid else None


class WarehouseUnwritable(RuntimeError):  # noqa: N818 (the name other layers catch)
    """The warehouse file cannot be written (disk full, read-only, no permission): a human must
    act, so it is never retried. The write was rolled back: earlier data is intact."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"The warehouse {path} cannot be written: {reason}. Nothing of this write was kept; "
            "the earlier data is intact. Free disk space or fix the folder's permissions (or "
            "point SYNC365_DUCKDB_PATH at a writable place), then rerun."
        )
        self.path = path
        self.reason = reason


_UNWRITABLE = {
    "no space left": "the disk is full",
    "disk is full": "the disk is full",
    "file too large": "the file may not grow (disk quota or file size limit)",
    "read-only file system": "the file system is read-only",
    "permission denied": "this user may not write there",
    "cannot open file": "the file cannot be opened for writing",
}


def unwritable_reason(exc: BaseException) -> str | None:
    """Why a write failed, if it is the storage's fault rather than ours."""
    text = str(exc).lower()
    return next((reason for marker, reason in _UNWRITABLE.items() if marker in text), None)


def connect(
    path: Path, *, read_only: bool, timeout_s: float, analyst_copy: Path
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, retried on lock conflicts until `timeout_s`, then `WarehouseLocked`."""
    started = time.monotonic()
    ceiling = FIRST_BACKOFF_S
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                if not read_only and (reason := unwritable_reason(exc)) is not None:
                    raise WarehouseUnwritable(path, reason) from exc
                raise
            remaining = timeout_s - (time.monotonic() - started)
            if remaining <= 0:
                raise WarehouseLocked(
                    path, analyst_copy, time.monotonic() - started, str(exc)
                ) from exc
            time.sleep(min(remaining, random.uniform(ceiling / 2, ceiling)))
            ceiling = min(ceiling * 2, MAX_BACKOFF_S)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN, then COMMIT, or ROLLBACK on any exception (an interrupt too), so a failed write
    leaves the previous data exactly as it was. A failure of the storage itself (disk full,
    read-only) is `WarehouseUnwritable`, never the rollback's own complaint that masked it."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException as exc:
        with suppress(duckdb.Error):  # a failed COMMIT may already have ended the transaction
            con.execute("ROLLBACK")
        if isinstance(exc, duckdb.Error | OSError) and (reason := unwritable_reason(exc)):
            raise WarehouseUnwritable(path, reason) from exc
        raise
