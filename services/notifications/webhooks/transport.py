"""HTTP POSTs to partner endpoints that check where they connect, cap what they read and never
follow redirects.

The address is resolved and checked when a connection opens, and the socket connects to exactly
that checked address (no second lookup an attacker's DNS could answer differently). Idle
connections are kept per endpoint for reuse, and dropped after `max_age` so a changed DNS
answer is checked again.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from services.notifications.webhooks.config import DEADLINE_STEPS
from services.notifications.webhooks.domain import (
    IpNetwork,
    UnsafeUrl,
    check_address,
    check_url,
)


@dataclass(frozen=True)
class Reply:
    """What an endpoint answered (status None: no answer; error says why)."""

    status: int | None
    retry_after: str | None
    body: bytes
    error: str | None


class Transport(Protocol):
    def post(
        self, pool_key: str, url: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> Reply:
        """POST body to url; never raises, blocks at most about `timeout` per network step."""


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to one pre-checked address (the Host header keeps the name)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to one pre-checked address, verifying the certificate of the name."""

    def __init__(
        self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


class GuardedTransport:
    """The production transport: SSRF-checked, capped, no redirects, connections reused."""

    def __init__(
        self,
        allowed: Sequence[IpNetwork],
        https_required: bool,
        read_cap: int = 64 * 1024,
        max_age: float = 60.0,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.allowed = tuple(allowed)
        self.https_required = https_required
        self.read_cap = read_cap
        self.max_age = max_age
        self.context = context or ssl.create_default_context()
        self._idle: dict[tuple[str, str], list[tuple[float, http.client.HTTPConnection]]] = {}
        self._lock = threading.Lock()

    def resolve(self, host: str, port: int) -> str:
        """Return the one address to connect to; refuse if any address of the name is unsafe."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UnsafeUrl("does not resolve") from exc
        except UnicodeError as exc:  # the IDNA codec: an empty label, or one over 63 characters
            raise UnsafeUrl("has an invalid host name") from exc
        addresses = [str(info[4][0]) for info in infos]
        if not addresses:
            raise UnsafeUrl("does not resolve")
        for address in addresses:
            check_address(address, self.allowed)
        return addresses[0]

    def _open(self, url: str, timeout: float) -> http.client.HTTPConnection:
        scheme, host, port = check_url(url, self.https_required)
        address = self.resolve(host, port)
        if scheme == "https":
            return _PinnedHTTPS(host, port, address, timeout, self.context)
        return _PinnedHTTP(host, port, address, timeout)

    def _checkout(self, key: tuple[str, str]) -> http.client.HTTPConnection | None:
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(key) or []
            while idle:
                opened, conn = idle.pop()
                if now - opened < self.max_age:
                    return conn
                conn.close()
        return None

    def _checkin(self, key: tuple[str, str], conn: http.client.HTTPConnection) -> None:
        opened = getattr(conn, "kinship_opened", time.monotonic())
        with self._lock:
            self._idle.setdefault(key, []).append((opened, conn))

    def post(
        self, pool_key: str, url: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> Reply:
        """POST once; a stale kept-alive connection is retried once on a fresh one."""
        key = (pool_key, url)
        reused = self._checkout(key)
        if reused is not None:
            reused.timeout = timeout
            if reused.sock is not None:
                reused.sock.settimeout(timeout)
            reply, keep = self._send(reused, url, headers, body)
            if not (reply.status is None and reply.error == "connection reset"):
                self._finish(key, reused, keep)
                return reply
            reused.close()
        try:
            conn = self._open(url, timeout)
        except UnsafeUrl as exc:
            return Reply(None, None, b"", f"refused: URL {exc}")
        conn.kinship_opened = time.monotonic()  # type: ignore[attr-defined]
        reply, keep = self._send(conn, url, headers, body)
        self._finish(key, conn, keep)
        return reply

    def _finish(self, key: tuple[str, str], conn: http.client.HTTPConnection, keep: bool) -> None:
        if keep:
            self._checkin(key, conn)
        else:
            conn.close()

    def _send(
        self, conn: http.client.HTTPConnection, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[Reply, bool]:
        # Each network step has the timeout, and the whole attempt DEADLINE_STEPS of them: an
        # endpoint answering a byte at a time would otherwise hold a delivery thread (and
        # its message's claim) for as long as it likes.
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            sock = conn.sock  # read once: the exchange may close it meanwhile
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(DEADLINE_STEPS * (conn.timeout or 10.0), cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            reply, keep = self._exchange(conn, url, headers, body)
        finally:
            watchdog.cancel()
            watchdog.join()  # a cut under way ends before the connection may be kept
        if expired.is_set():
            return Reply(None, None, b"", "timeout: no complete answer in time"), False
        return reply, keep

    def _exchange(
        self, conn: http.client.HTTPConnection, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[Reply, bool]:
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read(self.read_cap)
            # A body longer than the cap is left unread; that connection cannot be reused.
            keep = response.isclosed() and not response.will_close
            return Reply(response.status, response.getheader("Retry-After"), raw, None), keep
        except TimeoutError:
            return Reply(None, None, b"", "timeout"), False
        except ConnectionRefusedError:
            return Reply(None, None, b"", "connection refused"), False
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            return Reply(None, None, b"", "connection reset"), False
        except ssl.SSLError as exc:
            return Reply(None, None, b"", f"TLS error: {exc.reason or type(exc).__name__}"), False
        except UnsafeUrl as exc:
            return Reply(None, None, b"", f"refused: URL {exc}"), False
        except (OSError, http.client.HTTPException) as exc:
            return Reply(None, None, b"", f"network error: {type(exc).__name__}"), False
        except ValueError as exc:  # e.g. UnicodeEncodeError: a request http.client cannot write
            return Reply(None, None, b"", f"invalid request: {type(exc).__name__}"), False

    def sweep(self) -> int:
        """Close idle connections past `max_age` (those of an endpoint deleted, changed or
        quiet would otherwise stay open, often half-closed by the other end, until the process
        exits); return how many."""
        now = time.monotonic()
        stale: list[http.client.HTTPConnection] = []
        with self._lock:
            for key, idle in list(self._idle.items()):
                fresh = []
                for opened, conn in idle:
                    if now - opened < self.max_age:
                        fresh.append((opened, conn))
                    else:
                        stale.append(conn)
                if fresh:
                    self._idle[key] = fresh
                else:
                    del self._idle[key]
        for conn in stale:
            conn.close()
        return len(stale)

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            for idle in self._idle.values():
                for _, conn in idle:
                    conn.close()
            self._idle.clear()


def check_destination(url: str, allowed: Sequence[IpNetwork], https_required: bool) -> None:
    """Refuse a URL whose form, or any address its host resolves to now, is not allowed."""
    scheme, host, port = check_url(url, https_required)
    GuardedTransport(allowed, https_required).resolve(host, port)
