"""Fixtures of the deployment tests: a real PostgreSQL server that the tests start themselves.

- `postgres_server` (session): a private cluster on 127.0.0.1 (one per xdist worker), stopped
  and removed at the end.
- `dagster_database` (function): the name of a new empty database on it (its URL:
  `postgres_server.url(name)`).

Without the server's binaries (`make test` installs Debian's `postgresql` when it can), a
server that starts from them, or the `postgres` extra, these tests skip, saying why; under
CI=true they fail instead, so that CI never passes by skipping them.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

try:
    import dagster_postgres

    from .postgres import PostgresServer, find_postgres_bin
except ImportError as exc:
    MISSING_EXTRA: str | None = f"{exc.name} is not installed (pip install -e '.[postgres]')"
else:
    MISSING_EXTRA = None
    del dagster_postgres  # imported only to know that Dagster can use Postgres


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in {"true", "1"}:
        pytest.fail(f"{reason}; CI=true, where the Postgres tests must run, not skip")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if MISSING_EXTRA:
        unavailable(MISSING_EXTRA)
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        unavailable(
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin or on PATH "
            "(apt-get install postgresql)"
        )
    try:
        server = PostgresServer(bin_dir).start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        unavailable(f"a PostgreSQL server could not be started from {bin_dir}: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dagster_database(postgres_server: PostgresServer) -> str:
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    return name
