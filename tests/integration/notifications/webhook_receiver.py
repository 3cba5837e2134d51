"""A real HTTP webhook receiver on loopback that verifies Standard Webhooks signatures."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: str
    at: float

    @property
    def message_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)

    def verifies(self, secret: str) -> bool:
        """Return whether the standard verifier accepts this request under a secret."""
        try:
            Webhook(secret).verify(self.body, self.headers)
        except WebhookVerificationError:
            return False
        return True


class Receiver:
    """Answers with programmed replies (default 200), records every request."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: deque[tuple[int, dict[str, str], bytes]] = deque()
        self.default: tuple[int, dict[str, str], bytes] = (200, {}, b'{"ok":true}')
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def answer(self, status: int, times: int = 1, headers: dict[str, str] | None = None,
               body: bytes = b"") -> None:  # fmt: skip
        """Answer the next `times` requests with this status."""
        for _ in range(times):
            self.replies.append((status, headers or {}, body))

    def ids(self) -> list[str]:
        with self.lock:
            return [r.message_id for r in self.received]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.received.append(Received(self.path, headers, body, time.time()))
                    reply = receiver.replies.popleft() if receiver.replies else receiver.default
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, extra, payload = reply
                try:
                    self.send_response(status)
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@contextmanager
def receivers(count: int = 1) -> Iterator[list[Receiver]]:
    """Start `count` receivers on loopback; stop them afterwards."""
    started = [Receiver() for _ in range(count)]
    for receiver in started:
        receiver.start()
    try:
        yield started
    finally:
        for receiver in started:
            receiver.stop()
