"""Entry points of the fake SendGrid and Twilio servers: app factories, runners and records.

Gunicorn app specs: ``tests.fakes.providers:create_sendgrid_app()`` and
``tests.fakes.providers:create_twilio_app()``, configured through FAKE_* environment variables.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from .common import (
    FAULTS_SCHEMA,
    FakeRecords,
    FaultConfigError,
    RecordedFault,
    RecordedRequest,
)
from .sendgrid_fake import create_sendgrid_app, sendgrid_schema, validate_mail
from .twilio_fake import create_twilio_app, twilio_response_schema

__all__ = [
    "FAULTS_SCHEMA",
    "FakeProcess",
    "FakeRecords",
    "FaultConfigError",
    "RecordedFault",
    "RecordedRequest",
    "create_sendgrid_app",
    "create_twilio_app",
    "running_sendgrid_fake",
    "running_twilio_fake",
    "sendgrid_schema",
    "serve_in_thread",
    "start_fake_process",
    "twilio_response_schema",
    "validate_mail",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KINDS = ("sendgrid", "twilio")
_ENV_OPTIONS = {
    "api_key": "FAKE_SENDGRID_API_KEY",
    "account_sid": "FAKE_TWILIO_ACCOUNT_SID",
    "auth_token": "FAKE_TWILIO_AUTH_TOKEN",
    "unsubscribed": "FAKE_TWILIO_UNSUBSCRIBED",
    "invalid": "FAKE_TWILIO_INVALID",
}


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug request handler that does not log every request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the per-request access log line."""


@contextlib.contextmanager
def serve_in_thread(app: Flask) -> Iterator[str]:
    """Serve app on a free 127.0.0.1 port from a background thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=app.name, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def running_sendgrid_fake(db_path: str | Path, **options: Any) -> Iterator[str]:
    """Run the fake SendGrid in this process (options as create_sendgrid_app); yield its URL."""
    with serve_in_thread(create_sendgrid_app(db_path, **options)) as url:
        yield url


@contextlib.contextmanager
def running_twilio_fake(db_path: str | Path, **options: Any) -> Iterator[str]:
    """Run the fake Twilio in this process (options as create_twilio_app); yield its URL."""
    with serve_in_thread(create_twilio_app(db_path, **options)) as url:
        yield url


@dataclass
class FakeProcess:
    """A fake served by gunicorn in its own process group."""

    kind: str
    url: str
    db_path: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def records(self) -> FakeRecords:
        """Return a reader of this fake's SQLite records."""
        return FakeRecords(self.db_path)

    def pids(self) -> list[int]:
        """Return the gunicorn master and worker pids still running."""
        try:
            master = psutil.Process(self.process.pid)
            return [master.pid, *(c.pid for c in master.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gunicorn gracefully, kill whatever of its process group remains, and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # our own session: master + workers
        self.process.wait(timeout)

    def __enter__(self) -> FakeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _option_env(options: dict[str, Any]) -> dict[str, str]:
    env = {}
    for name, value in options.items():
        if name not in _ENV_OPTIONS:
            raise TypeError(f"unknown fake option {name!r}")
        is_list = isinstance(value, Iterable) and not isinstance(value, str)
        env[_ENV_OPTIONS[name]] = ",".join(value) if is_list else str(value)
    return env


def start_fake_process(
    kind: str,
    db_path: str | Path,
    port: int = 0,
    workers: int = 2,
    *,
    threads: int = 4,
    faults: dict[str, Any] | None = None,
    startup_timeout: float = 60.0,
    **options: Any,
) -> FakeProcess:
    """Start the "sendgrid" or "twilio" fake under gunicorn on 127.0.0.1:port (0 = a free port).

    faults are stored before the workers start; options are those of the app factory (api_key,
    account_sid, auth_token, unsubscribed, invalid), passed as FAKE_* environment variables.
    Returns once /_fake/health answers and every worker is up; call .stop() (or use it as a
    context manager).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    db_path = str(db_path)
    store = FakeRecords(db_path)
    if faults is not None:
        store.set_faults(kind, faults)
    port = port or _free_port()
    env = {**os.environ, "FAKE_DB_PATH": db_path, **_option_env(options)}
    log_path = Path(f"{db_path}.{kind}.gunicorn.log")
    command = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--preload",
        "--chdir", str(PROJECT_ROOT),
        "--timeout", "300",
        "--graceful-timeout", "3",
        "--no-control-socket",
        "--log-level", "warning",
        f"tests.fakes.providers:create_{kind}_app()",
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    handle = FakeProcess(kind, f"http://127.0.0.1:{port}", db_path, process, log_path)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError):
            with opener.open(f"{handle.url}/_fake/health", timeout=1) as response:
                if response.status == 200 and len(handle.pids()) > workers:
                    return handle
        time.sleep(0.05)
    handle.stop()
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"fake {kind} did not start on port {port}:\n{tail}")
