"""Keys keep their order over retries, even across a long stop of the worker."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from shared.consumer import PARKED_LOST_AFTER, _Parked, _Parking
from shared.events.envelope import utcnow

PLACE = ("kinship.campaigns", "alert-1")


def _item(event_id: str) -> Any:
    return SimpleNamespace(event=SimpleNamespace(id=event_id), attempt=1, record=None)


def _parking(running_for: timedelta) -> _Parking:
    now = utcnow()
    long_ago = now - 2 * PARKED_LOST_AFTER
    due_ms = int(long_ago.timestamp() * 1000)
    rows = {
        PLACE: {"published": _Parked(10, due_ms, long_ago), "edited": _Parked(11, None, long_ago)}
    }
    return _Parking(rows, now, now - running_for)


def test_after_a_long_stop_a_keys_next_event_waits_for_the_parked_ones() -> None:
    """Down for two hours, the worker starts: alert.cancelled (main topic) comes before the
    retry topic's alert.published is read again. It must wait behind it, not overtake it."""
    parking = _parking(running_for=timedelta(seconds=5))
    assert parking.admit(_item("cancelled"), PLACE, 12) is False
    assert set(parking.rows[PLACE]) == {"published", "edited", "cancelled"}


def test_a_parked_event_whose_retry_never_comes_back_lets_its_key_go_on() -> None:
    parking = _parking(running_for=2 * PARKED_LOST_AFTER)
    assert parking.admit(_item("cancelled"), PLACE, 12) is True
