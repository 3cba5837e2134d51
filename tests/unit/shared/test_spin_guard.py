"""SpinGuard: a consumer whose empty polls burn the CPU is told apart from one that waits."""

from __future__ import annotations

from typing import Any

import pytest

from shared import kafka
from shared.kafka import ConsumerSpinning, SpinGuard


class _Clocks:
    """The wall clock and the thread's CPU clock the guard reads, moved only by polls."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def perf_counter(self) -> float:
        return self.wall

    def thread_time(self) -> float:
        return self.cpu


class _Consumer:
    """Stands in for KafkaConsumer.poll: waits, or spins on the CPU, for each poll's timeout."""

    def __init__(self, clocks: _Clocks, *, spin: bool, records: Any = None) -> None:
        self.clocks = clocks
        self.spin = spin
        self.records = records or {}
        self.polls = 0

    def poll(self, timeout_ms: int = 0, max_records: int = 1) -> dict[Any, Any]:
        self.polls += 1
        self.clocks.wall += timeout_ms / 1000
        self.clocks.cpu += timeout_ms / 1000 if self.spin else timeout_ms / 100_000
        return self.records  # type: ignore[no-any-return]


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> _Clocks:
    fake = _Clocks()
    monkeypatch.setattr(kafka, "time", fake)
    return fake


def test_a_consumer_that_spins_through_its_empty_polls_is_reported(clocks: _Clocks) -> None:
    guard, consumer = SpinGuard(window=0.3), _Consumer(clocks, spin=True)
    with pytest.raises(ConsumerSpinning, match="busy"):
        for _ in range(20):
            guard.poll(consumer, timeout_ms=50, max_records=1)
    assert consumer.polls == 6  # as soon as a window of empty polls has passed


def test_a_consumer_that_waits_is_left_alone(clocks: _Clocks) -> None:
    guard, consumer = SpinGuard(window=0.3), _Consumer(clocks, spin=False)
    for _ in range(20):
        assert guard.poll(consumer, timeout_ms=50, max_records=1) == {}


def test_polls_that_bring_records_are_not_counted(clocks: _Clocks) -> None:
    records = {"partition": ["record"]}
    guard, consumer = SpinGuard(window=0.3), _Consumer(clocks, spin=True, records=records)
    for _ in range(20):
        assert guard.poll(consumer, timeout_ms=50, max_records=1) == records
