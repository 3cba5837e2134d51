"""The per-process cache in front of rarely changing rows (campaigns, petitions, API keys)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from shared.cache import TtlCache


class SlowLoad:
    """A load that takes a while (a query, while others arrive) and counts its runs."""

    def __init__(self, outcome: int | BaseException) -> None:
        self.outcome = outcome
        self.runs = 0
        self.started = threading.Event()

    def __call__(self) -> int:
        self.runs += 1
        self.started.set()
        time.sleep(0.2)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def one_then_more(ask: Callable[[], object], started: threading.Event, more: int) -> None:
    """One caller starts a load; `more` ask while it runs; wait for them all."""
    first = threading.Thread(target=ask)
    first.start()
    assert started.wait(5)
    others = [threading.Thread(target=ask) for _ in range(more)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(5)


def test_an_expired_entry_is_loaded_once_however_many_ask_at_that_moment() -> None:
    """Under load every request in flight asks when an entry expires: one database query
    answers them all, not one each (each on a connection of its own, past the pool)."""
    cache: TtlCache[str, int] = TtlCache(ttl=60)
    load = SlowLoad(7)
    answers: list[int] = []
    one_then_more(lambda: answers.append(cache.get("campaign", load)), load.started, 8)
    assert answers == [7] * 9
    assert load.runs == 1


def test_entries_expire_and_a_failed_load_is_tried_again_by_the_next_caller() -> None:
    cache: TtlCache[str, str | None] = TtlCache(ttl=0.05)
    values = iter(["old", "new"])
    assert cache.get("key", lambda: next(values)) == "old"
    assert cache.get("key", lambda: "unused") == "old"
    time.sleep(0.06)
    assert cache.get("key", lambda: next(values)) == "new"

    def broken() -> str | None:
        raise ConnectionError("database away")

    with pytest.raises(ConnectionError):
        cache.get("other", broken)
    assert cache.get("other", lambda: None) is None  # None is kept like any value
    assert cache.get("other", lambda: "unused") is None
    cache.forget("other")
    assert cache.get("other", lambda: "again") == "again"


def test_keys_never_kept_leave_nothing_behind() -> None:
    """A signing request for an unknown petition id (any string) caches and forgets it: a
    stream of them must not grow the process."""
    cache: TtlCache[str, None] = TtlCache(ttl=60)
    for i in range(1000):
        cache.get(f"unknown-{i}", lambda: None)
        cache.forget(f"unknown-{i}")
    assert not cache._items and not cache._loading


def test_callers_waiting_for_a_failed_load_get_its_error_without_loading_again() -> None:
    """The database away (a pool timeout of 30 s): each waiter loading again in turn made the
    last of them wait as many times as long. They all fail with the one load's error."""
    cache: TtlCache[str, int] = TtlCache(ttl=60)
    away = SlowLoad(TimeoutError("pool timeout"))
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            cache.get("campaign", away)
        except TimeoutError as exc:
            errors.append(exc)

    one_then_more(ask, away.started, 5)
    assert len(errors) == 6 and away.runs == 1
    assert cache.get("campaign", lambda: 3) == 3  # the next caller loads afresh


def test_a_key_forgotten_while_it_loads_is_not_cached_stale() -> None:
    """A petition edited while a signature loads its view: the edit forgets the key, and the
    load that read the old row must not put it back for five seconds."""
    cache: TtlCache[str, str] = TtlCache(ttl=60)
    reading = threading.Event()
    edited = threading.Event()

    def old_view() -> str:
        reading.set()
        assert edited.wait(5)
        return "old"

    loader = threading.Thread(target=lambda: cache.get("petition", old_view))
    loader.start()
    assert reading.wait(5)
    cache.forget("petition")  # the edit committed
    assert cache.get("petition", lambda: "new") == "new"  # a caller after it loads afresh
    edited.set()
    loader.join(5)
    assert cache.get("petition", lambda: "unused") == "new"
