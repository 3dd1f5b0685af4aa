"""The Postgres `dagster.yaml` the docs ship opens a Postgres instance with sync365's settings,
and sync365 never replaces a `dagster.yaml` it finds."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pytest
import yaml

from sync365_pipeline.commands.run import DAGSTER_YAML, ensure_dagster_home

if TYPE_CHECKING:
    from .postgres import PostgresServer

POSTGRES_EXAMPLE = Path(__file__).parents[2] / "docs" / "dagster.postgres.yaml"


def test_the_postgres_example_has_every_setting_sync365_writes_plus_its_storage():
    example = yaml.safe_load(POSTGRES_EXAMPLE.read_text())
    storage = example.pop("storage")

    assert example == yaml.safe_load(DAGSTER_YAML)
    assert storage == {"postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}


def test_the_postgres_example_opens_an_instance_whose_storage_is_postgres(
    postgres_server: PostgresServer,
    dagster_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    shutil.copy(POSTGRES_EXAMPLE, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_server.url(dagster_database))

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storages = [instance.run_storage, instance.event_log_storage, instance.schedule_storage]
        assert [type(s).__name__ for s in storages] == [
            "PostgresRunStorage",
            "PostgresEventLogStorage",
            "PostgresScheduleStorage",
        ]
        assert instance.event_log_storage.supports_global_concurrency_limits
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job())

    rows = postgres_server.query(dagster_database, "SELECT run_id FROM runs")
    assert rows == [(run.run_id,)], "the run went to Postgres"
    assert not list(tmp_path.glob("**/*.db")), "and nothing to sqlite"


def test_ensure_dagster_home_keeps_a_dagster_yaml_it_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    users = tmp_path / "users_home"
    users.mkdir()
    shutil.copy(POSTGRES_EXAMPLE, users / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(users))
    assert ensure_dagster_home() == users
    assert (users / "dagster.yaml").read_text() == POSTGRES_EXAMPLE.read_text()

    fresh = tmp_path / "fresh_home"
    monkeypatch.setenv("DAGSTER_HOME", str(fresh))
    assert ensure_dagster_home() == fresh
    assert (fresh / "dagster.yaml").read_text() == DAGSTER_YAML
