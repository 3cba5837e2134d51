"""Gunicorn settings for every Kinship service (local `kinship dev up`, Docker, Kubernetes).

gunicorn -c deploy/gunicorn.conf.py 'services.<name>:create_app()'

Read from the environment so one file serves every deployment:
  PORT / GUNICORN_BIND     where to listen (default 0.0.0.0:$PORT, PORT default 8000)
  GUNICORN_WORKERS         worker processes (default: 2 x CPUs + 1, at most 8)
  GUNICORN_WORKER_CLASS    "gevent" (default) or "gthread"
  GUNICORN_THREADS         threads per gthread worker (default 4; a gevent worker has none)
  GUNICORN_WORKER_CONNECTIONS connections a worker holds at once (default 16 under gevent, each
                           a request at a time; 4 x threads under gthread)
  GUNICORN_TIMEOUT         seconds before a silent worker is restarted (default 30)
  GUNICORN_GRACEFUL_TIMEOUT seconds a worker gets to finish its requests on SIGTERM (default 30)
  GUNICORN_ACCESS_LOG      "-" (stdout, default), a file, or "off"
"""

from __future__ import annotations

import multiprocessing
import os
import re
from typing import Any

from gunicorn.glogging import Logger


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def default_workers(cpus: int) -> int:
    """Return the worker count for a host with this many CPUs (gunicorn's 2n+1, capped)."""
    return max(2, min(2 * cpus + 1, 8))


# Empty values count as unset, as everywhere (docs/configuration.md).
bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT') or '8000'}"
workers = _int("GUNICORN_WORKERS", default_workers(multiprocessing.cpu_count()))
threads = _int("GUNICORN_THREADS", 4)
# A gevent worker serves its requests as greenlets of one thread: no thread pool handing
# requests over, no GIL handoffs between threads, and psycopg (3.1.14 on) waits on the
# database through gevent's hub once gunicorn has monkey-patched the worker. Signing measured
# 960-1,081 signatures/s against 738-901 under 3 gthread workers x 8 threads, alternated
# (docs/runtime-facts.md).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gevent"
# A worker accepts every connection it can and serves a kept-alive connection itself, so a
# proxy's (or load generator's) pool of keep-alive connections can all land on one worker:
# one core, one GIL. Measured with 32 connections on 3 workers: ~2,400 req/s that way against
# 7,100-8,300 spread out (docs/runtime-facts.md). A worker stops accepting at this many, so
# the others take the rest.
# Under gevent this is also how many requests a worker serves at once (16, as the signing
# benchmark measured). One finding the database pool (5, and 5 in overflow) all in use waits
# for a connection, it is not refused; concurrent signatures share one (the group commit).
worker_connections = _int(
    "GUNICORN_WORKER_CONNECTIONS", 16 if worker_class == "gevent" else 4 * threads
)
timeout = _int("GUNICORN_TIMEOUT", 30)
# SIGTERM lets in-flight requests finish; their outbox rows are already committed, so a stop
# never loses an event.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = 5
# The heartbeat file lives in memory: containers often have a read-only or slow root disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Build the app in each worker: engines and Kafka clients must not be shared across a fork.
preload_app = False
# A request line (method, path and query) longer than this is refused before Flask sees it;
# bodies are capped by Flask's MAX_CONTENT_LENGTH (2 MiB, shared/service.py).
limit_request_line = 8190
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"
errorlog = "-"
loglevel = (os.environ.get("LOG_LEVEL") or "info").lower()
_access = os.environ.get("GUNICORN_ACCESS_LOG") or "-"
accesslog = None if _access == "off" else _access

# Path segments after these carry secrets or identifiers of people (unsubscribe, preference,
# erasure and confirmation tokens; Twilio delivery ids). The access log keeps only the route.
SECRET_AFTER = re.compile(
    r"(/(?:unsubscribe|preferences|erase|confirmations|status)/)[^/?]+", re.IGNORECASE
)


def redact_path(path: str) -> str:
    """Return a request path with its token segments replaced, for the access log."""
    return SECRET_AFTER.sub(r"\1<redacted>", path)


class PrivateAccessLogger(Logger):
    """An access log without personal data: no address, query string, referrer, agent, token."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        path = redact_path(environ.get("PATH_INFO") or "-")
        atoms.update(
            {
                "h": "-",
                "f": "-",
                "q": "-",
                "U": path,
                "r": f"{environ.get('REQUEST_METHOD', '-')} {path}",
            }
        )
        return atoms

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        # gunicorn logs a malformed request with the client's address and its request line
        # (which may hold a token): keep only that it happened.
        if isinstance(msg, str) and msg.startswith("Invalid request from ip="):
            msg, args = "Invalid request (client address and request line withheld)", ()
        super().warning(msg, *args, **kwargs)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        # "Error handling request <method> <uri>": the route, without tokens or query string.
        if isinstance(msg, str) and msg.startswith("Error handling request"):
            args = tuple(redact_path(str(arg).split("?", 1)[0]) for arg in args)
        super().exception(msg, *args, **kwargs)


logger_class = PrivateAccessLogger


def pre_request(worker: Any, req: Any) -> None:
    """gunicorn's default logs each request's whole path at DEBUG: the route only."""
    worker.log.debug("%s %s", req.method, redact_path(req.path))


# Method, route (tokens redacted), status, bytes, milliseconds: enough to debug, nothing personal.
access_log_format = "%(m)s %(U)s %(s)s %(B)s %(M)sms"


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's metrics files (Prometheus multiprocess mode, several workers)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
