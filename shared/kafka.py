"""Kafka clients configured the one way Kinship uses them (kafka-python 3.x)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner import DefaultPartitioner

from shared.events.catalog import UNORDERED_TOPICS

log = logging.getLogger(__name__)


class SpreadPartitioner(DefaultPartitioner):  # type: ignore[misc]  # untyped library
    """Kafka's default (murmur2 of the key), except on work topics whose records carry no order
    among themselves and whose keys end in ``:<sequence number>``: those go round-robin by that
    number. A hash spreads 100 dispatch batches over 12 partitions as 1 to 13 a partition (one
    sender thread then got 45 batches and its neighbours 27 and 28, and finished alone);
    round-robin gives each partition 8 or 9."""

    def __init__(self, spread_topics: Iterable[str]) -> None:
        self.spread_topics = frozenset(spread_topics)

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        if topic in self.spread_topics and serialized_key and topic in cluster.topics():
            _, colon, number = serialized_key.rpartition(b":")
            if colon and number.isdigit():
                partitions = sorted(cluster.partitions_for_topic(topic))
                return int(partitions[int(number) % len(partitions)])
        return int(super().partition(topic, key, serialized_key, value, serialized_value, cluster))


def make_producer(bootstrap: str, client_id: str, **overrides: Any) -> KafkaProducer:
    """Create an idempotent producer (acks=all) that batches for throughput."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "enable_idempotence": True,
        "acks": "all",
        # Idempotence keeps order with up to 5 requests in flight per connection.
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        "delivery_timeout_ms": 60_000,
        "request_timeout_ms": 15_000,
        "max_block_ms": 30_000,
        # Alert batches (keyed <alert id>:<sequence>) spread evenly over the sender threads.
        "partitioner": SpreadPartitioner(UNORDERED_TOPICS),
    }
    config.update(overrides)
    return KafkaProducer(**config)


def make_consumer(bootstrap: str, group: str, client_id: str, **overrides: Any) -> KafkaConsumer:
    """Create a consumer that never commits by itself."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 1000,
        "max_poll_interval_ms": 300_000,
        "session_timeout_ms": 15_000,
        "heartbeat_interval_ms": 3_000,
        "fetch_max_wait_ms": 500,
        "isolation_level": "read_committed",
    }
    config.update(overrides)
    return KafkaConsumer(**config)


def ensure_topics(
    bootstrap: str, topics: Iterable[str], partitions: int = 3, replication_factor: int = 1
) -> None:
    """Create the topics that do not exist yet (idempotent; safe from several processes)."""
    wanted = sorted(set(topics))
    with KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kinship-admin") as admin:
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return
        spec = {
            name: {"num_partitions": partitions, "replication_factor": replication_factor}
            for name in missing
        }
        try:
            admin.create_topics(spec, raise_errors=False)
        except TopicAlreadyExistsError:
            pass
        admin.wait_for_topics(missing, timeout_ms=30_000)
        log.info("kafka topics created", extra={"topics": missing})


def retry_topic(topic: str, group: str) -> str:
    return f"{topic}.{group}.retry"


def dead_letter_topic(topic: str, group: str) -> str:
    return f"{topic}.{group}.dlq"
