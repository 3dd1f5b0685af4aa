"""The one HTTP session every Microsoft call goes through, MSAL's included.

`account_session` builds it for an account: the sync's clients, doctor's probes and the consent
sign-in all get theirs there, so each trusts the account's CA and no caller picks its own pool.

Why a custom session:
- MSAL replays a 5xx/429 from its own throttle cache instead of retrying, so retries must happen
  below it: MSAL gets this session as `http_client` and only ever sees the final response.
- `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` override `Session.verify` in requests, so an extra CA (the
  simulator's, or a corporate one) is added to a combined bundle passed as `verify` per request;
  environment proxies keep working.
- MSAL and requests have no default timeout; an unattended sync must never hang. Timeouts in
  requests are per socket read, so a body that trickles a byte at a time never trips them: each
  response also has an overall deadline, enforced by a watchdog that cuts the connection.
- requests follows redirects, resending a POST body (client secret, refresh token) or headers
  to wherever a 3xx points. No redirect is ever followed here, and every answer must come from
  the origin that was asked.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import random
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from sync365_pipeline.core.settings import DEFAULT_RESPONSE_DEADLINE_S, AccountSettings
from sync365_pipeline.microsoft.errors import (
    DeadlineExceeded,
    MalformedResponse,
    MicrosoftError,
    RedirectRefused,
    classify_response,
    classify_transport_error,
    parse_retry_after,
    transport_failure,
)
from sync365_pipeline.microsoft.rate_limit import RateLimiter

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRY_EXCEPTIONS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class RetrySettings:
    """Bounds of the retry loop. `max_attempts` counts the first try."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter for retry number `attempt` (1-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)


class RetryStats:
    """Thread-safe counters of what the retry loop absorbed, for run metadata."""

    _FIELDS = (
        "requests",
        "retries",
        "throttled_responses",
        "server_errors",
        "malformed_responses",
        "connection_errors",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self._FIELDS, 0)
        self._total_wait_s = 0.0

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def add_wait(self, seconds: float) -> None:
        with self._lock:
            self._counts["retries"] += 1
            self._total_wait_s += seconds

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {**self._counts, "total_wait_s": round(self._total_wait_s, 3)}


# Microsoft's pages are kilobytes to a few megabytes; anything this large is not one of them.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


_WATCHED = threading.local()  # the `_Deadline` of the request this thread is making


class _Deadline:
    """One attempt's overall deadline: when it passes, the connection in use is shut down, so
    whatever read is blocked (headers or body) fails at once. `_WATCHDOG` keeps the time."""

    def __init__(self, seconds: float) -> None:
        self.due = time.monotonic() + seconds
        self.expired = False
        self.finished = False
        self.connection: HTTPConnection | None = None

    def __enter__(self) -> _Deadline:
        _WATCHED.deadline = self
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _WATCHDOG.finish(self)
        _WATCHED.deadline = None

    def expire(self) -> None:
        self.expired = True
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread for every deadline of the process (a heap by due time), not a timer thread per
    request attempt: at 10,000 tenants that was 20,000 short-lived threads.

    `finish` and `expire` run under one lock, so once an attempt has finished its connection
    (by then back in the pool, maybe serving another request) is never cut."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()  # ties in due time never compare deadlines
        self._thread: threading.Thread | None = None

    def watch(self, deadline: _Deadline) -> None:
        with self._lock:
            heapq.heappush(self._heap, (deadline.due, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="sync365-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._lock.notify()  # due before whatever the thread is waiting for

    def finish(self, deadline: _Deadline) -> None:
        with self._lock:
            deadline.finished = True

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._lock.wait()
                    continue
                due, _, deadline = self._heap[0]
                if (wait_s := due - time.monotonic()) > 0:
                    self._lock.wait(wait_s)
                    continue
                heapq.heappop(self._heap)
                deadline.expire()


_WATCHDOG = _Watchdog()


def _new_watchdog_after_fork() -> None:
    """A forked child has no watchdog thread, and the lock may have been held by another thread
    at the fork."""
    global _WATCHDOG
    _WATCHDOG = _Watchdog()


os.register_at_fork(after_in_child=_new_watchdog_after_fork)


class _Watched:
    """Tells the thread's `_Deadline` which connection its request uses (a pooled connection is
    reused across requests, so this happens per request, not per connect)."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        if (deadline := getattr(_WATCHED, "deadline", None)) is not None:
            deadline.connection = self  # type: ignore[assignment]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """Connection pools whose connections a `_Deadline` can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }


class MicrosoftSession(requests.Session):
    """A `requests.Session` with Microsoft-aware retries, a default timeout and an extra CA.

    Every successful response must be JSON (all three services speak JSON): a 2xx body that is
    not, e.g. a truncated page or a proxy's HTML, is retried like a 5xx and, if it persists,
    raised as `MalformedResponse` so that neither MSAL nor a client ever parses (or logs) it.
    A redirect, or an answer from another origin, is `RedirectRefused`; a response past its
    deadline is `DeadlineExceeded`. Resets and timeouts are retried; a host that does not
    resolve, refuses the connection or fails certificate verification is not (it would fail the
    same way). Network failures that outlast the retries are raised as the `requests` exception.

    A request given a `limiter` (Partner Center's) waits for it before every attempt, and a 429
    it gets pauses the limiter for the `Retry-After`, so every caller waits, not only this one.
    """

    def __init__(
        self,
        *,
        ca_file: Path | None,
        pool_size: int,
        timeout: tuple[float, float],
        retry: RetrySettings,
        sleep: Callable[[float], None],
        deadline_s: float = DEFAULT_RESPONSE_DEADLINE_S,
    ) -> None:
        super().__init__()
        self.timeout = timeout
        self.deadline_s = deadline_s
        self.retry = retry
        self.stats = RetryStats()
        self._ca_file = ca_file
        self._sleep = sleep
        self._environment_settings: dict[tuple[Any, ...], dict[str, Any]] = {}
        adapter = _WatchedAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        if ca_file is not None:
            self._remove_ca_file = weakref.finalize(self, _unlink, ca_file)

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str | bytes,
        *args: Any,
        limiter: RateLimiter | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs["stream"] = True  # read by `_bounded`, never more than MAX_RESPONSE_BYTES
        kwargs["allow_redirects"] = False  # a redirect could carry our credentials elsewhere
        if self._ca_file is not None:
            kwargs.setdefault("verify", str(self._ca_file))
        url_text = url.decode() if isinstance(url, bytes) else url
        attempt = 1
        while True:
            if limiter is not None:
                limiter.acquire()
            self.stats.count("requests")
            try:
                with _Deadline(self.deadline_s) as deadline:
                    try:
                        response = self._bounded(super().request(method, url, *args, **kwargs))
                    except (requests.RequestException, OSError):
                        if deadline.expired:
                            raise DeadlineExceeded(
                                f"{_describe(url_text)} took longer than {self.deadline_s:g} s "
                                "to answer; the connection was cut.",
                                code="DeadlineExceeded",
                            ) from None
                        raise
                _same_origin(url_text, response)
            except _RETRY_EXCEPTIONS as exc:
                if not self._may_retry_exception(exc, attempt):
                    raise
                self.stats.count("connection_errors")
                delay = self.retry.backoff(attempt)
                reason = type(exc).__name__
                throttled = False
            else:
                decision = self._response_retry(response, attempt)
                if decision is None:
                    return response
                delay, reason = decision
                throttled = response.status_code == 429
                response.close()
            log.info(
                "Retrying %s %s in %.2f s (attempt %d of %d): %s",
                method,
                _describe(url_text),
                delay,
                attempt + 1,
                self.retry.max_attempts,
                reason,
            )
            self.stats.add_wait(delay)
            if throttled and limiter is not None:
                limiter.pause(delay)  # the next `acquire` waits, this request's and everyone's
            else:
                self._sleep(delay)
            attempt += 1

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Mapping[str, str] | None,
        stream: bool | None,
        verify: bool | str | None,
        cert: str | tuple[str, str] | None,
    ) -> dict[str, Any]:
        """requests' answer (environment proxies, `NO_PROXY`, CA bundle), worked out once per
        origin and arguments for the session's life: requests scans the whole environment for
        every request, which was 15% of a sync's CPU per tenant (`bench/README.md`)."""
        text = url.decode() if isinstance(url, bytes) else url or ""
        key = (urlsplit(text)[:2], tuple(sorted((proxies or {}).items())), stream, verify, cert)
        settings = self._environment_settings.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment_settings[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

    @staticmethod
    def _bounded(response: requests.Response) -> requests.Response:
        """Read the body, refusing one larger than `MAX_RESPONSE_BYTES` (a hostile or broken
        service must not exhaust memory); the response then behaves as a non-streamed one."""
        body = bytearray()
        with response:
            for chunk in response.iter_content(chunk_size=1 << 16):
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise MalformedResponse(
                        f"{_describe(response.url)} sent more than {MAX_RESPONSE_BYTES >> 20} MiB;"
                        " refusing to read further.",
                        code=f"HTTP {response.status_code}",
                        http_status=response.status_code,
                    )
        response._content = bytes(body)
        return response

    def close(self) -> None:
        super().close()
        if self._ca_file is not None:
            self._remove_ca_file()

    def _may_retry_exception(self, exc: Exception, attempt: int) -> bool:
        """Resets and timeouts are retried, POSTs included (a token request may be repeated: the
        identity platform keeps a refresh token valid after it rotates it); a setting that
        points at the wrong place or a certificate that fails verification is not."""
        return attempt < self.retry.max_attempts and not transport_failure(exc).is_configuration

    def _response_retry(
        self, response: requests.Response, attempt: int
    ) -> tuple[float, str] | None:
        """(delay, reason) if the response should be retried; None to hand it to the caller."""
        status = response.status_code
        if status in RETRY_STATUSES:
            self.stats.count("throttled_responses" if status == 429 else "server_errors")
            if attempt >= self.retry.max_attempts:
                return None
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                return self.retry.backoff(attempt), f"HTTP {status}"
            if retry_after > self.retry.max_retry_after_s:
                log.warning(
                    "%s asks to wait %.0f s (more than %.0f s): not retrying",
                    _describe(response.url),
                    retry_after,
                    self.retry.max_retry_after_s,
                )
                return None
            return retry_after, f"HTTP {status}, Retry-After {retry_after:g} s"
        if not response.ok or _is_json(response):
            # An error answer without JSON (an empty 401, a proxy's HTML 403) will not change on a
            # retry: the caller classifies it by its status.
            return None
        self.stats.count("malformed_responses")
        if attempt >= self.retry.max_attempts:
            raise MalformedResponse(
                f"{_describe(response.url)} answered HTTP {status} with a body that is not JSON "
                f"({response.headers.get('Content-Type', 'no content type')}, "
                f"{len(response.content)} bytes) {attempt} times.",
                code=f"HTTP {status}",
                http_status=status,
            )
        return self.retry.backoff(attempt), f"HTTP {status} body is not JSON"


def build_session(
    *,
    ca_bundle: Path | None,
    pool_size: int = 16,
    timeout: tuple[float, float] = (10.0, 30.0),
    retry: RetrySettings = RetrySettings(),
    sleep: Callable[[float], None] = time.sleep,
    deadline_s: float = DEFAULT_RESPONSE_DEADLINE_S,
) -> MicrosoftSession:
    """A session that trusts the usual CAs plus `ca_bundle` (if given)."""
    ca_file = _combined_ca_file(ca_bundle) if ca_bundle is not None else None
    return MicrosoftSession(
        ca_file=ca_file,
        pool_size=pool_size,
        timeout=timeout,
        retry=retry,
        sleep=sleep,
        deadline_s=deadline_s,
    )


def account_session(
    account: AccountSettings, *, retry: RetrySettings = RetrySettings()
) -> MicrosoftSession:
    """The session for one account's Microsoft calls: its extra CA, and connections enough for
    its `max_workers` concurrent tenant fetches."""
    return build_session(
        ca_bundle=account.ca_bundle,
        pool_size=max(16, account.max_workers),
        retry=retry,
        deadline_s=account.response_deadline_s,
    )


def get_json(
    session: requests.Session,
    url: str,
    *,
    headers: Mapping[str, str],
    service: Literal["graph", "partner_center"],
    tenant_id: str | None,
    limiter: RateLimiter | None = None,
) -> dict[str, Any]:
    """GET a JSON object (see `request_json`)."""
    return request_json(
        session, "GET", url, headers=headers, service=service, tenant_id=tenant_id, limiter=limiter
    )


def request_json(
    session: requests.Session,
    method: Literal["GET", "POST"],
    url: str,
    *,
    headers: Mapping[str, str],
    service: Literal["graph", "partner_center"],
    tenant_id: str | None,
    limiter: RateLimiter | None = None,
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Send `body` (JSON, if any) and read a JSON object back; any failure is raised as a
    classified `MicrosoftError`. A `limiter` needs a `MicrosoftSession` (it applies to every
    attempt of the retry loop, which resends the same headers: Partner Center's MS-RequestId
    makes a repeated POST idempotent)."""
    limited = {} if limiter is None else {"limiter": limiter}
    sent = {} if body is None else {"json": dict(body)}
    try:
        response = session.request(method, url, headers=dict(headers), **limited, **sent)
    except MicrosoftError as exc:
        raise attribute(exc, tenant_id) from None
    except requests.RequestException as exc:
        raise classify_transport_error(
            exc, url=url, tenant_id=tenant_id, partner_level=False, service=service
        ) from None
    with response:
        if not response.ok:
            raise classify_response(response, service=service, tenant_id=tenant_id)
        try:
            answer = response.json()
        except (ValueError, RecursionError):
            raise classify_response(response, service=service, tenant_id=tenant_id) from None
    if not isinstance(answer, dict):
        raise MalformedResponse(
            f"{_describe(url)} answered with JSON that is not an object.",
            code=f"HTTP {response.status_code}",
            http_status=response.status_code,
            tenant_id=tenant_id,
        )
    return answer


def attribute(exc: MicrosoftError, tenant_id: str | None) -> MicrosoftError:
    """Name the tenant on an error raised below the layer that knows it."""
    if exc.tenant_id is None:
        exc.tenant_id = tenant_id
    return exc


def _is_json(response: requests.Response) -> bool:
    """Whether the body parses as JSON; nesting deep enough to exhaust the parser does not."""
    try:
        json.loads(response.content)
    except (ValueError, RecursionError):
        return False
    return True


def _same_origin(requested: str, response: requests.Response) -> None:
    """Refuse a redirect, or an answer whose final URL is not the origin that was asked."""
    asked = urlsplit(requested)
    answered = urlsplit(response.url)
    location = response.headers.get("Location")
    if response.is_redirect or (answered.scheme, answered.netloc) != (asked.scheme, asked.netloc):
        target = urlsplit(location) if location else answered
        response.close()
        raise RedirectRefused(
            f"{asked.netloc} answered HTTP {response.status_code}, redirecting to "
            f"{target.scheme}://{target.netloc}; not followed (a redirect could carry the "
            "request's credentials elsewhere).",
            code=f"HTTP {response.status_code}",
            http_status=response.status_code,
        )


def _combined_ca_file(extra_ca: Path) -> Path:
    """A private PEM file with the normal trust store plus `extra_ca`.

    The normal store is what requests would use: `REQUESTS_CA_BUNDLE`, else `CURL_CA_BUNDLE`,
    else certifi's bundle.
    """
    base = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    base_path = Path(base) if base and Path(base).is_file() else Path(certifi.where())
    pem = base_path.read_text(encoding="ascii", errors="ignore").rstrip("\n")
    pem += "\n" + extra_ca.read_text(encoding="ascii", errors="ignore").strip("\n") + "\n"
    fd, name = tempfile.mkstemp(prefix="sync365-ca-", suffix=".pem")
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(pem)
    return Path(name)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _describe(url: str | None) -> str:
    """Host and path, for logs: no query string (paging cursors), never a credential."""
    if not url:
        return "?"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
