"""Wait for an outcome with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T], timeout: float = 90.0, interval: float = 0.1, message: str = "condition"
) -> T:
    """Poll until probe() returns a truthy value; fail with the last value after timeout."""
    deadline = time.monotonic() + timeout
    last: T = probe()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not reached within {timeout} s (last: {last!r})")
        time.sleep(interval)
        last = probe()
    return last
