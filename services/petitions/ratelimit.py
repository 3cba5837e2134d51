"""Per-process rate-limit counts for flask-limiter, cheap enough for the signing hot path."""

from __future__ import annotations

import threading
import time
from typing import Any

from limits.storage import MemoryStorage

SCHEME = "kinship-memory"


class LeanMemoryStorage(MemoryStorage):
    """limits' memory storage, sweeping expired keys inline at most once a second.

    The stock storage starts a new timer thread 10 ms after the last one ended, so under load
    nearly every request paid for a thread start: a quarter of a signature's CPU. Expiry is
    still exact (every read checks its key's deadline); the sweep only bounds memory.
    """

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - overrides a private hook
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + 1.0
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._sweep_lock.release()


def storage_uri(configured: str) -> str:
    """Use the lean storage for the in-memory choice; any shared store (redis://…) as given."""
    return f"{SCHEME}://" if configured.startswith("memory://") else configured
