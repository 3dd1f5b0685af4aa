"""A real webhook endpoint on 127.0.0.1 that counts posts (the `receiver` fixture in
conftest.py), and a URL nothing listens on."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Real webhook URLs carry their secret in the path, as Slack's /services/T../B../XXXX do.
SECRET_PATH = "/services/T000/B000/webhook-path-secret-0123456789"


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that records every POST and answers `status`."""

    server: ThreadingHTTPServer
    status: int = 200
    posts: list[dict[str, Any]] = field(default_factory=list)
    answer: threading.Event = field(default_factory=threading.Event)  # cleared: hold answers

    def __post_init__(self) -> None:
        self.answer.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recorder = holder[0]
            recorder.posts.append(
                {"path": self.path, "type": self.headers["Content-Type"], "json": json.loads(body)}
            )
            recorder.answer.wait(timeout=60)
            self.send_response(recorder.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        holder[0].answer.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}"
