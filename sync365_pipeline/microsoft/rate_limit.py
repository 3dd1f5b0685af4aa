"""A request-rate limit shared by every thread that calls one service for one partner.

Partner Center throttles per partner ("500 requests per minute per tenant identifier" for the
customer resource), on any number of machines: a sync that ignores it gets 429s, and honouring
one 429 in one thread while the others carry on only earns more of them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0


class RateLimiter:
    """At most `per_minute` requests in any 60 s window (a log of the last send times), and a
    `pause` (a 429's `Retry-After`) that holds every caller, not only the one throttled."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, not {per_minute}")
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._paused_until = float("-inf")
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait until one more request fits, then count it as sent now."""
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0] <= now - WINDOW_S:
                    self._sent.popleft()
                wait_s = self._paused_until - now
                if len(self._sent) >= self.per_minute:
                    wait_s = max(wait_s, self._sent[0] + WINDOW_S - now)
                if wait_s <= 0:
                    self._sent.append(now)
                    return
            self._sleep(wait_s)

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` from now (whoever asks)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
