"""No access token, refresh token or client secret reaches DuckDB, Dagster's storage or the logs."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from .conftest import PipelineFactory
from .test_sync_graph import HEALTHY_B, PARTNER, scenario


def secrets_in_token_cache(path: Path) -> set[str]:
    cache = json.loads(path.read_text())
    found = {
        entry["secret"]
        for section in ("AccessToken", "RefreshToken", "IdToken")
        for entry in cache.get(section, {}).values()
    }
    assert any(section in cache for section in ("AccessToken", "RefreshToken"))
    return found


def text_in_duckdb(path: Path) -> str:
    """Every text value of every table, queried (the file itself may be compressed)."""
    parts = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in tables:
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            parts.append(repr(rows))
    return "\n".join(parts)


def bytes_under(root: Path) -> bytes:
    return b"\n".join(path.read_bytes() for path in root.rglob("*") if path.is_file())


def test_no_secret_is_written_anywhere_but_the_0600_token_cache(
    pipeline_factory: PipelineFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    pipeline = pipeline_factory(scenario())
    dagster_home = tmp_path / "persistent_dagster_home"
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        pipeline.instance = instance
        assert pipeline.sync().success
        pipeline.sim.control.revoke_consent(HEALTHY_B)  # failures log and record errors too
        assert pipeline.sync().success

    assert stat.S_IMODE(pipeline.token_cache.stat().st_mode) == 0o600
    secrets = secrets_in_token_cache(pipeline.token_cache)
    secrets |= {PARTNER["client_secret"], PARTNER["refresh_token"]}
    assert len(secrets) >= 4

    warehouse_text = text_in_duckdb(pipeline.warehouse.path)
    analyst_text = text_in_duckdb(pipeline.warehouse.analyst_copy_path)
    dagster_bytes = bytes_under(dagster_home)
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "consent_revoked" in warehouse_text, "the search covers the tables that matter"
    assert dagster_bytes, "Dagster wrote its event log where we look"
    for secret in secrets:
        assert secret not in warehouse_text
        assert secret not in analyst_text
        assert secret.encode() not in dagster_bytes
        assert secret not in logs
