"""Build the campaigns service's dependencies from settings; nothing connects until used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from services.campaigns import store
from services.campaigns.events import SOURCE
from shared.auth import KeyVerifier
from shared.config import Settings, env_str
from shared.db import make_engine
from shared.events.catalog import CATALOG
from shared.events.envelope import utcnow
from shared.outbox import Outbox
from shared.ratelimit import RateLimits

# An alert's test send goes to the lead's contact address, which its organizers set: few a
# day, so a stolen key cannot make a mailer of it (services/campaigns/README.md).
TEST_SEND_LIMITS = "5 per hour;20 per day"


def test_send_limits(settings: Settings) -> RateLimits:
    """Count test sends per organization (CAMPAIGNS_TEST_SEND_RATE_LIMITS), in the store the
    other limits use (RATELIMIT_STORAGE_URI: memory:// per process, redis:// shared)."""
    return RateLimits(
        env_str("CAMPAIGNS_TEST_SEND_RATE_LIMITS", TEST_SEND_LIMITS),
        env_str("RATELIMIT_STORAGE_URI", "memory://"),
        "alert-test",
        "Too many test sends for this organization",
        settings.hash_key,
    )


@dataclass
class Deps:
    """What the API, the worker and the CLI share: database, key verifier, outbox, clock."""

    settings: Settings
    engine: Engine
    verifier: KeyVerifier
    outbox: Outbox
    test_limits: RateLimits
    clock: Callable[[], datetime] = field(default=utcnow)


def build(settings: Settings | None = None, engine: Engine | None = None) -> Deps:
    """Wire the service from settings (the environment when none are given)."""
    settings = settings or Settings.from_env("campaigns")
    engine = engine or make_engine(settings.database_url)
    return Deps(
        settings=settings,
        engine=engine,
        # One second of cache: a revoked key is refused here within a second of revocation.
        verifier=KeyVerifier(engine, store.api_keys, ttl=1.0),
        outbox=Outbox(store.outbox_table, CATALOG, source=SOURCE),
        test_limits=test_send_limits(settings),
    )
