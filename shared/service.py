"""What every service is made of: the Flask app shell and the worker parts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet

from flask import Flask
from sqlalchemy import Engine, Table

from shared.config import Settings
from shared.consumer import ConsumerRunner, Handler, RetryPolicy
from shared.db import database_ready
from shared.events.catalog import CATALOG
from shared.kafka import make_producer
from shared.local_kafka import broker_answers
from shared.logging import configure_logging
from shared.migrate import migrations_of, schema_check
from shared.relay import OutboxRelay
from shared.web import CachedCheck, KinshipApi, create_api, health_blueprint, instrument

log = logging.getLogger(__name__)


def start_logging(name: str, settings: Settings) -> None:
    """Configure a process's logging, then say what in its settings looks like a mistake."""
    configure_logging(name, settings.log_level)
    for warning in settings.production_warnings():
        log.warning("setting looks wrong for production", extra={"problem": warning})


MAX_REQUEST_BYTES = 2 * 1024 * 1024


def app_shell(
    name: str, settings: Settings, engine: Engine, description: str = ""
) -> tuple[Flask, KinshipApi]:
    """Create a service's Flask app with its API docs, error shape, health and metrics."""
    start_logging(name, settings)
    app = Flask(f"services.{name}")
    app.config["KINSHIP_SETTINGS"] = settings
    # No request of any service comes near this (SendGrid's event batches included); without a
    # cap, an anonymous POST of gigabytes would be read whole into a worker's memory.
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    api = create_api(app, f"Kinship {name} API", description)
    checks = {
        "database": CachedCheck(lambda: database_ready(engine), ttl=1.0),
        "kafka": CachedCheck(lambda: broker_answers(settings.kafka_bootstrap_servers), ttl=5.0),
    }
    if migrations_of(name).is_dir():  # a service's own (a test's stand-in has none)
        checks["schema"] = CachedCheck(schema_check(name, engine), ttl=1.0)
    app.register_blueprint(health_blueprint(name, checks))
    instrument(app, name)
    return app, api


def worker_parts(
    settings: Settings,
    engine: Engine,
    outbox: Table,
    processed: Table,
    topics: Sequence[str],
    handlers: Mapping[str, Sequence[Handler]],
    group: str | None = None,
    on_commit: Callable[[AbstractSet[str]], None] | None = None,
) -> tuple[OutboxRelay, ConsumerRunner]:
    """Return a service's outbox relay and consumer runner, configured from settings."""
    bootstrap = settings.kafka_bootstrap_servers
    relay = OutboxRelay(
        engine,
        outbox,
        lambda: make_producer(bootstrap, f"{settings.service}-relay"),
        batch_size=settings.relay_batch_size,
    )
    runner = ConsumerRunner(
        engine=engine,
        processed=processed,
        registry=CATALOG,
        group=group or settings.service,
        topics=topics,
        handlers=handlers,
        bootstrap=bootstrap,
        retry=RetryPolicy(max_attempts=settings.consumer_max_attempts),
        partitions=settings.kafka_topic_partitions,
        replication_factor=settings.kafka_replication_factor,
        on_commit=on_commit,
    )
    return relay, runner
