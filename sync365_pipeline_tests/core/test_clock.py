"""The pipeline's clock: set back only to a past day, and only for the block that replays it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync365_pipeline.core.clock import on_clock, replaying, utcnow


def test_a_replay_dates_everything_on_its_day_and_ends_with_its_block() -> None:
    today = datetime.now(UTC).date()
    stamped = datetime.now(UTC)
    with replaying(today - timedelta(days=3)):
        assert utcnow().date() == today - timedelta(days=3)
        assert on_clock(stamped) == stamped - timedelta(days=3)
    assert utcnow().date() == today
    assert on_clock(stamped) == stamped


@pytest.mark.parametrize("days_ahead", [0, 1])
def test_today_or_a_future_day_is_refused(days_ahead: int) -> None:
    day = datetime.now(UTC).date() + timedelta(days=days_ahead)
    with pytest.raises(ValueError, match="must be before today"), replaying(day):
        pass
    assert utcnow().date() == datetime.now(UTC).date()


def test_replays_do_not_nest() -> None:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    with (
        replaying(yesterday),
        pytest.raises(RuntimeError, match="already running"),
        replaying(yesterday),
    ):
        pass
    assert utcnow().date() == datetime.now(UTC).date()
