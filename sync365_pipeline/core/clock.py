"""The clock: every timestamp the pipeline writes is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc_naive(moment: datetime) -> datetime:
    """Naive UTC, as every warehouse TIMESTAMP column holds it; naive inputs are taken as UTC."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
