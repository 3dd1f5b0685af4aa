"""The clock: every timestamp the pipeline writes is timezone-aware UTC.

One process-wide clock, so that a replay (`replaying`, the demo's history against the simulator)
dates everything it writes, in every thread, on the day it replays.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

_set_back = timedelta(0)  # how far `replaying` has set the clock back; zero outside a replay


def utcnow() -> datetime:
    return datetime.now(UTC) - _set_back


def on_clock(moment: datetime) -> datetime:
    """A moment the system clock stamped (a Dagster run's creation) as this clock reads it."""
    return moment - _set_back


@contextmanager
def replaying(day: date) -> Iterator[None]:
    """Run the block as if on `day` (UTC, at this time of day), a day before today.

    For replaying simulated history only: a real Microsoft cloud answers with today's data
    whatever the clock says, and that data must not be dated in the past.
    """
    global _set_back
    today = datetime.now(UTC).date()
    if day >= today:
        raise ValueError(f"a replayed day must be before today ({today}), not {day}")
    if _set_back:
        raise RuntimeError("a replay is already running")
    _set_back = timedelta(days=(today - day).days)
    try:
        yield
    finally:
        _set_back = timedelta(0)


def utc_naive(moment: datetime) -> datetime:
    """Naive UTC, as every warehouse TIMESTAMP column holds it; naive inputs are taken as UTC."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
