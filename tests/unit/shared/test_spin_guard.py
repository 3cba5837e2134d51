"""SpinGuard: a consumer whose empty polls burn the CPU is told apart from one that waits."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.kafka import ConsumerSpinning, SpinGuard


class _Consumer:
    """Stands in for KafkaConsumer.poll: waits (sleeps) or spins for each poll's timeout."""

    def __init__(self, *, spin: bool, records: dict[Any, Any] | None = None) -> None:
        self.spin = spin
        self.records = records or {}
        self.polls = 0

    def poll(self, timeout_ms: int = 0, max_records: int = 1) -> dict[Any, Any]:
        self.polls += 1
        end = time.perf_counter() + timeout_ms / 1000
        if self.spin:
            while time.perf_counter() < end:
                pass
        else:
            time.sleep(timeout_ms / 1000)
        return self.records


def test_a_consumer_that_spins_through_its_empty_polls_is_reported() -> None:
    guard, consumer = SpinGuard(window=0.3), _Consumer(spin=True)
    with pytest.raises(ConsumerSpinning, match="busy"):
        for _ in range(20):
            guard.poll(consumer, timeout_ms=50, max_records=1)
    assert 6 <= consumer.polls <= 8  # as soon as a window of empty polls has passed


def test_a_consumer_that_waits_is_left_alone() -> None:
    guard, consumer = SpinGuard(window=0.3), _Consumer(spin=False)
    for _ in range(20):
        assert guard.poll(consumer, timeout_ms=50, max_records=1) == {}


def test_polls_that_bring_records_are_not_counted() -> None:
    records = {"partition": ["record"]}
    guard, consumer = SpinGuard(window=0.3), _Consumer(spin=True, records=records)
    for _ in range(20):
        assert guard.poll(consumer, timeout_ms=50, max_records=1) == records
