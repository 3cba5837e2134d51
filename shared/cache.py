"""A small per-process cache of values that change rarely, each kept a few seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values by key, each kept ttl seconds from when its load began (None is a value too).

    One caller loads a missing or expired key; the others asking for it meanwhile wait and
    take what it loaded. Without that, when an entry expired under load every request in
    flight queried the database at once, each on its own pooled connection: past the pool's
    size, each of those was a new database connection, opened and closed again.
    """

    def __init__(self, ttl: float, max_items: int = 10_000) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._items: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, threading.Lock] = {}
        self._lock = threading.Lock()

    def _fresh(self, key: K) -> tuple[float, V] | None:
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit
        return None

    def get(self, key: K, load: Callable[[], V]) -> V:
        hit = self._fresh(key)
        if hit is not None:
            return hit[1]
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        try:
            with gate:
                hit = self._fresh(key)  # loaded while this caller waited
                if hit is not None:
                    return hit[1]
                began = time.monotonic()
                value = load()
                with self._lock:
                    if len(self._items) >= self.max_items:
                        self._items.clear()
                    self._items[key] = (began, value)
                return value
        finally:
            # Gates live while a load runs: keys no one keeps (a 404's id, forgotten at once)
            # would otherwise pile up one gate each.
            with self._lock:
                if self._loading.get(key) is gate:
                    del self._loading[key]

    def forget(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
