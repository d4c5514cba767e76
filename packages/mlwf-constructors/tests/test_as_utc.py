"""as_utc: the one reading of store timestamps as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from mlwf_constructors import as_utc


def test_naive_timestamps_are_utc_and_aware_ones_are_kept() -> None:
    """A naive value (SQLite drops the zone) becomes UTC; an aware one and None pass unchanged."""
    assert as_utc(datetime(2026, 1, 2, 3, 4)) == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    plus_two = datetime(2026, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2)))
    assert as_utc(plus_two) is plus_two
    assert as_utc(None) is None
