"""Retry-After as providers send it: delay-seconds, or an HTTP date (RFC 9110 section 10.2.3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.notifications.senders import retry_after_seconds

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("120", 120.0),
        ("1.5", 1.5),
        ("Sun, 29 Nov 2026 12:02:00 GMT", 120.0),
        ("Sun, 29 Nov 2026 12:00:30 -0000", 30.0),
        ("Sun, 29 Nov 2026 11:59:00 GMT", 0.0),  # already past: go now
        ("-5", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_dates(raw: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(raw, NOW) == seconds
