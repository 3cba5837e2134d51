"""Settings of partner webhook delivery (WEBHOOK_* in the environment)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.config import env_bool, env_float, env_int, env_str

# An attempt's whole time, in network-step timeouts (the transport's watchdog).
DEADLINE_STEPS = 3
# Standard Webhooks' recommended schedule: the delay before each retry, in seconds.
DEFAULT_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


def _schedule(raw: str) -> tuple[float, ...]:
    try:
        return tuple(float(delay) for delay in raw.split(","))
    except ValueError:
        raise ValueError(
            f"WEBHOOK_RETRY_SCHEDULE must be seconds separated by commas, got {raw!r}"
        ) from None


@dataclass(frozen=True)
class WebhookConfig:
    """How webhooks are delivered, retried, limited and kept safe."""

    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.2
    timeout: float = 15.0
    # An endpoint failing without a single success for this long is disabled.
    disable_after_seconds: float = 5 * 24 * 3600.0
    rotation_overlap_seconds: float = 24 * 3600.0
    # Networks a URL may resolve to even though they are not public (tests: 127.0.0.1/32).
    allowed_networks: tuple[str, ...] = ()
    # None: HTTPS required in production only.
    require_https: bool | None = None
    response_excerpt_bytes: int = 1024
    response_read_cap: int = 64 * 1024
    pool_size: int = 64
    per_endpoint_concurrency: int = 4
    # A failing endpoint is probed by one delivery at a time, so it holds at most one thread.
    failing_endpoint_concurrency: int = 1
    # Chunks in flight to one organization's endpoints, all together (None: a quarter of the
    # pool). Slow successes never mark an endpoint failing: without this, one partner's
    # endpoints answering just inside the deadline could hold every thread, and no other
    # organization's deliveries (deletion notices included) would start.
    per_organization_concurrency: int | None = None
    batch_per_endpoint: int = 25
    # A chunk's next message goes only after its endpoint is found unchanged (not deleted,
    # turned off or moved to another URL): the dispatcher reads every endpoint again this often
    # while chunks are in flight, so a partner who deletes an endpoint mid-chunk gets nothing
    # more there after about twice this and the request in flight.
    recheck_seconds: float = 0.25
    poll_interval: float = 0.05
    # An idle dispatcher looks less often, down to once per ceiling (shared.pacing.Pacer).
    poll_ceiling: float = 1.0
    # None: longer than the slowest chunk can take (see claim_lease). A claim older than its
    # lease is taken for a crashed dispatcher's, and its messages are handed out again.
    claim_lease_seconds: float | None = None
    connection_max_age: float = 60.0
    # Delivered and failed messages (their bodies carry signers' details, their attempts the
    # partners' answers) are deleted this long after they finished: a failed one can be
    # recovered until then.
    retention_seconds: float = 30 * 86400.0

    @classmethod
    def from_env(cls) -> WebhookConfig:
        """Read WEBHOOK_* settings."""
        d = cls()
        nets = env_str("WEBHOOK_ALLOWED_NETWORKS", "")
        https = env_str("WEBHOOK_REQUIRE_HTTPS", "")
        schedule = env_str("WEBHOOK_RETRY_SCHEDULE", "")
        return cls(
            schedule=_schedule(schedule) if schedule else d.schedule,
            jitter=env_float("WEBHOOK_JITTER", d.jitter),
            timeout=env_float("WEBHOOK_TIMEOUT", d.timeout),
            disable_after_seconds=env_float(
                "WEBHOOK_DISABLE_AFTER_SECONDS", d.disable_after_seconds
            ),
            allowed_networks=tuple(n.strip() for n in nets.split(",") if n.strip()),
            # Unset: what KINSHIP_ENV implies; "ture" is refused, not read as false.
            require_https=env_bool("WEBHOOK_REQUIRE_HTTPS", False) if https else None,
            pool_size=env_int("WEBHOOK_POOL_SIZE", d.pool_size),
            per_endpoint_concurrency=env_int(
                "WEBHOOK_PER_ENDPOINT_CONCURRENCY", d.per_endpoint_concurrency
            ),
            per_organization_concurrency=(
                env_int("WEBHOOK_PER_ORGANIZATION_CONCURRENCY", 0) or None
            ),
            retention_seconds=env_float("WEBHOOK_RETENTION_DAYS", 30.0) * 86400.0,
        )

    def organization_concurrency(self) -> int:
        """Return how many chunks may be in flight to one organization's endpoints at once."""
        if self.per_organization_concurrency is not None:
            return self.per_organization_concurrency
        return max(self.per_endpoint_concurrency, self.pool_size // 4)

    def claim_lease(self) -> float:
        """Return how long a claimed chunk is left to its dispatcher: every one of its
        messages answered just inside the attempt's deadline and a minute to record them,
        after waiting in the pool's queue for up to a quarter of the lease (a chunk that
        waited longer claims its rows anew, Dispatcher._still_ours)."""
        if self.claim_lease_seconds is not None:
            return self.claim_lease_seconds
        return (self.batch_per_endpoint * DEADLINE_STEPS * self.timeout + 60.0) * 4 / 3

    def https_required(self, production: bool) -> bool:
        """Return whether endpoint URLs must use HTTPS."""
        return production if self.require_https is None else self.require_https

    def with_(self, **changes: object) -> WebhookConfig:
        """Return a copy with some fields changed (tests)."""
        return replace(self, **changes)  # type: ignore[arg-type]
