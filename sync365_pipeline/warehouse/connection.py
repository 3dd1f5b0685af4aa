"""Opening the DuckDB file: one writer process at a time, so retry briefly, then say who holds it.

DuckDB locks the whole file per process: a writer elsewhere, or even a read-only analyst shell,
makes `duckdb.connect` fail at once with "Could not set lock on file ... (PID n)". Connections are
therefore opened per operation and closed right after, and opening retries with jittered
exponential backoff (jitter keeps several waiting writers from retrying in lock-step) until a
deadline, then raises `WarehouseLocked` with what to do about it.

Checkpoints are guarded. A DuckDB checkpoint rewrites the file's metadata block in place (the block
at byte 12288, which the current header still points into), and a SIGKILL that lands inside that
write leaves it half-written (the kernel abandons a buffered write between pages when a fatal signal
arrives; a full disk does the same): the file then opens neither read-only nor read-write ("Corrupt
database file: computed checksum ... in block at location 12288"). So DuckDB never checkpoints by
itself here: a read-write connection turns its automatic checkpoints off, and `close` copies the
file aside before it checkpoints, under a `flock` the kernel frees if the process dies. A copy left
beside a pending WAL means a checkpoint was cut short: the copy and the WAL are the committed state,
and the next `connect` puts the copy back before DuckDB opens the file.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0
_HOLDER_PID = re.compile(r"PID (\d+)")
# Read-write connections never checkpoint by themselves (see the module's docstring). DuckDB 2.x
# also checkpoints instead of logging a commit whose WAL entry would exceed a threshold.
_NO_AUTOMATIC_CHECKPOINTS = (
    "PRAGMA disable_checkpoint_on_shutdown",
    "SET wal_autocheckpoint = '1TB'",
)
_SKIP_WAL_THRESHOLD = "auto_checkpoint_skip_wal_threshold"
# A guarded checkpoint copies the whole file, so the operations of a sync only checkpoint once the
# WAL is this large (each open replays it); the analyst copy's publisher checkpoints every time.
CHECKPOINT_AFTER_WAL_BYTES = 32 * 1024 * 1024


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
    """`duckdb.connect`, retried on lock conflicts until `timeout_s`, then `WarehouseLocked`; a
    checkpoint a dead process cut short is undone first. Close a connection that wrote with
    `close`, which checkpoints it."""
    restore_interrupted_checkpoint(path)
    started = time.monotonic()
    ceiling = FIRST_BACKOFF_S
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            if not read_only:
                _turn_off_automatic_checkpoints(con)
            return con
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


def close(con: duckdb.DuckDBPyConnection, path: Path, *, checkpoint: bool = False) -> None:
    """Close a read-write connection, checkpointing its WAL into the file first when asked to
    (the publisher does, once per sync) or when the WAL has grown past
    `CHECKPOINT_AFTER_WAL_BYTES` (every open replays it): the file is copied aside,
    checkpointed, and the copy dropped once the checkpoint is whole. No room for the copy: no
    checkpoint; the WAL keeps the commits until a later close."""
    try:
        wal = _wal(path)
        if wal.exists() and (checkpoint or wal.stat().st_size >= CHECKPOINT_AFTER_WAL_BYTES):
            with _checkpoint_lock(path):
                try:
                    _copy_atomically(path, _backup(path))
                except OSError:  # no room for the copy: the WAL keeps the commits for now
                    return
                con.execute("CHECKPOINT")
                _backup(path).unlink()
    finally:
        con.close()


def restore_interrupted_checkpoint(path: Path) -> None:
    """Put back the copy a checkpoint cut short left beside the WAL (its file may be torn); drop a
    copy whose checkpoint completed (the WAL is gone)."""
    if not _backup(path).exists():
        return
    with _checkpoint_lock(path):
        if not _backup(path).exists():  # another process restored it while this one waited
            return
        if _wal(path).exists():
            _copy_atomically(_backup(path), path)
        _backup(path).unlink()


def _turn_off_automatic_checkpoints(con: duckdb.DuckDBPyConnection) -> None:
    for statement in _NO_AUTOMATIC_CHECKPOINTS:
        con.execute(statement)
    settings = "SELECT count(*) FROM duckdb_settings() WHERE name = ?"
    if (row := con.execute(settings, [_SKIP_WAL_THRESHOLD]).fetchone()) and row[0]:
        con.execute(f"SET {_SKIP_WAL_THRESHOLD} = {2**62}")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _backup(path: Path) -> Path:
    return path.with_name(path.name + ".before-checkpoint")


@contextmanager
def _checkpoint_lock(path: Path) -> Iterator[None]:
    """Held while a checkpoint runs or a cut-short one is undone; freed by the kernel when its
    holder dies."""
    with path.with_name(path.name + ".checkpoint-lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _copy_atomically(source: Path, target: Path) -> None:
    """`target` becomes a whole, synced copy of `source` or stays as it was. Only under the
    checkpoint lock: a partial copy a dead process left is simply written over."""
    partial = target.with_name(f".{target.name}.tmp")
    try:
        shutil.copyfile(source, partial)
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


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
