"""alert.progressed says what an organizer needs to read an alert's state."""

from __future__ import annotations

from types import SimpleNamespace

from services.notifications.fanout import progress_event
from shared.events.catalog import CATALOG


def test_texts_held_for_the_morning_are_reported_among_the_queued() -> None:
    """An SMS alert sent at 21:30 reads 'queued' until 08:00 where its recipients live: the
    report says how many of those are held on purpose (quiet hours)."""
    row = SimpleNamespace(
        alert_id="alert-1", campaign_id="camp-1", total=100, sent=40, delivered=30,
        failed=2, suppressed=3, deferred=50,
    )  # fmt: skip
    event = progress_event(row, "sending")
    assert (event.data["queued"], event.data["deferred"]) == (55, 50)
    CATALOG.check_outgoing(event)  # the contract's shape, additive field included
