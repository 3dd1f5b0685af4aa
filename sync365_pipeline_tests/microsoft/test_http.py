"""MicrosoftSession over real sockets (a scripted HTTPS server): retries, Retry-After, backoff
bounds, malformed bodies, timeouts, and the extra CA trusted despite REQUESTS_CA_BUNDLE."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from sync365_pipeline.microsoft import http
from sync365_pipeline.microsoft.errors import DeadlineExceeded, MalformedResponse, parse_retry_after
from sync365_pipeline.microsoft.http import MicrosoftSession, RetrySettings, build_session

from .conftest import Scripted, ScriptServer


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def session(script_server: ScriptServer, sleeps: list[float]) -> MicrosoftSession:
    built = build_session(
        ca_bundle=script_server.ca_path,
        timeout=(2.0, 0.5),
        retry=RetrySettings(max_attempts=4, base_delay_s=0.2, max_delay_s=1.0),
        sleep=sleeps.append,
    )
    yield built
    built.close()


def test_retry_after_is_honoured_and_counted(script_server, session, sleeps):
    script_server.script = [
        Scripted(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "0.7"}),
        Scripted(503, b"<html>busy</html>", {"Retry-After": "1"}),
        Scripted(200, {"value": []}),
    ]
    response = session.get(f"{script_server.url}/v1.0/subscribedSkus", headers={"x-id": "a"})
    assert response.status_code == 200
    assert sleeps == [0.7, 1.0]
    assert [seen.headers["x-id"] for seen in script_server.seen] == ["a", "a", "a"]
    stats = session.stats.snapshot()
    assert stats["requests"] == 3
    assert stats["retries"] == 2
    assert stats["throttled_responses"] == 1
    assert stats["server_errors"] == 1
    assert stats["total_wait_s"] == pytest.approx(1.7)


def test_backoff_has_full_jitter_within_the_cap(script_server, session, sleeps):
    script_server.script = [Scripted(502, {"x": 1})]
    response = session.get(f"{script_server.url}/x")
    assert response.status_code == 502  # the final answer goes to the caller to classify
    assert len(script_server.seen) == 4
    assert len(sleeps) == 3
    for retry_number, delay in enumerate(sleeps, start=1):
        assert 0.0 <= delay <= min(1.0, 0.2 * 2 ** (retry_number - 1))


def test_backoff_bounds_over_many_draws():
    settings = RetrySettings(base_delay_s=0.5, max_delay_s=30.0)
    draws = [settings.backoff(attempt) for attempt in range(1, 12) for _ in range(50)]
    assert all(0.0 <= delay <= 30.0 for delay in draws)
    assert max(settings.backoff(1) for _ in range(200)) <= 0.5


def test_retry_after_longer_than_allowed_is_not_waited(script_server, session, sleeps):
    script_server.script = [Scripted(429, {"statusCode": 429}, {"Retry-After": "3600"})]
    response = session.get(f"{script_server.url}/v1/customers")
    assert response.status_code == 429
    assert sleeps == []
    assert len(script_server.seen) == 1


def test_token_post_is_retried_with_the_same_body(script_server, session, sleeps):
    script_server.script = [Scripted(500, {}), Scripted(200, {"access_token": "x"})]
    response = session.post(f"{script_server.url}/t/oauth2/v2.0/token", data={"grant_type": "rt"})
    assert response.json() == {"access_token": "x"}
    assert [seen.body for seen in script_server.seen] == [b"grant_type=rt"] * 2


def test_body_that_is_not_json_is_retried_then_raised(script_server, session, sleeps):
    script_server.script = [
        Scripted(200, b'{"value": [{"id": "trunc'),
        Scripted(200, {"value": []}),
    ]
    assert session.get(f"{script_server.url}/a").json() == {"value": []}
    script_server.seen.clear()
    script_server.script = [
        Scripted(200, b"<html>proxy login</html>", {"Content-Type": "text/html"})
    ]
    with pytest.raises(MalformedResponse) as caught:
        session.get(f"{script_server.url}/b?cursor=secret-looking")
    assert len(script_server.seen) == 4
    assert "proxy login" not in str(caught.value)
    assert "cursor" not in str(caught.value)
    assert caught.value.code == "HTTP 200"
    assert session.stats.snapshot()["malformed_responses"] == 5


def test_a_read_timeout_is_retried_for_get_and_for_a_token_post(script_server, session, sleeps):
    """A token request may be repeated: the identity platform keeps a refresh token valid after
    rotating it, so a POST whose answer was lost is retried like a GET."""
    script_server.script = [Scripted(200, {}, delay_s=1.0), Scripted(200, {"ok": True})]
    assert session.get(f"{script_server.url}/slow").json() == {"ok": True}
    script_server.seen.clear()
    script_server.script = [Scripted(200, {}, delay_s=1.0), Scripted(200, {"token": "t"})]
    answer = session.post(f"{script_server.url}/t/oauth2/v2.0/token", data={"a": "b"})
    assert answer.json() == {"token": "t"}
    assert len(script_server.seen) == 2


def test_connection_refused_is_raised_at_once_not_retried(sleeps):
    """A setting that points where nothing listens does not get better by waiting."""
    session = build_session(
        ca_bundle=None, retry=RetrySettings(max_attempts=3, base_delay_s=0.01), sleep=sleeps.append
    )
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get("https://127.0.0.1:9/")  # discard port: nothing listens
    assert sleeps == []
    assert session.stats.snapshot()["requests"] == 1
    session.close()


def test_extra_ca_is_trusted_although_requests_ca_bundle_is_set(
    script_server, session, monkeypatch
):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    script_server.script = [Scripted(200, {"ok": True})]
    with requests.Session() as plain:
        plain.verify = str(script_server.ca_path)
        with pytest.raises(requests.exceptions.SSLError):
            plain.get(f"{script_server.url}/")  # the trap the session exists for
    assert session.get(f"{script_server.url}/").json() == {"ok": True}


def test_untrusted_certificate_fails_fast_without_retries(script_server, sleeps):
    session = build_session(ca_bundle=None, sleep=sleeps.append)
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{script_server.url}/")
    assert sleeps == []
    session.close()


def test_combined_bundle_is_private_and_removed_on_close(script_server):
    session = build_session(ca_bundle=script_server.ca_path)
    bundle = session._ca_file
    assert bundle is not None
    assert oct(bundle.stat().st_mode & 0o777) == "0o600"
    assert script_server.ca_path.read_text().strip() in bundle.read_text()
    session.close()
    assert not bundle.exists()


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), ("0.25", 0.25), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_parse_retry_after_seconds(header, expected):
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert parse_retry_after(format_datetime(when, usegmt=True)) == pytest.approx(30, abs=2)
    past = datetime.now(UTC) - timedelta(days=1)
    assert parse_retry_after(format_datetime(past, usegmt=True)) == 0.0


def test_a_body_larger_than_the_limit_is_refused(script_server, session, monkeypatch):
    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", 1024)
    script_server.script = [Scripted(200, {"value": ["x" * 2000]})]
    with pytest.raises(MalformedResponse, match="sent more than"):
        session.get(f"{script_server.url}/v1.0/subscribedSkus")
    script_server.script = [Scripted(200, {"value": ["x" * 100]})]
    assert session.get(f"{script_server.url}/v1.0/subscribedSkus").json() == {"value": ["x" * 100]}


def test_an_error_answer_without_json_is_returned_at_once(script_server, session, sleeps):
    script_server.script = [Scripted(401, b"")]
    response = session.get(f"{script_server.url}/v1/customers")
    assert response.status_code == 401
    assert len(script_server.seen) == 1
    assert sleeps == []


def test_an_answer_slower_than_the_deadline_is_cut(script_server, sleeps):
    """The read timeout (30 s) would wait; the response deadline cuts the connection. The
    connection is opened first: the deadline cannot cut a connect phase (no socket yet)."""
    slow = build_session(
        ca_bundle=script_server.ca_path, timeout=(2.0, 30.0), sleep=sleeps.append, deadline_s=0.5
    )
    script_server.script = [
        Scripted(200, {}),
        Scripted(200, {"late": True}, delay_s=5.0),
        Scripted(200, {}),
    ]
    assert slow.get(f"{script_server.url}/open").json() == {}
    with pytest.raises(DeadlineExceeded):
        slow.get(f"{script_server.url}/slow")
    assert slow.get(f"{script_server.url}/next").json() == {}  # the session still works
    slow.close()


def test_one_watchdog_thread_serves_every_deadline(script_server, session):
    script_server.script = [Scripted(200, {"ok": True})]
    for _ in range(20):
        assert session.get(f"{script_server.url}/fast").json() == {"ok": True}
    names = [thread.name for thread in threading.enumerate()]
    assert names.count("sync365-deadlines") == 1


def test_a_finished_deadline_never_cuts_its_connection_later():
    """Its connection is back in the pool by then, maybe serving another request."""
    finished, pending = http._Deadline(0.05), http._Deadline(0.05)
    with finished:
        pass
    with pending:
        assert wait_until(lambda: pending.expired)
    assert not finished.expired


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    """Poll `condition`; only a hang makes it time out."""
    stop = threading.Event()
    give_up = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > give_up:
            return False
        stop.wait(0.01)
    return True


def test_environment_proxies_are_honoured_and_read_once_per_origin(script_server, monkeypatch):
    """requests reads the proxy variables for every request; the session reads them once per
    origin, so a proxy (and NO_PROXY) set before it starts still applies, a change later not."""
    unreachable_proxy = "http://127.0.0.1:9"  # discard port: nothing listens
    monkeypatch.setenv("HTTPS_PROXY", unreachable_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    script_server.script = [Scripted(200, {"ok": True})] * 3
    proxied = build_session(ca_bundle=script_server.ca_path)
    with pytest.raises(requests.exceptions.ProxyError):
        proxied.get(f"{script_server.url}/")

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = build_session(ca_bundle=script_server.ca_path)
    assert direct.get(f"{script_server.url}/").json() == {"ok": True}
    monkeypatch.delenv("NO_PROXY")
    assert direct.get(f"{script_server.url}/").json() == {"ok": True}, "read once"
    with (
        build_session(ca_bundle=script_server.ca_path) as later,
        pytest.raises(requests.exceptions.ProxyError),
    ):
        later.get(f"{script_server.url}/")
    proxied.close()
    direct.close()
