"""`sync365 sync` on Dagster's Postgres storage, as docs/deployment.md sets it up: a real server,
the shipped `dagster.yaml`, the recommended variables. A sync killed mid-fetch is recovered by
the next one through Postgres storage (its run marked failed, its pool slot freed); that sync's
runs and events land in Postgres, its facts in DuckDB; no secret of the partner reaches
Postgres."""

from __future__ import annotations

import json
import shutil
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import pytest

from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline_tests.commands import processes
from sync365_pipeline_tests.scenarios import PARTNER, pipeline_scenario

from .test_dagster_yaml import POSTGRES_EXAMPLE

if TYPE_CHECKING:
    from .postgres import PostgresServer

pytestmark = pytest.mark.e2e

SUCCESS, FAILURE = dg.DagsterRunStatus.SUCCESS.value, dg.DagsterRunStatus.FAILURE.value
FINISHED = {SUCCESS, FAILURE, dg.DagsterRunStatus.CANCELED.value}
RUN_SUCCESS = dg.DagsterEventType.RUN_SUCCESS.value  # stored as PIPELINE_SUCCESS
MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION.value


def run_statuses(server: PostgresServer, database: str) -> dict[str, str]:
    return dict(server.query(database, "SELECT run_id, status FROM runs"))


def event_types_by_run(server: PostgresServer, database: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for run_id, event_type in server.query(
        database, "SELECT run_id, dagster_event_type FROM event_logs WHERE run_id <> ''"
    ):
        found.setdefault(run_id, set()).add(event_type)
    return found


def held_slots(server: PostgresServer, database: str) -> list[tuple[str, str]]:
    """(pool, run id) of every concurrency slot a run holds."""
    return server.query(
        database,
        "SELECT concurrency_key, run_id FROM concurrency_slots "
        "WHERE run_id IS NOT NULL AND NOT deleted",
    )


def slots_per_pool(server: PostgresServer, database: str) -> dict[str, int]:
    """How many slots each pool has: dagster.yaml's `default_limit` once a run used the pool."""
    return dict(
        server.query(
            database,
            "SELECT concurrency_key, count(*) FROM concurrency_slots "
            "WHERE NOT deleted GROUP BY concurrency_key",
        )
    )


def text_in_database(server: PostgresServer, database: str) -> str:
    """Every value of every table, compressed snapshots decompressed."""
    tables = server.query(
        database,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    parts = []
    for (table,) in tables:
        for row in server.query(database, f'SELECT * FROM "{table}"'):
            for value in row:
                if isinstance(value, memoryview):
                    raw = value.tobytes()
                    try:
                        value = zlib.decompress(raw).decode()
                    except zlib.error:
                        value = raw.decode(errors="replace")
                parts.append(str(value))
    return "\n".join(parts)


def cached_secrets(token_cache: Path) -> set[str]:
    """Every token the cache holds (refresh, ID and access tokens, wherever they are kept)."""
    cache = json.loads(token_cache.read_text())
    assert cache.get("RefreshToken"), "the sync keeps the rotated refresh token"
    return set(_secret_fields(cache))


def _secret_fields(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("secret"), str):
            yield value["secret"]
        for child in value.values():
            yield from _secret_fields(child)


def test_a_sync_on_postgres_recovers_a_killed_one_and_keeps_secrets_out(
    postgres_server: PostgresServer,
    dagster_database: str,
    simulator_factory: Callable[[Any], SimulatorServer],
    tmp_path: Path,
):
    scenario = pipeline_scenario()
    tenants = {customer["tenant_id"] for customer in scenario["customers"]}
    sim = simulator_factory(scenario)
    env = processes.simulator_env(sim, tmp_path) | {
        "DAGSTER_POSTGRES_URL": postgres_server.url(dagster_database),
        "DAGSTER_EVENT_BATCH_SIZE": "1000",
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
    }
    home = Path(env["DAGSTER_HOME"])
    home.mkdir()
    shutil.copy(POSTGRES_EXAMPLE, home / "dagster.yaml")
    token_cache = Path(env["SYNC365_TOKEN_CACHE"])

    # The first sync, killed while fetching, leaves its run STARTED in Postgres (and perhaps
    # its pool slot taken).
    for tenant in tenants:
        sim.control.set_fault(tenant, processes.SLOW_GRAPH)
    killed = processes.start_sync(env, tmp_path)
    processes.wait_until_fetching(sim, killed)
    killed.kill()
    killed_out, killed_err = killed.communicate(timeout=processes.HANG_S)
    issued = cached_secrets(token_cache)  # it signed in before it was killed
    abandoned = {
        run_id
        for run_id, status in run_statuses(postgres_server, dagster_database).items()
        if status not in FINISHED
    }
    assert abandoned, "the killed sync's unfinished run is in Postgres"
    assert {run_id for _, run_id in held_slots(postgres_server, dagster_database)} <= abandoned
    for tenant in tenants:
        sim.control.clear_faults(tenant)

    after = processes.run_sync365(["sync"], env, tmp_path)

    assert after.returncode == 0, after.stderr
    assert f"Marked {len(abandoned)} run(s)" in after.stdout
    statuses = run_statuses(postgres_server, dagster_database)
    assert {statuses[run_id] for run_id in abandoned} == {FAILURE}
    finished_now = statuses.keys() - abandoned
    assert finished_now
    assert {statuses[run_id] for run_id in finished_now} == {SUCCESS}
    events = event_types_by_run(postgres_server, dagster_database)
    assert all(RUN_SUCCESS in events.get(run_id, set()) for run_id in finished_now)
    assert MATERIALIZATION in set().union(*events.values())
    assert held_slots(postgres_server, dagster_database) == [], "no slot outlives its run"
    assert set(slots_per_pool(postgres_server, dagster_database).values()) == {1}
    assert processes.fact_tenants(tmp_path) == tenants
    assert not list(home.glob("**/*.db")), "nothing went to sqlite"
    assert (home / "dagster.yaml").read_text() == POSTGRES_EXAMPLE.read_text()

    stored = text_in_database(postgres_server, dagster_database)
    assert all(run_id in stored for run_id in statuses), "the search covers every run"
    issued |= cached_secrets(token_cache)
    secrets = {PARTNER["client_secret"], PARTNER["refresh_token"], *issued}
    for secret in secrets:
        assert secret not in stored
    printed = killed_out + killed_err + after.stdout + after.stderr
    assert postgres_server.password not in printed + stored
