"""Run the simulator over HTTPS on 127.0.0.1, in a background thread (`SimulatorServer`) or in the
caller's event loop (`start_site`, which the CLI uses in the foreground).

A fresh CA and server certificate (for 127.0.0.1 and localhost) are made at every start with
trustme; the CA's PEM is written where the caller says, so clients can be told to trust it (MSAL
refuses plain http).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType

import trustme
from aiohttp import web

from sync365_pipeline.simulator.app import build_app
from sync365_pipeline.simulator.client import SimulatorClient
from sync365_pipeline.simulator.scenario import Scenario
from sync365_pipeline.simulator.state import SimulatorState

HOST = "127.0.0.1"


def make_tls_context(ca_path: Path) -> ssl.SSLContext:
    """A server context with a new certificate, and the issuing CA's PEM written to `ca_path`."""
    ca = trustme.CA(organization_name="sync365 simulator")
    leaf = ca.issue_cert(HOST, "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    ca_path.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(ca_path))
    return context


async def start_site(state: SimulatorState, port: int, ca_path: Path) -> tuple[web.AppRunner, int]:
    """Start listening; return the runner (to clean up) and the bound port."""
    runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(
        runner, HOST, port, ssl_context=make_tls_context(ca_path), backlog=1024, reuse_address=True
    )
    await site.start()
    bound_port = runner.addresses[0][1]
    return runner, bound_port


def environment(url: str, ca_path: Path, state: SimulatorState) -> dict[str, str]:
    """The pipeline's settings (`SYNC365_*`) that point it at this simulator."""
    partner = state.partner
    return {
        "SYNC365_AUTHORITY_HOST": url,
        "SYNC365_GRAPH_URL": url,
        "SYNC365_PARTNER_CENTER_URL": url,
        "SYNC365_CA_BUNDLE": str(ca_path),
        "SYNC365_CLIENT_ID": partner.client_id,
        "SYNC365_CLIENT_SECRET": partner.client_secret,
        "SYNC365_PARTNER_TENANT_ID": partner.tenant_id,
        "SYNC365_REFRESH_TOKEN": partner.refresh_token,
    }


class SimulatorServer:
    """The simulator on its own event loop in a daemon thread; a context manager.

    `__enter__` returns once the server is listening; `__exit__` stops it and joins the thread.
    """

    def __init__(
        self, scenario: Scenario, ca_path: Path | str | None = None, port: int = 0
    ) -> None:
        self.state = SimulatorState(scenario)
        self._port_requested = port
        self._temp_dir: tempfile.TemporaryDirectory[str] | None = None
        if ca_path is None:
            self._temp_dir = tempfile.TemporaryDirectory(prefix="sync365-simulator-")
            ca_path = Path(self._temp_dir.name) / "ca.pem"
        self.ca_path = Path(ca_path)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._control: SimulatorClient | None = None

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def control(self) -> SimulatorClient:
        if self._control is None:
            self._control = SimulatorClient(self.url, self.ca_path)
        return self._control

    def environment(self) -> dict[str, str]:
        return environment(self.url, self.ca_path, self.state)

    def connection_sockets(self) -> list[socket.socket]:
        """The server ends of the client connections open now, to check their socket options."""
        if self._loop is None or self._runner is None or self._runner.server is None:
            return []
        server = self._runner.server

        async def sockets() -> list[socket.socket]:
            return [
                handler.transport.get_extra_info("socket")
                for handler in server.connections
                if handler.transport is not None
            ]

        return asyncio.run_coroutine_threadsafe(sockets(), self._loop).result(timeout=10)

    def start(self) -> SimulatorServer:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._runner, self.port = loop.run_until_complete(
                    start_site(self.state, self._port_requested, self.ca_path)
                )
            except BaseException as error:  # reported to the starting thread below
                failure.append(error)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="sync365-simulator", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if self._control is not None:
            self._control.close()
        if self._temp_dir is not None:
            self._temp_dir.cleanup()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
