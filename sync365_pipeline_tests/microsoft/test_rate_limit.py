"""Partner Center's rate limiter: never more than the rate in any minute, a 429's Retry-After
pauses every caller, and every Partner Center call goes through it. Time is a fake clock that
the limiter's own sleep advances, so nothing here waits or depends on the wall clock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sync365_pipeline.core.settings import AccountSettings, ConfigError, load_accounts
from sync365_pipeline.microsoft import (
    MicrosoftCloud,
    PartnerCenterClient,
    TokenCacheFile,
    TokenProvider,
    build_session,
)
from sync365_pipeline.microsoft.rate_limit import WINDOW_S, RateLimiter
from sync365_pipeline_tests.scenarios import UNIFORM_CUSTOMERS, uniform_scenario


class FakeClock:
    """Seconds that pass only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class RecordingLimiter(RateLimiter):
    """Notes the clock at every request let through, and every pause."""

    def __init__(self, per_minute: int, clock: FakeClock) -> None:
        super().__init__(per_minute, clock=clock, sleep=clock.sleep)
        self.sent_at: list[float] = []
        self.pauses: list[float] = []
        self._clock_of_record = clock

    def acquire(self) -> None:
        super().acquire()
        self.sent_at.append(self._clock_of_record())

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        super().pause(seconds)


def most_in_any_window(times: list[float]) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered if start <= t < start + WINDOW_S) for start in ordered)


def test_no_minute_holds_more_than_the_rate():
    clock = FakeClock()
    limiter = RecordingLimiter(3, clock)
    for _ in range(10):
        limiter.acquire()
    assert len(limiter.sent_at) == 10
    assert most_in_any_window(limiter.sent_at) == 3
    assert limiter.sent_at[3] >= limiter.sent_at[0] + WINDOW_S


def test_a_pause_holds_every_caller():
    clock = FakeClock()
    limiter = RecordingLimiter(100, clock)
    limiter.acquire()
    limiter.pause(30)
    other = threading.Thread(target=limiter.acquire)
    other.start()
    other.join()
    assert limiter.sent_at[-1] >= limiter.sent_at[0] + 30


def test_a_rate_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0)


def client_for(sim: Any, tmp_path: Path, limiter: RateLimiter, sleeps: list[float]) -> Any:
    settings = AccountSettings.from_env(
        {**sim.environment(), "SYNC365_TOKEN_CACHE": str(tmp_path / "token_cache.json")}
    )
    session = build_session(ca_bundle=settings.ca_bundle, sleep=sleeps.append)
    tokens = TokenProvider(
        settings.credentials, settings.endpoints, session, TokenCacheFile(settings.token_cache_path)
    )
    return PartnerCenterClient(
        session, settings.endpoints.partner_center_url, tokens, limiter=limiter
    )


def test_concurrent_partner_center_calls_keep_to_a_low_rate(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    limiter = RecordingLimiter(2, FakeClock())
    client = client_for(sim, tmp_path, limiter, [])
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(client.subscribed_skus, UNIFORM_CUSTOMERS * 2))
    client.customers()

    assert all(len(skus) == 3 for skus in answers)
    assert len(limiter.sent_at) == 7
    assert most_in_any_window(limiter.sent_at) <= 2
    by_route = sim.control.request_counts()["by_route"]
    assert by_route["partner_center.subscribedskus"] + by_route["partner_center.customers"] == 7


def test_a_429_pauses_the_limiter_for_its_retry_after(simulator_factory, tmp_path):
    throttle = {"type": "throttle", "service": "partner_center", "retry_after": 30, "times": 1}
    sim = simulator_factory(uniform_scenario(faults={UNIFORM_CUSTOMERS[0]: [throttle]}))
    limiter, session_sleeps = RecordingLimiter(100, FakeClock()), []
    client = client_for(sim, tmp_path, limiter, session_sleeps)

    assert len(client.subscribed_skus(UNIFORM_CUSTOMERS[0])) == 3
    assert len(client.subscribed_skus(UNIFORM_CUSTOMERS[1])) == 3

    assert limiter.pauses == [30]
    assert session_sleeps == [], "the limiter waits, not the one request"
    throttled_at, retried_at, next_at = limiter.sent_at
    assert retried_at >= throttled_at + 30
    assert next_at >= throttled_at + 30
    assert sim.control.request_counts()["by_status"]["429"] == 1


def test_the_rate_is_a_setting_applied_to_every_account(simulator_factory, tmp_path):
    sim = simulator_factory(uniform_scenario())
    environment = {
        **sim.environment(),
        "SYNC365_TOKEN_CACHE": str(tmp_path / "token_cache.json"),
        "SYNC365_PARTNER_CENTER_RATE": "120",
    }
    (account,) = load_accounts(environment)
    assert account.partner_center_rate == 120
    with MicrosoftCloud.from_settings(account) as cloud:
        assert cloud.partner_center.limiter.per_minute == 120
    unset = load_accounts({**environment, "SYNC365_PARTNER_CENTER_RATE": ""})
    assert unset[0].partner_center_rate == 500, "Partner Center's documented limit by default"
    with pytest.raises(ConfigError, match="SYNC365_PARTNER_CENTER_RATE"):
        load_accounts({**environment, "SYNC365_PARTNER_CENTER_RATE": "fast"})
