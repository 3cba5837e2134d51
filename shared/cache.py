"""A small per-process cache of values that change rarely, each kept a few seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class _Load(Generic[V]):
    """One load in progress: its callers wait for it and take its value, or its error."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: V | None = None
        self.error: BaseException | None = None


class TtlCache(Generic[K, V]):
    """Values by key, each kept ttl seconds from when its load began (None is a value too).

    One caller loads a missing or expired key; the others asking for it meanwhile wait and
    take what it loaded, or the error it met. Without that, when an entry expired under load
    every request in flight queried the database at once, each on its own pooled connection:
    past the pool's size, each of those was a new database connection, opened and closed
    again. Waiters take the load's outcome as it is, however long it took: each loading again
    in turn after a failure (a pool timeout, the database away) made the last wait as many
    times as long.
    """

    def __init__(self, ttl: float, max_items: int = 10_000) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._items: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, _Load[V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V]) -> V:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
            running = self._loading.get(key)
            if running is None:
                mine = self._loading[key] = _Load()
        if running is not None:
            running.done.wait()
            if running.error is not None:
                raise running.error
            return running.value  # type: ignore[return-value]  # set when no error
        began = time.monotonic()
        try:
            mine.value = value = load()
        except BaseException as exc:
            mine.error = exc
            raise
        else:
            with self._lock:
                # Not if the key was forgotten meanwhile (forget drops its load): the load
                # read the row as it was before the change that made the caller forget it.
                if self._loading.get(key) is mine:
                    if len(self._items) >= self.max_items:
                        self._items.clear()
                    self._items[key] = (began, value)
            return value
        finally:
            # Loads live while they run: keys no one keeps (a 404's id, forgotten at once)
            # would otherwise pile up one each.
            with self._lock:
                if self._loading.get(key) is mine:
                    del self._loading[key]
            mine.done.set()

    def forget(self, key: K) -> None:
        """Drop a key's value; a caller from now on loads it afresh."""
        with self._lock:
            self._items.pop(key, None)
            self._loading.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._loading.clear()
