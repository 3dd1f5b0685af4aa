"""`sync365 dev` as a user runs it: the Dagster webserver answers GraphQL about our definitions,
runs a job against the simulator, and SIGTERM leaves no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import requests

from sync365_pipeline.simulator import load_scenario

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SYNC365 = Path(sys.executable).with_name("sync365")
READY_TIMEOUT_S = 120
RUN_TIMEOUT_S = 240  # a hang fails it; under dagster dev every step is a process of its own
STOP_TIMEOUT_S = 60
REPOSITORY = {"repositoryLocationName": "sync365_pipeline", "repositoryName": "__repository__"}

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds processes in /proc"),
]


def session_processes(session_id: int) -> list[int]:
    """Pids in a session: `sync365 dev` and everything under it, whatever their process group."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process exited meanwhile
            continue
        if int(fields[3]) == session_id:
            pids.append(int(stat.parent.name))
    return pids


def kill_session(session_id: int) -> None:
    for pid in session_processes(session_id):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout_s} s")


class DevServer:
    """A running `sync365 dev` and a GraphQL client for its webserver."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, data_dir: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.output = data_dir / "output.log"

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def answers(self) -> bool:
        assert self.process.poll() is None, "sync365 dev exited early"
        try:
            return requests.get(f"{self.url}/server_info", timeout=2).ok
        except requests.RequestException:
            return False


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("dev")
    with (data_dir / "output.log").open("wb") as output:  # a file: a full pipe would block it
        process = subprocess.Popen(
            [str(SYNC365), "dev", "--port", str(port), "--data-dir", str(data_dir)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session and process group, which teardown kills
        )
    server = DevServer(process, port, data_dir)
    try:
        wait_for(server.answers, READY_TIMEOUT_S, "the Dagster webserver")
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        finally:
            kill_session(process.pid)


def test_webserver_serves_our_assets_schedule_and_running_sensors(dev_server: DevServer) -> None:
    data = dev_server.graphql(
        """
        query ($selector: RepositorySelector!) {
          repositoryOrError(repositorySelector: $selector) {
            __typename
            ... on Repository {
              assetNodes { assetKey { path } }
              schedules { name scheduleState { status } }
              sensors { name sensorState { status } }
            }
          }
        }
        """,
        selector=REPOSITORY,
    )
    repository = data["repositoryOrError"]
    assert repository["__typename"] == "Repository", repository
    assets = {"/".join(node["assetKey"]["path"]) for node in repository["assetNodes"]}
    assert assets >= {"partner_token", "customers", "subscribed_skus", "license_facts"}
    schedules = {item["name"]: item["scheduleState"]["status"] for item in repository["schedules"]}
    assert schedules["daily_sync"] == "RUNNING"
    sensors = {item["name"]: item["sensorState"]["status"] for item in repository["sensors"]}
    assert sensors == {
        "consent_sensor": "RUNNING",
        "refresh_token_sensor": "RUNNING",
    }


def test_full_sync_launched_through_graphql_succeeds_against_the_simulator(
    dev_server: DevServer,
) -> None:
    launched = dev_server.graphql(
        """
        mutation ($params: ExecutionParams!) {
          launchRun(executionParams: $params) {
            __typename
            ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message }
          }
        }
        """,
        # In one process: the multiprocess executor (a process per step) is tested on its own
        # (defs/test_chunks.py); here the run goes through the daemon and the run launcher.
        params={
            "selector": {**REPOSITORY, "jobName": "full_sync"},
            "runConfigData": {"execution": {"config": {"in_process": {}}}},
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished() -> str | None:
        status = dev_server.graphql(
            "query ($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", id=run_id
        )["runOrError"]["status"]
        return status if status in {"SUCCESS", "FAILURE", "CANCELED"} else None

    assert wait_for(finished, RUN_TIMEOUT_S, "the full_sync run") == "SUCCESS"
    assert (dev_server.data_dir / "sync365.duckdb").is_file()


def test_sigterm_stops_dagster_and_the_simulator_leaving_no_process(
    dev_server: DevServer,
) -> None:
    """Runs last in this module: it stops the shared server."""
    dev_server.process.send_signal(signal.SIGTERM)
    assert dev_server.process.wait(timeout=STOP_TIMEOUT_S) == 0
    assert session_processes(dev_server.process.pid) == []
    output = dev_server.output.read_text()
    assert f"Dagster UI ready: open {dev_server.url}" in output
    assert "Dagster and the simulator stopped." in output
    partner = load_scenario("demo").partner
    for secret in (partner.client_secret, partner.refresh_token, "1.AXoA", "eyJ"):
        assert secret not in output
