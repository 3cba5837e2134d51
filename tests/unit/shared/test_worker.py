"""A worker process: SIGUSR1 shows where each thread waits, SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

WORKER = textwrap.dedent(
    """
    import sys, threading
    from shared.worker import run_all

    class WaitsForever:
        def __init__(self):
            self.stopped = threading.Event()
        def run(self):
            print("ready", flush=True)
            self.stopped.wait()
        def stop(self):
            self.stopped.set()

    run_all([WaitsForever()])
    print("stopped", flush=True)
    """
)


def test_sigusr1_dumps_every_threads_stack_and_sigterm_still_stops_the_worker() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        assert proc.poll() is None, "SIGUSR1 must not end the worker"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert out.strip() == "stopped"
    assert "Thread 0x" in err and "in run" in err, err  # the part's thread, waiting in run()


CRASHING = textwrap.dedent(
    """
    import threading
    from shared.worker import run_all

    class Crashes:
        def run(self):
            raise RuntimeError("boom")
        def stop(self):
            pass

    class WaitsForever:
        def __init__(self):
            self.stopped = threading.Event()
        def run(self):
            self.stopped.wait()
        def stop(self):
            self.stopped.set()

    run_all([Crashes(), WaitsForever()])
    print("returned", flush=True)
    """
)


def test_a_part_that_crashes_stops_the_worker_with_a_failure_status() -> None:
    """A supervisor must see a failure, not a clean stop (it exited 0 before)."""
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1, proc.stderr
    assert "returned" not in proc.stdout and "worker part crashed" in proc.stderr
