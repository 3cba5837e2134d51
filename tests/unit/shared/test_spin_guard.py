"""SpinGuard: a consumer whose empty polls burn the CPU is told apart from one that waits.

The polls here are plain functions that spend each poll's timeout on the CPU or asleep, on
the real clocks the guard reads (a real consumer's spin, kafka-python 3.0.12 left in its
REBALANCING state, cannot be brought about at will; docs/runtime-facts.md)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.kafka import ConsumerSpinning, SpinGuard


class _Polls:
    """Counts polls; each spends timeout_ms busy on the CPU (spin) or asleep."""

    def __init__(self, *, spin: bool, records: dict[Any, Any] | None = None) -> None:
        self.spin = spin
        self.records = records or {}
        self.count = 0

    def __call__(self, timeout_ms: int = 0, max_records: int = 1) -> dict[Any, Any]:
        self.count += 1
        until = time.perf_counter() + timeout_ms / 1000
        if not self.spin:
            time.sleep(timeout_ms / 1000)
        while time.perf_counter() < until:
            pass
        return self.records


def test_a_consumer_that_spins_through_its_empty_polls_is_reported() -> None:
    guard, polls = SpinGuard(window=0.3), _Polls(spin=True)
    with pytest.raises(ConsumerSpinning, match="busy"):
        for _ in range(100):
            guard.poll(polls, timeout_ms=50, max_records=1)
    # As soon as a window of empty polls has passed (later only if a loaded machine kept the
    # spinning thread off the CPU for most of that window).
    assert 6 <= polls.count <= 12


def test_a_consumer_that_waits_is_left_alone() -> None:
    guard, polls = SpinGuard(window=0.3), _Polls(spin=False)
    for _ in range(20):
        assert guard.poll(polls, timeout_ms=50, max_records=1) == {}


def test_polls_that_bring_records_are_not_counted() -> None:
    records = {"partition": ["record"]}
    guard, polls = SpinGuard(window=0.3), _Polls(spin=True, records=records)
    for _ in range(20):
        assert guard.poll(polls, timeout_ms=50, max_records=1) == records
