"""Group commit: concurrent requests of one process share a database transaction.

A signature is a handful of small statements and a commit; run one transaction per request and
the driver and the round trips cost more than the work. Here the first request to arrive leads:
it takes every request queued so far, commits them together, wakes them, and hands the lead to
the oldest request that arrived meanwhile. Nobody waits for a timer, and a request is answered
only after its own transaction committed, so an accepted signature is never lost. With one
request at a time (sync workers) every batch is a batch of one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
Commit = Callable[[Sequence[T]], Sequence[Exception | None]]


@dataclass
class _Ticket(Generic[T]):
    item: T
    wake: threading.Event = field(default_factory=threading.Event)
    finished: bool = False
    error: Exception | None = None


class GroupCommit(Generic[T]):
    """Batches items from concurrent threads into one commit call at a time."""

    def __init__(self, max_batch: int = 200) -> None:
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Ticket[T]] = []
        self._leading = False
        self.batches = 0
        self.items = 0

    def submit(self, item: T, commit: Commit[T]) -> None:
        """Commit item with whatever else is queued; raise its own error, if it had one."""
        ticket = _Ticket(item)
        with self._lock:
            self._queue.append(ticket)
            lead = not self._leading
            self._leading = True
        while True:
            if lead:
                self._lead(commit)
            ticket.wake.wait()
            if ticket.finished:
                break
            ticket.wake.clear()  # woken to lead the next batch
            lead = True
        if ticket.error is not None:
            raise ticket.error

    def _lead(self, commit: Commit[T]) -> None:
        with self._lock:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
        try:
            outcomes = list(commit([ticket.item for ticket in batch]))
        except Exception as exc:  # noqa: BLE001 - the batch's failure is each request's failure
            outcomes = [exc] * len(batch)
        self.batches += 1
        self.items += len(batch)
        with self._lock:
            for ticket, outcome in zip(batch, outcomes, strict=True):
                ticket.error = outcome
                ticket.finished = True
                ticket.wake.set()
            if self._queue:
                self._queue[0].wake.set()  # the oldest waiting request leads next
            else:
                self._leading = False
