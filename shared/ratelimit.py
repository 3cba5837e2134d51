"""Rate limits counted by the `limits` library: per client address (signing), per API key
(petitions' exports), per organization (campaigns' alert test sends).

flask-limiter (the Flask extension over `limits`) ran its before_request pass on every request,
resolved the route's limits, and injected headers: 15 % of a signature's CPU on the hottest
path (services/petitions/README.md). Signing has one pair of limits keyed by one thing, so the
route checks them here directly, on the same `limits` storage and fixed-window strategy.

A client's address is personal data, and a shared store (Redis) would hold it for as long as a
window lasts: the limits count a keyed hash of what they count instead.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from typing import Any

from limits import parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from shared.privacy import keyed_hash

SCHEME = "kinship-memory"


class LeanMemoryStorage(MemoryStorage):
    """limits' memory storage, sweeping expired keys inline at most once a second.

    The stock storage starts a new timer thread 10 ms after the last one ended, so under load
    nearly every request paid for a thread start: a quarter of a signature's CPU. Expiry is
    still exact (every read checks its key's deadline); the sweep only bounds memory.
    """

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - overrides a private hook
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + 1.0
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._sweep_lock.release()


def storage_uri(configured: str) -> str:
    """Use the lean storage for the in-memory choice; any shared store (redis://…) as given."""
    return f"{SCHEME}://" if configured.startswith("memory://") else configured


def client_network(address: str) -> str:
    """Return what a limit counts for a client address: an IPv4 address itself, an IPv6 one's
    /64. An IPv6 client is given a whole /64 and may send from any of its 2**64 addresses, so
    counting single addresses would let it through every limit."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class RateLimits:
    """A set of limits ("10 per second;120 per minute") per client, each request counted once."""

    def __init__(
        self, limits_text: str, configured_storage: str, scope: str, message: str, hash_key: str
    ):
        self.items = parse_many(limits_text)
        self.window = FixedWindowRateLimiter(storage_from_string(storage_uri(configured_storage)))
        self.scope = scope
        self.message = message
        self.hash_key = hash_key

    def hit(self, client: str) -> None:
        """Count one request from client (an address, a key id, an organization id); raise a
        429 with Retry-After once any limit is passed.

        Every limit counts the request, as flask-limiter did, so a refused burst still uses up
        the sustained allowance.
        """
        key = keyed_hash(self.hash_key, "rate-limit", client_network(client))
        passed = [item for item in self.items if not self.window.hit(item, self.scope, key)]
        if passed:
            reset = max(self.window.get_window_stats(i, self.scope, key).reset_time for i in passed)
            retry_after = max(1, math.ceil(reset - time.time()))
            raise TooManyRequests(self.message, retry_after=retry_after)
