"""Signing's per-address limits: a clear 429, and no client address kept in the limits' store."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import TooManyRequests

from shared.ratelimit import RateLimits


def test_an_address_over_its_limit_gets_429_and_others_go_on() -> None:
    limits = RateLimits("2 per minute", "memory://", "sign", "Too many", hash_key="k")
    limits.hit("203.0.113.7")
    limits.hit("203.0.113.7")
    with pytest.raises(TooManyRequests) as refused:
        limits.hit("203.0.113.7")
    assert refused.value.retry_after is not None and 1 <= int(refused.value.retry_after) <= 60
    limits.hit("198.51.100.4")  # another client has its own allowance


def test_the_store_counts_a_keyed_hash_never_the_address() -> None:
    """With Redis configured, every key would sit in a shared store for a window's length."""
    limits = RateLimits("5 per second;100 per minute", "memory://", "sign", "x", hash_key="k")
    limits.hit("203.0.113.7")
    stored = list(limits.window.storage.storage)  # type: ignore[attr-defined]
    assert len(stored) == 2
    assert not any("203.0.113" in key for key in stored)
    other_key = RateLimits("5 per second", "memory://", "sign", "x", hash_key="other")
    other_key.hit("203.0.113.7")
    assert set(other_key.window.storage.storage).isdisjoint(stored)  # type: ignore[attr-defined]


def test_an_ipv6_client_is_counted_by_its_64_not_by_each_address() -> None:
    """Any IPv6 client can send from 2**64 addresses of its /64: one each would be no limit."""
    limits = RateLimits("2 per minute", "memory://", "sign", "Too many", hash_key="k")
    limits.hit("2001:db8:1:2::1")
    limits.hit("2001:db8:1:2:ffff:ffff:ffff:fffe")
    with pytest.raises(TooManyRequests):
        limits.hit("2001:db8:1:2:abcd::7")
    limits.hit("2001:db8:1:3::1")  # the next /64 is someone else
    # An IPv4 client reaching a dual-stack socket is still counted by its own address.
    limits.hit("::ffff:203.0.113.7")
    limits.hit("203.0.113.7")
    with pytest.raises(TooManyRequests):
        limits.hit("::ffff:203.0.113.7")
