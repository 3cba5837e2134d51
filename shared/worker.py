"""A service's worker process: its outbox relay and its consumer, stopped cleanly by SIGTERM."""

from __future__ import annotations

import faulthandler
import gc
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from shared import metrics

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    def run(self) -> None:
        """Work until stop() is called."""

    def stop(self) -> None:
        """Ask run() to finish what it holds and return."""


def run_all(
    parts: Sequence[Stoppable], install_signals: bool = True, metrics_port: int = 0
) -> None:
    """Run each part in its own thread until SIGTERM/SIGINT; a part that crashes stops all.

    A part that ended on its own (it crashed, or returned unasked) makes the process exit with
    status 1 once the others have stopped, so a supervisor sees a failure, not a clean stop.
    With a metrics_port, the process's metrics (events consumed, possible duplicates...) are
    served at /metrics there.
    """
    if metrics_port:
        metrics.serve(metrics_port)
    failed = threading.Event()
    asked = threading.Event()  # SIGTERM or SIGINT: a stop, not a failure

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

    def asked_to_stop(*_: object) -> None:
        asked.set()
        stop_all()

    if install_signals:
        signal.signal(signal.SIGTERM, asked_to_stop)
        signal.signal(signal.SIGINT, asked_to_stop)
        # `kill -USR1 <pid>`: every thread's stack to stderr (file, line and function names
        # only, no values), to see where a worker that seems stuck is waiting.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    freeze_startup_heap()
    threads = [threading.Thread(target=guard(part), name=type(part).__name__) for part in parts]
    for thread in threads:
        thread.start()
    failed.wait()
    ended_unasked = not asked.is_set()
    stop_all()
    for thread in threads:
        thread.join(timeout=60)
    if ended_unasked and install_signals:
        log.error("worker stopping: a part ended on its own")
        raise SystemExit(1)


def freeze_startup_heap() -> None:
    """Move what the process built at startup (modules, engines, clients) out of the cyclic
    garbage collector's generations: it lives as long as the process.

    Left in, every full collection walks it (about 220,000 objects in a notifications worker),
    and a sender building 1,000-recipient requests triggers one every few batches: a third of
    an email sender's CPU. Objects made later are collected as before.
    """
    gc.collect()
    gc.freeze()
