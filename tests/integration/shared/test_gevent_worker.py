"""Web workers run gevent (deploy/gunicorn.conf.py): a request waiting on PostgreSQL must let
the worker's other requests go on, or one worker would serve one request at a time."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.postgres import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def test_a_gevent_worker_serves_others_while_one_request_waits_on_postgres(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "SLEEPY_DATABASE_URL": database_url, "GUNICORN_WORKERS": "1",
           "GUNICORN_ACCESS_LOG": "off"}  # fmt: skip
    env.pop("GUNICORN_WORKER_CLASS", None)  # the default, as deployed
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT),
             "tests.support.sleepy_app:create_app()"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert "Using worker: gevent" in log.read_text()

        def sleep(_: int) -> int:
            with urllib.request.urlopen(f"{url}/sleep", timeout=30) as response:
                return int(response.status)

        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(sleep, range(4)))
        elapsed = time.monotonic() - started
        assert statuses == [200] * 4
        # One at a time would take 4 s; together, about one.
        assert elapsed < 2.5, f"4 requests of 1 s each took {elapsed:.1f} s on one worker"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
