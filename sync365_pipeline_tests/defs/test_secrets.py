"""No access token, refresh token or client secret reaches DuckDB, Dagster's storage or the logs."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sync365_pipeline.microsoft import AccessToken, TokenProvider
from sync365_pipeline.microsoft.auth import CUSTOMER_TOKENS_SECTION
from sync365_pipeline_tests.scenarios import HEALTHY_B, PARTNER, pipeline_scenario
from sync365_pipeline_tests.secrets_scan import bytes_under, secrets_found, text_in_duckdb

from .conftest import PipelineFactory


def secrets_in_token_cache(path: Path) -> set[str]:
    cache = json.loads(path.read_text())
    sections = [cache.get(name, {}) for name in ("RefreshToken", "IdToken", "AccessToken")]
    sections += [tokens["AccessToken"] for tokens in cache[CUSTOMER_TOKENS_SECTION].values()]
    found = {entry["secret"] for section in sections for entry in section.values()}
    assert cache.get("RefreshToken"), "the rotated refresh token is kept"
    assert cache.get("AccessToken"), "and the access tokens, for a sync within their lifetime"
    return found


def record_access_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Spy on every access token the pipeline obtains (written only to the 0600 token cache)."""
    issued: list[str] = []
    for name in ("partner_center_token", "partner_graph_token", "graph_token"):
        original = getattr(TokenProvider, name)

        def spy(self: TokenProvider, *args: object, _original: Any = original) -> AccessToken:
            token = _original(self, *args)
            issued.append(token.value.reveal())
            return token

        monkeypatch.setattr(TokenProvider, name, spy)
    return issued


def test_no_secret_is_written_anywhere_but_the_0600_token_cache(
    pipeline_factory: PipelineFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    access_tokens = record_access_tokens(monkeypatch)
    pipeline = pipeline_factory(pipeline_scenario())
    dagster_home = tmp_path / "persistent_dagster_home"
    dagster_home.mkdir()
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        pipeline.instance = instance
        assert pipeline.sync().success
        assert stat.S_IMODE(pipeline.token_cache.stat().st_mode) == 0o600
        secrets = secrets_in_token_cache(pipeline.token_cache)
        pipeline.sim.control.revoke_consent(HEALTHY_B)  # a customer's failure is recorded
        pipeline.token_cache.unlink()  # the next day: the cached access tokens have expired
        assert pipeline.sync().success
        # A partner-level failure goes through the error log, Dagster's failure event and
        # partner_status, carrying Microsoft's text: it must carry no secret either.
        secrets |= secrets_in_token_cache(pipeline.token_cache)
        pipeline.sim.control.set_partner_refresh_token_state("revoked")
        pipeline.token_cache.unlink()
        assert not pipeline.sync().success

    assert len(access_tokens) >= 6, "partner + three customers, over two syncs"
    secrets |= {PARTNER["client_secret"], PARTNER["refresh_token"], *access_tokens}

    warehouse_text = text_in_duckdb(pipeline.warehouse.path)
    dagster_bytes = bytes_under(dagster_home)
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "consent_revoked" in warehouse_text, "the search covers the tables that matter"
    assert "AADSTS50173" in warehouse_text, "the partner-level failure was recorded"
    assert "AADSTS50173" in logs, "and logged, where we look"
    assert b"AADSTS50173" in dagster_bytes, "and in Dagster's event log"
    assert dagster_bytes, "Dagster wrote its event log where we look"
    assert (
        secrets_found(
            secrets,
            duckdb_files=[pipeline.warehouse.path, pipeline.warehouse.analyst_copy_path],
            trees=[dagster_home],
            texts=[logs],
        )
        == []
    )
