"""python -m services.campaigns.worker: outbox relay, consumer and alert scheduler."""

from __future__ import annotations

import logging

from services.campaigns import store
from services.campaigns.bootstrap import Deps, build
from services.campaigns.handlers import HANDLERS, TOPICS
from services.campaigns.scheduler import AlertScheduler
from shared.config import Settings
from shared.events.catalog import CAMPAIGNS
from shared.kafka import ensure_topics
from shared.migrate import await_schema
from shared.service import start_logging, worker_parts
from shared.worker import Stoppable, run_all

log = logging.getLogger(__name__)


def parts(deps: Deps) -> list[Stoppable]:
    """Return the worker's parts: relay, consumer and scheduler."""
    relay, runner = worker_parts(
        deps.settings,
        deps.engine,
        store.outbox_table,
        store.processed_table,
        TOPICS,
        HANDLERS,
    )
    return [relay, runner, AlertScheduler(deps)]


def ensure_own_topic(settings: Settings) -> None:
    """Create kinship.campaigns with the configured partitions before the relay writes to it."""
    try:
        ensure_topics(
            settings.kafka_bootstrap_servers,
            [CAMPAIGNS],
            settings.kafka_topic_partitions,
            settings.kafka_replication_factor,
        )
    except Exception as exc:  # noqa: BLE001 - the relay waits for Kafka by itself
        log.warning("campaigns topic not created yet", extra={"error": type(exc).__name__})


def main() -> None:
    deps = build()
    start_logging("campaigns-worker", deps.settings)
    await_schema("campaigns", deps.engine)
    ensure_own_topic(deps.settings)
    run_all(parts(deps), metrics_port=deps.settings.worker_metrics_port)


if __name__ == "__main__":
    main()
