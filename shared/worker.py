"""A service's worker process: its outbox relay and its consumer, stopped cleanly by SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    def run(self) -> None:
        """Work until stop() is called."""

    def stop(self) -> None:
        """Ask run() to finish what it holds and return."""


def run_all(parts: Sequence[Stoppable], install_signals: bool = True) -> None:
    """Run each part in its own thread until SIGTERM/SIGINT; a part that crashes stops all."""
    failed = threading.Event()

    def guard(part: Stoppable) -> Callable[[], None]:
        def target() -> None:
            try:
                part.run()
            except Exception:
                log.exception("worker part crashed", extra={"part": type(part).__name__})
                failed.set()
            finally:
                failed.set()  # any part returning ends the worker

        return target

    def stop_all(*_: object) -> None:
        for part in parts:
            part.stop()

    if install_signals:
        signal.signal(signal.SIGTERM, stop_all)
        signal.signal(signal.SIGINT, stop_all)
    threads = [threading.Thread(target=guard(part), name=type(part).__name__) for part in parts]
    for thread in threads:
        thread.start()
    failed.wait()
    stop_all()
    for thread in threads:
        thread.join(timeout=60)
