"""`sync365 dev`: the Dagster UI over the Microsoft cloud simulator, with no Microsoft account.

The simulator runs in this process; `dagster dev` runs as a child in its own process group with
the simulator's settings in its environment, so its webserver, daemon, code server and run
workers all talk to the simulator. Ctrl-C or SIGTERM stops that whole group (SIGINT first, as a
terminal would send it, then SIGKILL for whatever outlives the grace period), then the simulator.

Dagster's instance (runs, sensor cursors) and the DuckDB warehouse persist under the
data directory between sessions. The token cache does not: the simulator signs refresh tokens
with a key made fresh at every start, so a cached one from an earlier session would be refused
(AADSTS9002313); each session starts from the scenario's seed refresh token instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from types import FrameType

import click
import requests

from sync365_pipeline.commands.run import ensure_dagster_home
from sync365_pipeline.core.settings import DATA_DIR

HOST = "127.0.0.1"
WORKSPACE = Path("workspace.yaml")
STOP_GRACE_S = 30.0  # dagster dev gives its webserver and daemon 10 s each to shut down
POLL_S = 0.5


@click.command("dev")
@click.option("--port", default=3000, show_default=True, help="Dagster UI port on 127.0.0.1.")
@click.option("--scenario", default="demo", show_default=True, help="Simulator scenario.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DATA_DIR / "dev",
    show_default=True,
    help="Where Dagster's instance, the warehouse and the token cache live.",
)
def dev(port: int, scenario: str, data_dir: Path) -> None:
    """Run the Dagster UI (schedule and sensors on) against the Microsoft cloud simulator."""
    if not WORKSPACE.is_file():
        raise click.ClickException(f"No {WORKSPACE} here: run `sync365 dev` in the project root.")
    if not port_is_free(port):
        raise click.ClickException(f"Port {port} on {HOST} is in use: pass another --port.")
    sys.exit(serve(port, scenario, data_dir.resolve()))


def serve(port: int, scenario: str, data_dir: Path) -> int:
    """Run until SIGINT/SIGTERM or until `dagster dev` exits; returns the exit code."""
    # Imported here: only the commands that start the simulator pay for its import.
    from sync365_pipeline.simulator import SimulatorServer, load_scenario

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    # Installed before `dagster dev` starts: handled signals reset to the default in a child,
    # whereas signals this process inherited as ignored (a background job of a non-interactive
    # shell) would stay ignored in it and make it deaf to SIGINT and SIGTERM.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)

    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(data_dir / "dagster_home")
    dagster_home = ensure_dagster_home()
    token_cache = data_dir / "token_cache.json"
    token_cache.unlink(missing_ok=True)
    with SimulatorServer(load_scenario(scenario), ca_path=data_dir / "simulator-ca.pem") as sim:
        env = {
            **os.environ,
            **sim.environment(),
            "SYNC365_TOKEN_CACHE": str(token_cache),
            "SYNC365_DUCKDB_PATH": str(data_dir / "sync365.duckdb"),
        }
        command = [sys.executable, "-m", "dagster", "dev", "-w", str(WORKSPACE)]
        command += ["-h", HOST, "-p", str(port)]
        # S603: a fixed command line; the port is an int.
        process = subprocess.Popen(  # noqa: S603
            command, env=env, stdin=subprocess.DEVNULL, process_group=0
        )
        ui_url = f"http://{HOST}:{port}"
        click.echo(
            f"Microsoft cloud simulator ({scenario}) on {sim.url}\n"
            f"Dagster home {dagster_home}, warehouse {env['SYNC365_DUCKDB_PATH']}\n"
            f"Starting the Dagster UI at {ui_url} (Ctrl-C stops everything) ..."
        )
        try:
            code = supervise(process, ui_url, stop)
        finally:
            stop_process_group(process)
    click.echo("Dagster and the simulator stopped.")
    return 0 if received else code


def supervise(process: subprocess.Popen[bytes], ui_url: str, stop: threading.Event) -> int:
    """Wait for a stop signal, announcing once when the UI answers; early exit is an error."""
    ready = False
    while not stop.wait(POLL_S):
        if process.poll() is not None:
            click.echo(f"dagster dev exited with code {process.returncode}.", err=True)
            return process.returncode or 1
        if not ready and ui_answers(ui_url):
            ready = True
            click.echo(
                f"Dagster UI ready: open {ui_url}\n"
                "  Jobs > full_sync > Launch run syncs every simulated customer in one run;\n"
                "  the tenants_synced check on subscribed_skus names the failing ones, and\n"
                "  Jobs > rerun_failed_tenants fetches exactly those again.\n"
                "  The daily_sync schedule and both sensors are running."
            )
    return 0


def ui_answers(ui_url: str) -> bool:
    with suppress(requests.RequestException):
        return requests.get(f"{ui_url}/server_info", timeout=2).ok
    return False


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGINT the group (dagster dev then shuts its services down), wait, SIGKILL what is left.

    The group outlives its leader when a run worker or code server lingers, hence the final
    SIGKILL to the group even after `dagster dev` itself exited.
    """
    group = process.pid  # process_group=0 made it the group leader
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_S)
    while group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    process.wait()


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
