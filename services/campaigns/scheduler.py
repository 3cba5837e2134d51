"""The alert scheduler: publishes scheduled alerts when their time comes, once each."""

from __future__ import annotations

import logging
import threading

from services.campaigns import alerts, store
from services.campaigns.bootstrap import Deps
from shared.idempotency import ExpiredKeys

log = logging.getLogger(__name__)


class AlertScheduler:
    """Polls for due alerts; safe to run in several workers at once (see alerts.publish_due)."""

    def __init__(self, deps: Deps, interval: float = 0.5) -> None:
        self.deps = deps
        self.interval = interval
        self.expired_keys = ExpiredKeys(deps.engine, store.idempotency_keys)
        self._stop = threading.Event()
        self.published = 0

    def stop(self) -> None:
        """Ask run() to return after the current round."""
        self._stop.set()

    def run_once(self) -> int:
        """Publish what is due now; return how many alerts this round published."""
        count = alerts.publish_due(self.deps)
        self.published += count
        if count:
            log.info("alerts published", extra={"count": count})
        return count

    def run(self) -> None:
        """Publish due alerts until stopped; a database outage only delays them."""
        while not self._stop.is_set():
            try:
                # A full round means more may be due: go again at once.
                if self.run_once() < 100:
                    self._stop.wait(self.interval)
                self.expired_keys.forget_if_due()
            except Exception as exc:  # noqa: BLE001 - keep scheduling through outages
                log.warning("alert scheduler paused", extra={"error": type(exc).__name__})
                self._stop.wait(min(self.interval * 4, 5.0))
