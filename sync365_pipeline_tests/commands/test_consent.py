"""`sync365 consent` as a user runs it: a real process signs in with the device code flow while
the test plays the person at the browser through the simulator's control API."""

from __future__ import annotations

import json
import queue
import re
import stat
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from sync365_pipeline.commands.cli import main
from sync365_pipeline.simulator import SimulatorServer
from sync365_pipeline_tests.scenarios import HEALTHY_A, HEALTHY_B, consent_scenario

from .processes import SYNC365, clean_env

WAIT_S = 30  # bound on every wait below; a healthy run takes about a second


class ConsentRun:
    """`sync365 consent` in its own process; its output lines arrive on a queue."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [*SYNC365, "consent", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def user_code(self) -> str:
        while (line := self.lines.get(timeout=WAIT_S)) is not None:
            self.output += line
            if match := re.search(r"Enter the code (\S+)", line):
                return match.group(1)
        raise AssertionError(f"no device code was printed:\n{self.output}")

    def finish(self) -> int:
        code = self.process.wait(timeout=WAIT_S * 4)  # the initial sync runs Dagster
        while (line := self.lines.get(timeout=WAIT_S)) is not None:
            self.output += line
        return code


@pytest.fixture
def start(
    simulator_factory: Callable[[Any], SimulatorServer], tmp_path: Path
) -> Callable[..., tuple[SimulatorServer, ConsentRun]]:
    """Start a simulator and `sync365 consent` against it, with no refresh token configured:
    whatever the sync then uses must come from the consent. `overrides` change the env."""

    def run(args: list[str] | None = None, **overrides: str) -> tuple[SimulatorServer, ConsentRun]:
        sim = simulator_factory(consent_scenario(code_lifetime_s=WAIT_S))
        env = clean_env(tmp_path) | sim.environment() | overrides
        del env["SYNC365_REFRESH_TOKEN"]
        env["SYNC365_TOKEN_CACHE"] = str(tmp_path / "token_cache.json")
        env["SYNC365_DUCKDB_PATH"] = str(tmp_path / "sync365.duckdb")
        return sim, ConsentRun(args or [], env, tmp_path)

    return run


@pytest.mark.e2e
def test_approved_with_mfa_stores_the_token_0600_and_runs_the_initial_sync(
    start: Callable[..., tuple[SimulatorServer, ConsentRun]], tmp_path: Path
) -> None:
    sim, consent = start()
    sim.control.approve_device_code(consent.user_code(), mfa=True)

    assert consent.finish() == 0, consent.output
    cache_path = tmp_path / "token_cache.json"
    assert stat.S_IMODE(cache_path.stat().st_mode) == 0o600
    cache = json.loads(cache_path.read_text())
    (refresh_token,) = [entry["secret"] for entry in cache["RefreshToken"].values()]
    assert "AccessToken" in cache, "the initial sync reuses the consent's access token"
    assert "with MFA" in consent.output
    assert refresh_token not in consent.output
    assert sim.environment()["SYNC365_CLIENT_SECRET"] not in consent.output
    with duckdb.connect(str(tmp_path / "sync365.duckdb"), read_only=True) as con:
        tenants = con.execute("SELECT DISTINCT tenant_id FROM license_facts").fetchall()
    assert sorted(tenant for (tenant,) in tenants) == sorted([HEALTHY_A, HEALTHY_B])


@pytest.mark.e2e
def test_no_sync_stores_the_token_and_leaves_the_warehouse_alone(
    start: Callable[..., tuple[SimulatorServer, ConsentRun]], tmp_path: Path
) -> None:
    sim, consent = start(["--no-sync"])
    sim.control.approve_device_code(consent.user_code(), mfa=True)

    assert consent.finish() == 0, consent.output
    assert (tmp_path / "token_cache.json").exists()
    assert not (tmp_path / "sync365.duckdb").exists()
    assert "sync365 sync" in consent.output


@pytest.mark.e2e
def test_sign_in_without_mfa_is_refused_naming_the_likely_causes(
    start: Callable[..., tuple[SimulatorServer, ConsentRun]], tmp_path: Path
) -> None:
    earlier = '{"RefreshToken": {}}'
    (tmp_path / "token_cache.json").write_text(earlier)
    sim, consent = start()
    sim.control.approve_device_code(consent.user_code(), mfa=False)

    assert consent.finish() == 1
    assert "no multi-factor authentication (amr: pwd)" in consent.output
    for cause in ("trusted (whitelisted) IP", "Duo", "per-user MFA is off"):
        assert cause in consent.output
    assert (tmp_path / "token_cache.json").read_text() == earlier, "nothing was stored"
    assert not (tmp_path / "sync365.duckdb").exists(), "no sync ran"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("decide", "message"),
    [("decline_device_code", "declined"), ("expire_device_code", "code expired")],
)
def test_declined_or_expired_code_stores_nothing(
    start: Callable[..., tuple[SimulatorServer, ConsentRun]],
    tmp_path: Path,
    decide: str,
    message: str,
) -> None:
    sim, consent = start()
    getattr(sim.control, decide)(consent.user_code())

    assert consent.finish() == 1
    assert message in consent.output
    assert "sync365 consent" in consent.output, "the remedy says to run it again"
    assert not (tmp_path / "token_cache.json").exists()


@pytest.mark.e2e
def test_polls_carry_the_client_secret(
    start: Callable[..., tuple[SimulatorServer, ConsentRun]], tmp_path: Path
) -> None:
    """A confidential-client device flow: a wrong secret fails at the first poll (AADSTS7000215),
    so the refresh token it would issue is one the sync can redeem with the secret."""
    _, consent = start(SYNC365_CLIENT_SECRET="an-old-secret-value-rotated-since")

    assert consent.finish() == 1
    assert "AADSTS7000215" in consent.output
    assert "SYNC365_CLIENT_SECRET" in consent.output
    assert not (tmp_path / "token_cache.json").exists()


def test_account_must_be_a_partner_account_named_when_there_are_several(
    tmp_path: Path,
) -> None:
    accounts = [("north", "partner"), ("south", "partner"), ("shop", "direct")]
    config = tmp_path / "accounts.toml"
    config.write_text(
        "".join(
            f'[[accounts]]\nname = "{name}"\nkind = "{kind}"\n'
            f'tenant_id = "{index}1111111-1111-4111-8111-111111111111"\n'
            'client_id = "7bb78427-f058-44ea-8765-21107cf383f6"\n'
            'client_secret_env = "TEST_SECRET"\n'
            for index, (name, kind) in enumerate(accounts)
        )
    )
    env = {"SYNC365_CONFIG": str(config), "TEST_SECRET": "s3cret-value"}
    runner = CliRunner()

    several = runner.invoke(main, ["consent"], env=env)
    assert several.exit_code == 2
    assert "north, south" in several.output
    assert "--account" in several.output
    direct = runner.invoke(main, ["consent", "--account", "shop"], env=env)
    assert direct.exit_code == 2
    assert "direct tenant" in direct.output
    unknown = runner.invoke(main, ["consent", "--account", "west"], env=env)
    assert unknown.exit_code == 2
    assert "north, south, shop" in unknown.output
