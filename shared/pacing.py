"""How long a polling loop waits before it looks again: paced, or until PostgreSQL says; and
housekeeping a loop runs now and then."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)


class Periodic:
    """Runs task (which returns how much it did) at most once per `every` seconds, when a loop
    calls run_if_due()."""

    def __init__(
        self,
        task: Callable[[], int],
        every: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.task = task
        self.every = every
        self.clock = clock
        self._due = 0.0

    def run_if_due(self) -> int:
        """Run the task if the last run was `every` seconds ago; return what it did, else 0."""
        now = self.clock()
        if now < self._due:
            return 0
        self._due = now + self.every
        return self.task()


class Pacer:
    """Paces a loop that polls the database for work.

    After a look that found nothing the loop waits `interval`, doubled after each empty look in
    a row up to `ceiling`; wake() (new work was just committed in this process) or a look that
    found work brings the next look forward. An idle loop then costs a look every `ceiling`
    seconds instead of every `interval`: the webhook dispatcher's 20 looks a second took 2 % of
    a core at rest. Work committed in another process, and retries falling due, wait at most
    `ceiling`.
    """

    def __init__(self, interval: float, ceiling: float) -> None:
        self.interval = interval
        self.ceiling = max(ceiling, interval)
        self._next = interval
        self._wake = threading.Event()

    def wake(self) -> None:
        """Look again now."""
        self._wake.set()

    def found_work(self) -> None:
        """The last look found work: the next empty one waits the short interval again."""
        self._next = self.interval

    def idle(self) -> None:
        """Wait after an empty look, until the pace's time is up or wake() is called."""
        if self._wake.wait(self._next):
            self._next = self.interval
        else:
            self._next = min(self._next * 2, self.ceiling)
        # Cleared before the next look: a wake() from here on is for work that look may miss.
        self._wake.clear()


class CommitListener:
    """Waits for PostgreSQL to say rows were committed: LISTEN on a connection of its own.

    A writer's NOTIFY (here, a trigger on the table) is delivered when its transaction commits,
    to every process listening, so a loop that waits on this starts at once on new rows and
    otherwise sleeps through `wait`'s whole timeout. A pooler in transaction mode (PgBouncer)
    does not pass notifications on: the loop then looks once per timeout.
    """

    def __init__(self, engine: Engine, channel: str) -> None:
        self.engine = engine
        self.channel = channel
        self._conn: Any = None
        self._socket = -1
        self._interrupt_r, self._interrupt_w = os.pipe()

    def wait(self, timeout: float) -> None:
        """Return on a notification, on interrupt(), or after timeout.

        The first call (and the first after the connection was lost) starts listening and
        returns at once: rows committed before then were signalled to nobody, so look again.
        """
        watched = select.poll()  # not select.select, which refuses descriptors above 1023
        watched.register(self._interrupt_r, select.POLLIN)
        if self._conn is None:
            try:
                self._listen()
                return
            except Exception as exc:  # noqa: BLE001 - the database is down: wait, retry later
                log.debug("listen failed", extra={"channel": self.channel, "error": repr(exc)})
                self._close_connection()
        else:
            watched.register(self._socket, select.POLLIN)
        ready = {fd for fd, _ in watched.poll(timeout * 1000)}
        if self._interrupt_r in ready:
            os.read(self._interrupt_r, 64)
        if self._conn is not None and self._socket in ready:
            try:
                for _ in self._conn.notifies(timeout=0):
                    pass
            except Exception:  # noqa: BLE001 - connection lost: listen again on the next wait
                self._close_connection()

    def interrupt(self) -> None:
        """End the current (or the next) wait now."""
        with contextlib.suppress(OSError):
            os.write(self._interrupt_w, b"!")

    def close(self) -> None:
        self._close_connection()
        for fd in (self._interrupt_r, self._interrupt_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        conn: Any = raw.driver_connection
        raw.detach()  # this connection never goes back to the pool
        self._conn = conn
        conn.rollback()  # out of any transaction the pool's ping may have opened
        conn.autocommit = True
        conn.execute(f'LISTEN "{self.channel}"')
        self._socket = conn.fileno()

    def _close_connection(self) -> None:
        conn, self._conn, self._socket = self._conn, None, -1
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
