"""A real PostgreSQL server for the tests, started from the installed binaries (Debian's
`postgresql` package puts them in /usr/lib/postgresql/<version>/bin, off PATH).

`initdb` and `postgres` refuse to run as root, so as root the server runs as the `postgres`
system user (or `nobody`) in a temporary folder that user owns. It listens on 127.0.0.1 only,
with no Unix socket, and requires the password of its one superuser, which has characters a
URL must percent-encode, so the URL form the docs give is what the tests use.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2

SUPERUSER = "sync365"
START_TIMEOUT_S = 60  # only a broken server comes near this
PORT_ATTEMPTS = 3  # another process may take the free port between our probe and the start
# A throwaway cluster: durability costs time and buys nothing here.
SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
"""


def find_postgres_bin() -> Path | None:
    """The folder with `initdb`, `pg_ctl` and `postgres`: Debian's newest, else from PATH."""
    debian = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda folder: int(re.sub(r"\D", "", folder.parent.name) or 0),
    )
    if debian:
        return debian[-1]
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and (Path(pg_ctl).parent / "initdb").exists():
        return Path(pg_ctl).parent
    return None


def server_user() -> str | None:
    """Whom the server runs as: this user, unless root (`postgres`, else `nobody`)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and there is no `postgres` or `nobody` user to run as")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """A private cluster: `start`, then databases by `create_database`, then `stop`."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.user = server_user()
        self.password = secrets.token_urlsafe(12) + "@/:%"
        self.root = Path(tempfile.mkdtemp(prefix="sync365-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / program), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30, check=False
        )

    def start(self) -> PostgresServer:
        """Create the cluster and start the server; on any failure leave nothing behind."""
        try:
            self._init_and_start()
        except BaseException:
            self.stop()
            raise
        return self

    def _init_and_start(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(self.password)
        if self.user:
            shutil.chown(self.root, user=self.user)
            shutil.chown(password_file, user=self.user)
        initdb = self._run(
            "initdb",
            f"--pgdata={self.data}",
            f"--username={SUPERUSER}",
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        password_file.unlink()
        if initdb.returncode:
            raise RuntimeError(f"initdb failed: {initdb.stderr.strip()}")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS)
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            started = self._run(
                "pg_ctl",
                "start",
                f"--pgdata={self.data}",
                f"--log={self.log}",
                f"--options=-p {self.port}",
                "--wait",
                f"--timeout={START_TIMEOUT_S}",
            )
            if started.returncode == 0:
                return
        log = self.log.read_text() if self.log.exists() else started.stderr
        raise RuntimeError(f"the PostgreSQL server did not start: {log.strip()[-2000:]}")

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are cut) and remove its files."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", f"--pgdata={self.data}", "--mode=fast", "--wait")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, *, driver: str = "psycopg2") -> str:
        """A database's URL: SQLAlchemy's with psycopg2 named, the form dagster.yaml takes
        (SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3); `driver=""` gives libpq's
        (psycopg2.connect, psql)."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        userinfo = f"{SUPERUSER}:{quote(self.password, safe='')}"
        return f"{scheme}://{userinfo}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        with closing(psycopg2.connect(self.url("postgres", driver=""))) as con:
            con.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with con.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')

    def query(self, database: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with (
            closing(psycopg2.connect(self.url(database, driver=""))) as con,
            con.cursor() as cursor,
        ):
            cursor.execute(sql, params)
            return cursor.fetchall()
