"""The pace of a polling loop: slower while idle, at once when woken."""

from __future__ import annotations

import threading
import time

from shared.pacing import Pacer


class _Waits:
    """Stands in for the pacer's wake event: records each wait's timeout, never sleeps."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.timeouts.append(timeout)
        return False

    def clear(self) -> None:
        pass


def recorded(pacer: Pacer) -> _Waits:
    waits = _Waits()
    pacer._wake = waits  # type: ignore[assignment]
    return waits


def timed_idle(pacer: Pacer) -> float:
    started = time.perf_counter()
    pacer.idle()
    return time.perf_counter() - started


def test_an_idle_loop_looks_less_often_up_to_the_ceiling() -> None:
    pacer = Pacer(interval=0.02, ceiling=0.08)
    waits = recorded(pacer)
    for _ in range(5):
        pacer.idle()
    assert waits.timeouts == [0.02, 0.04, 0.08, 0.08, 0.08]  # doubling, then held at the ceiling


def test_found_work_brings_back_the_short_interval() -> None:
    pacer = Pacer(interval=0.01, ceiling=0.5)
    waits = recorded(pacer)
    for _ in range(4):
        pacer.idle()
    pacer.found_work()
    pacer.idle()
    assert waits.timeouts[-1] == 0.01  # not the 0.16 s the next empty look would have waited


def test_a_wake_ends_the_wait_at_once_and_is_not_kept_for_the_look_after() -> None:
    pacer = Pacer(interval=2.0, ceiling=5.0)
    threading.Timer(0.02, pacer.wake).start()
    assert timed_idle(pacer) < 1.0  # woken, long before its 2 s
    assert timed_idle(pacer) >= 2.0  # the wake was spent; the next empty look waits again
