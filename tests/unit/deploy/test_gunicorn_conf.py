"""deploy/gunicorn.conf.py: sizing from the CPU count, graceful stop, a private access log."""

from __future__ import annotations

import runpy
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config

from tests.unit.deploy.conftest import DEPLOY


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in (
        "GUNICORN_WORKERS",
        "GUNICORN_THREADS",
        "GUNICORN_WORKER_CLASS",
        "GUNICORN_WORKER_CONNECTIONS",
        "GUNICORN_BIND",
        "PORT",
        "GUNICORN_ACCESS_LOG",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def test_workers_follow_the_cpu_count_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch)
    assert conf["default_workers"](1) == 3
    assert conf["default_workers"](2) == 5
    assert conf["default_workers"](64) == 8
    assert conf["workers"] == conf["default_workers"](conf["multiprocessing"].cpu_count())
    assert load(monkeypatch, GUNICORN_WORKERS="1")["workers"] == 1


def test_a_worker_holds_a_bounded_share_of_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch)
    # Bounded, so one worker cannot take every kept-alive connection.
    assert conf["worker_connections"] == 16 < Config().worker_connections
    # Threads do not size a gevent worker; under gthread, above the thread count, so a worker
    # still keeps connections alive between requests.
    assert load(monkeypatch, GUNICORN_THREADS="8")["worker_connections"] == 16
    threaded = load(monkeypatch, GUNICORN_WORKER_CLASS="gthread", GUNICORN_THREADS="8")
    assert threaded["threads"] < threaded["worker_connections"] == 32
    assert load(monkeypatch, GUNICORN_WORKER_CONNECTIONS="50")["worker_connections"] == 50


def test_workers_are_gevent_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch)
    assert conf["worker_class"] == "gevent"
    assert load(monkeypatch, GUNICORN_WORKER_CLASS="gthread")["worker_class"] == "gthread"
    # gunicorn can load the class (gevent is a dependency, not an extra to remember).
    config = Config()
    config.set("worker_class", conf["worker_class"])
    assert config.worker_class.__name__ == "GeventWorker"


def test_binds_to_port_and_stops_gracefully(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch, PORT="8123")
    assert conf["bind"] == "0.0.0.0:8123"
    assert load(monkeypatch, GUNICORN_BIND="127.0.0.1:8001")["bind"] == "127.0.0.1:8001"
    assert conf["graceful_timeout"] >= 20
    assert conf["preload_app"] is False


def test_access_log_holds_no_address_query_or_token(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch)
    logger_class = conf["logger_class"]
    logger = logger_class(Config())
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/unsubscribe/tok_SECRET123",
        "QUERY_STRING": "email=mei%40example.org",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": "https://mail.example/?u=mei",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "RAW_URI": "/unsubscribe/tok_SECRET123?email=mei%40example.org",
    }
    resp = SimpleNamespace(status="200 OK", sent=12, headers=[], response_length=12)
    req = SimpleNamespace(headers=[])
    atoms = logger.atoms(resp, req, environ, _Delta())
    line = conf["access_log_format"] % atoms
    assert line.startswith("POST /unsubscribe/<redacted> 200")
    for secret in ("SECRET123", "203.0.113.9", "mei", "example.org"):
        assert secret not in line
        assert secret not in str(atoms["r"]) and secret not in str(atoms["h"])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/confirmations/abc.def", "/api/v1/confirmations/<redacted>"),
        ("/preferences/xyz", "/preferences/<redacted>"),
        ("/preferences/xyz/confirm", "/preferences/<redacted>/confirm"),
        ("/erase/xyz", "/erase/<redacted>"),
        ("/api/v1/callbacks/twilio/status/d-1", "/api/v1/callbacks/twilio/status/<redacted>"),
        ("/api/v1/petitions/p-1/signatures", "/api/v1/petitions/p-1/signatures"),
    ],
)
def test_redacts_token_segments(monkeypatch: pytest.MonkeyPatch, path: str, expected: str) -> None:
    assert load(monkeypatch)["redact_path"](path) == expected


class _Delta:
    seconds = 0
    microseconds = 1500


def test_the_error_log_names_no_client_address_request_line_or_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import logging

    logger = load(monkeypatch)["logger_class"](Config())
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    logger.error_log.addHandler(handler)
    try:
        # What gunicorn's worker logs for a malformed request, and for a view that crashed.
        logger.warning(
            "Invalid request from ip=203.0.113.9: Invalid HTTP request line: "
            "'GET /preferences/tok_SECRET123.tag.mac x'"
        )
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception(
                "Error handling request %s %s", "GET", "/unsubscribe/tok_SECRET123?e=mei%40x.org"
            )
    finally:
        logger.error_log.removeHandler(handler)
    text = written.getvalue()
    assert "Invalid request" in text and "Error handling request GET" in text
    for secret in ("203.0.113.9", "SECRET123", "mei"):
        assert secret not in text


def test_at_debug_the_request_line_gunicorn_logs_holds_no_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """gunicorn's own pre_request hook logs every request's path at DEBUG: an operator
    chasing a bug would have written every unsubscribe, preference and confirmation link
    (enough to change someone's consents, or confirm their signature) to the error log."""
    import io
    import logging

    settings = load(monkeypatch, LOG_LEVEL="debug")
    config = Config()
    for name, value in settings.items():
        if name in config.settings:
            config.set(name, value)
    logger = config.logger_class(config)
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    logger.error_log.addHandler(handler)
    try:
        worker = SimpleNamespace(log=logger)
        request = SimpleNamespace(method="GET", path="/api/v1/confirmations/tok_SECRET123")
        config.pre_request(worker, request)
    finally:
        logger.error_log.removeHandler(handler)
    text = written.getvalue()
    assert "GET /api/v1/confirmations/<redacted>" in text
    assert "SECRET123" not in text
