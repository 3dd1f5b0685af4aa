"""`sync365 simulator` as a user runs it: export lines first, a real MSAL call, clean SIGTERM."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

import msal
import pytest
import requests

from sync365_pipeline.simulator import SimulatorServer, load_scenario
from sync365_pipeline.simulator.cli import export_lines
from sync365_pipeline_tests.simulator.helpers import PARTNER_CENTER_SCOPE, claims

VARIABLES = [
    "SYNC365_AUTHORITY_HOST",
    "SYNC365_GRAPH_URL",
    "SYNC365_PARTNER_CENTER_URL",
    "SYNC365_CA_BUNDLE",
    "SYNC365_CLIENT_ID",
    "SYNC365_CLIENT_SECRET",
    "SYNC365_PARTNER_TENANT_ID",
    "SYNC365_REFRESH_TOKEN",
]


@pytest.mark.e2e
def test_cli_prints_exports_serves_msal_and_stops_on_sigterm(tmp_path):
    ca_path = tmp_path / "ca.pem"
    process = subprocess.Popen(
        [sys.executable, "-m", "sync365_pipeline.simulator", "--scenario", "demo",
         "--ca-path", str(ca_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        lines = [process.stdout.readline() for _ in VARIABLES]
        assert all(line.startswith("export ") for line in lines)
        env = dict(shlex.split(line)[1].split("=", 1) for line in lines)
        assert list(env) == VARIABLES
        assert env["SYNC365_CA_BUNDLE"] == str(ca_path)
        assert env["SYNC365_GRAPH_URL"] == env["SYNC365_AUTHORITY_HOST"]
        assert "listening on" in process.stderr.readline()

        session = requests.Session()
        session.verify, session.trust_env = env["SYNC365_CA_BUNDLE"], False
        app = msal.ConfidentialClientApplication(
            env["SYNC365_CLIENT_ID"],
            client_credential=env["SYNC365_CLIENT_SECRET"],
            authority=f"{env['SYNC365_AUTHORITY_HOST']}/{env['SYNC365_PARTNER_TENANT_ID']}",
            instance_discovery=False,
            http_client=session,
        )
        result = app.acquire_token_by_refresh_token(
            env["SYNC365_REFRESH_TOKEN"], scopes=[PARTNER_CENTER_SCOPE]
        )
        assert claims(result["access_token"])["tid"] == env["SYNC365_PARTNER_TENANT_ID"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0


def test_exports_survive_shell_eval(tmp_path):
    """What `eval "$(sync365 simulator | head -8)"` does to the values."""
    with SimulatorServer(load_scenario("demo"), ca_path=tmp_path / "ca.pem") as sim:
        script = export_lines(sim.environment()) + "env | grep ^SYNC365_"
        shell = subprocess.run(
            ["/bin/sh", "-c", script], capture_output=True, text=True, check=True
        )
        assert dict(line.split("=", 1) for line in shell.stdout.splitlines()) == sim.environment()


@pytest.mark.e2e
def test_bad_scenario_is_a_clear_cli_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("partner: {tenant_id: nope}\n")
    done = subprocess.run(
        [sys.executable, "-m", "sync365_pipeline.simulator", "--scenario", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "partner.tenant_id: 'nope' is not a GUID" in done.stderr
    assert done.stdout == ""
