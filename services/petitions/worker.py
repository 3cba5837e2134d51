"""python -m services.petitions.worker: outbox relay, event consumer and housekeeping."""

from __future__ import annotations

import logging
import threading
import time

from services.petitions import signing, store, usecases
from services.petitions.bootstrap import Deps, build
from services.petitions.handlers import TOPICS, handlers
from shared.migrate import await_schema
from shared.service import start_logging, worker_parts
from shared.worker import run_all

log = logging.getLogger(__name__)


class Housekeeping:
    """Publishes milestones, expires unconfirmed signatures and old idempotency keys, and erases
    closed petitions' signers an hour after their retention runs out.

    Milestones are found here rather than in the signing request: a signer's transaction cannot
    see concurrent uncommitted signatures, so two signers could each see 99 and neither claim
    100. Summing committed counters once a second never misses a rung, and the conditional goal
    update publishes each rung exactly once even with several workers.
    """

    def __init__(self, deps: Deps, interval: float = 1.0) -> None:
        self.deps = deps
        self.interval = interval
        self._stop = threading.Event()
        self._last_forget = 0.0

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep going through database outages
                log.warning("housekeeping failed", extra={"error": type(exc).__name__})
            self._stop.wait(self.interval)

    def run_once(self) -> None:
        usecases.advance_milestones(self.deps)
        signing.expire_unconfirmed(self.deps)
        if time.monotonic() - self._last_forget > 60:
            signing.forget_idempotency_keys(self.deps)
            erased = signing.erase_signer_data(self.deps)
            if erased:
                log.info("signers erased after their petition's retention", extra={"count": erased})
            self._last_forget = time.monotonic()

    def stop(self) -> None:
        self._stop.set()


def main() -> None:
    deps = build()
    start_logging("petitions-worker", deps.settings)
    await_schema("petitions", deps.engine)
    relay, runner = worker_parts(
        deps.settings, deps.engine, store.outbox, store.processed, TOPICS, handlers(deps)
    )
    run_all([relay, runner, Housekeeping(deps)], metrics_port=deps.settings.worker_metrics_port)


if __name__ == "__main__":
    main()
