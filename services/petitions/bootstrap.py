"""Build the petitions service's dependencies from settings; nothing connects at import time."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine

from services.petitions import store
from services.petitions.groupcommit import GroupCommit
from shared.auth import KeyVerifier
from shared.cache import TtlCache
from shared.config import Settings, env_int, env_str
from shared.db import make_engine
from shared.events.catalog import CATALOG
from shared.outbox import Outbox

SOURCE = "/services/petitions"


@dataclass(frozen=True)
class PetitionsConfig:
    """The settings only this service reads (PETITIONS_* in the environment)."""

    # Per client IP: a burst limit and a sustained one (flask-limiter notation, ';'-separated).
    sign_limits: str = "10 per second;120 per minute"
    # Per API key: a leaked key (or a runaway script) pulling every list over and over.
    export_limits: str = "30 per hour"
    # memory:// counts per gunicorn worker process (so N workers allow N times the limit);
    # a shared store such as redis://host:6379 makes the limits exact across processes and hosts.
    ratelimit_storage_uri: str = "memory://"
    # Reverse proxies in front of the service whose X-Forwarded-For is trusted (0: none).
    proxy_hops: int = 0
    counter_shards: int = 16
    confirm_ttl_hours: int = 72
    idempotency_ttl_hours: int = 24
    pool_size: int = 5

    @classmethod
    def from_env(cls) -> PetitionsConfig:
        """Read PETITIONS_* variables (RATELIMIT_STORAGE_URI is honoured as is)."""
        defaults = cls()
        return cls(
            sign_limits=env_str("PETITIONS_SIGN_RATE_LIMITS", defaults.sign_limits),
            export_limits=env_str("PETITIONS_EXPORT_RATE_LIMITS", defaults.export_limits),
            ratelimit_storage_uri=env_str("RATELIMIT_STORAGE_URI", defaults.ratelimit_storage_uri),
            proxy_hops=env_int("PETITIONS_PROXY_HOPS", defaults.proxy_hops),
            counter_shards=env_int("PETITIONS_COUNTER_SHARDS", defaults.counter_shards),
            confirm_ttl_hours=env_int("PETITIONS_CONFIRM_TTL_HOURS", defaults.confirm_ttl_hours),
            idempotency_ttl_hours=env_int(
                "PETITIONS_IDEMPOTENCY_TTL_HOURS", defaults.idempotency_ttl_hours
            ),
            pool_size=env_int("PETITIONS_DB_POOL_SIZE", defaults.pool_size),
        )

    def with_(self, **changes: object) -> PetitionsConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Deps:
    """Everything the app and the worker use, built once per process."""

    settings: Settings
    config: PetitionsConfig
    engine: Engine
    outbox: Outbox
    verifier: KeyVerifier
    # Campaign id -> (Coalition, status); a few seconds stale at most, off the signing hot path.
    coalitions: TtlCache[str, Any] = field(default_factory=lambda: TtlCache(ttl=5.0))
    # Petition id -> OpenPetition. An open petition's languages can change (a translation
    # added after launch): this process forgets one it changed at once (edit_petition), the
    # others within seconds; one row read every few seconds costs signing nothing.
    open_petitions: TtlCache[str, Any] = field(default_factory=lambda: TtlCache(ttl=5.0))
    # Concurrent signatures of this process share transactions (threaded workers).
    group_commit: GroupCommit[Any] = field(default_factory=GroupCommit)

    def confirm_url(self, token: str) -> str:
        return f"{self.settings.public_base_url}/api/v1/confirmations/{token}"


def build(settings: Settings | None = None, config: PetitionsConfig | None = None) -> Deps:
    """Wire the service from settings (the environment when not given)."""
    settings = settings or Settings.from_env("petitions")
    config = config or PetitionsConfig.from_env()
    engine = make_engine(settings.database_url, pool_size=config.pool_size)
    return Deps(
        settings=settings,
        config=config,
        engine=engine,
        outbox=Outbox(store.outbox, CATALOG, source=SOURCE),
        verifier=KeyVerifier(engine, store.api_keys),
    )
