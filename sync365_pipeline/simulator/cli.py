"""`sync365 simulator`: run the Microsoft cloud simulator in the foreground.

Once listening it prints `export SYNC365_...=...` lines on stdout (so `eval "$(... | head -8)"`
configures a shell), then a human line on stderr; it stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import sys
from pathlib import Path

import click

from sync365_pipeline.core.settings import DATA_DIR
from sync365_pipeline.simulator.scenario import ScenarioError, bundled_scenario_names, load_scenario
from sync365_pipeline.simulator.server import HOST, environment, start_site
from sync365_pipeline.simulator.state import SimulatorState


def export_lines(settings: dict[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in settings.items())


async def _serve(state: SimulatorState, port: int, ca_path: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner, bound_port = await start_site(state, port, ca_path)
    try:
        url = f"https://{HOST}:{bound_port}"
        sys.stdout.write(export_lines(environment(url, ca_path, state)))
        sys.stdout.flush()
        click.echo(
            f"Simulator for scenario {state.scenario_name} listening on {url} "
            f"({len(state.customers)} customers); Ctrl-C to stop",
            err=True,
        )
        await stop.wait()
    finally:
        await runner.cleanup()
    click.echo("Simulator stopped.", err=True)


@click.command("simulator")
@click.option(
    "--scenario",
    "scenario_name",
    default="demo",
    show_default=True,
    help=f"A bundled scenario ({', '.join(bundled_scenario_names())}) or a .yaml/.json file.",
)
@click.option(
    "--port", default=0, show_default=True, help="TCP port on 127.0.0.1; 0 picks a free one."
)
@click.option(
    "--ca-path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DATA_DIR / "simulator-ca.pem",
    show_default=True,
    help="Where to write the PEM of the CA that signs the simulator's certificate.",
)
def simulator(scenario_name: str, port: int, ca_path: Path) -> None:
    """Run a local Microsoft cloud (Entra ID, Partner Center, Graph) for the pipeline to use."""
    try:
        scenario = load_scenario(scenario_name)
    except ScenarioError as error:
        raise click.ClickException(str(error)) from None
    asyncio.run(_serve(SimulatorState(scenario), port, ca_path.resolve()))
