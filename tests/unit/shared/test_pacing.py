"""The pace of a polling loop: slower while idle, at once when woken."""

from __future__ import annotations

import threading
import time

from shared.pacing import Pacer


def timed_idle(pacer: Pacer) -> float:
    started = time.perf_counter()
    pacer.idle()
    return time.perf_counter() - started


def test_an_idle_loop_looks_less_often_up_to_the_ceiling() -> None:
    pacer = Pacer(interval=0.02, ceiling=0.08)
    waits = [timed_idle(pacer) for _ in range(5)]
    floors = [0.02, 0.04, 0.08, 0.08, 0.08]  # doubling, then held at the ceiling
    assert all(floor <= w < floor + 0.05 for w, floor in zip(waits, floors, strict=True)), waits


def test_found_work_brings_back_the_short_interval() -> None:
    pacer = Pacer(interval=0.01, ceiling=0.5)
    for _ in range(4):
        pacer.idle()
    pacer.found_work()
    assert timed_idle(pacer) < 0.06  # not the 0.16 s the next empty look would have waited


def test_a_wake_ends_the_wait_at_once_and_is_not_kept_for_the_look_after() -> None:
    pacer = Pacer(interval=0.5, ceiling=5.0)
    threading.Timer(0.02, pacer.wake).start()
    assert timed_idle(pacer) < 0.2
    assert timed_idle(pacer) >= 0.5  # the wake was spent; the next empty look waits again
