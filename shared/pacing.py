"""How long a polling loop waits before it looks again."""

from __future__ import annotations

import threading


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
