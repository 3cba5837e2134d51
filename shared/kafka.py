"""Kafka clients configured the one way Kinship uses them (kafka-python 3.x)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeGuard

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import (
    InvalidRecordError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAlreadyExistsError,
)
from kafka.partitioner import DefaultPartitioner

from shared.config import env_str
from shared.events.catalog import UNORDERED_TOPICS

log = logging.getLogger(__name__)


# What the broker says of one record that no retry can change (none of these is `retriable`).
REFUSED = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidTopicError, InvalidRecordError)
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)
# A dead letter sent without its value (the size refused) says how large the value was.
H_VALUE_BYTES = "kinship_value_bytes"


def refused(exc: BaseException | None) -> TypeGuard[BaseException]:
    """Return whether the broker refused a record for good (no retry can change it)."""
    return isinstance(exc, REFUSED) and not getattr(exc, "retriable", False)


def close_quietly(producer: KafkaProducer | None) -> None:
    """Close a producer a refusal may have left broken; a fresh one gets a new producer id, so
    no half-failed sequence state survives."""
    if producer is not None:
        try:
            producer.close(timeout=5)
        except Exception:  # noqa: BLE001 - closing a broken producer must not mask the cause
            log.debug("closing a failed producer raised", exc_info=True)


def keep_response_classes() -> None:
    """Keep every response class kafka-python registers alive (idempotent).

    kafka-python 3.0.12 finds the class that parses a response through a registry of weak
    proxies, and registers each versioned class too (ProduceResponse_v9) when it makes one, on
    first use. Two threads making the same one at once each register theirs, and only one is
    kept (in the primary class's _VERSIONS): when the registry's proxy is the other's, it dies
    at the next garbage collection, and from then on every response of that API fails to parse
    (ReferenceError in the client's IO thread, then request timeouts): the client is stuck for
    good. The fault test's workers hung that way. A strong reference to the class last
    registered for each API keeps the registry's proxy alive (docs/runtime-facts.md)."""
    from kafka.protocol import api_header

    registry = api_header.ResponseClassRegistry
    if getattr(registry, "_kinship_keeps", None) is not None:
        return
    register = registry.register_response_class.__func__
    kept: dict[int, type] = {}
    lock = threading.Lock()

    def keeping(cls: type, response_class: Any) -> None:
        with lock:  # the registry's entry and the class kept for it stay the same one
            kept[response_class.API_KEY] = response_class.mro()[0]
            register(cls, response_class)

    registry._kinship_keeps = kept
    registry.register_response_class = classmethod(keeping)


keep_response_classes()


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


PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def security_options() -> dict[str, Any]:
    """How every Kafka client of a process connects: TLS and SASL as the cluster asks, from
    KAFKA_SECURITY_PROTOCOL (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), KAFKA_SASL_MECHANISM
    (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and
    KAFKA_SSL_CAFILE (the cluster's CA, when not one the system trusts). Managed clusters
    (Confluent Cloud, MSK, Aiven) take only SASL_SSL; signers' details are in the events."""
    protocol = env_str("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise ValueError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}")
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        cafile = env_str("KAFKA_SSL_CAFILE", "")
        if cafile:
            options["ssl_cafile"] = cafile
    if protocol.startswith("SASL_"):
        mechanism = env_str("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper()
        if mechanism not in SASL_MECHANISMS:
            raise ValueError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}")
        username = env_str("KAFKA_SASL_USERNAME", "")
        password = env_str("KAFKA_SASL_PASSWORD", "")
        if not (username and password):
            raise ValueError(f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        options.update(
            sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password
        )
    return options


def make_admin(
    bootstrap: str, client_id: str, security: Mapping[str, Any] | None = None, **overrides: Any
) -> KafkaAdminClient:
    """Create an admin client that connects as the process's other clients do (or as
    security says: the local broker, which is plaintext whatever the environment)."""
    options = security_options() if security is None else dict(security)
    options.update(overrides)
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id, **options)


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
        **security_options(),
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
        **security_options(),
    }
    config.update(overrides)
    return KafkaConsumer(**config)


class ConsumerSpinning(Exception):
    """A consumer's empty polls kept the CPU busy instead of waiting (see SpinGuard)."""


class SpinGuard:
    """Tells a consumer that waits for records from one that spins.

    kafka-python 3.0.12 sometimes leaves a group member in its REBALANCING state with no
    heartbeat ever sent. Its time to the next poll is then 0, so each poll() waits 0 ms and
    loops until its timeout: an idle sender process burned 60-90 % of a core that way, for its
    whole life (docs/runtime-facts.md). An idle poll spends well under 1 % of its time on the
    CPU. When the empty polls of `window` seconds spent more than `share` of it, poll() raises
    ConsumerSpinning: the caller closes that consumer and makes a new one, which joins anew.
    """

    def __init__(self, window: float = 5.0, share: float = 0.2) -> None:
        self.window = window
        self.share = share
        self._wall = self._cpu = 0.0

    def poll(self, poll: Callable[..., dict[Any, Any]], **kwargs: Any) -> dict[Any, Any]:
        """poll(**kwargs) (a consumer's poll), timed; raise ConsumerSpinning as described above."""
        wall, cpu = time.perf_counter(), time.thread_time()
        records = poll(**kwargs)
        if records:
            self._wall = self._cpu = 0.0
            return records
        self._wall += time.perf_counter() - wall
        self._cpu += time.thread_time() - cpu
        if self._wall >= self.window:
            busy = self._cpu / self._wall
            self._wall = self._cpu = 0.0
            if busy > self.share:
                raise ConsumerSpinning(f"empty polls kept {busy:.0%} of a core busy")
        return records


# Kafka deletes a segment whole once its newest record is past retention, and rolls one after a
# week by default: a signer's details in signature.created (and in a retry or dead-letter copy)
# would outlive an erasure by retention plus up to a week. Rolled daily, on any cluster, by
# at most a day (docs/architecture.md).
TOPIC_CONFIGS = {"segment.ms": str(24 * 3600 * 1000)}


def ensure_topics(
    bootstrap: str, topics: Iterable[str], partitions: int = 3, replication_factor: int = 1
) -> None:
    """Create the topics that do not exist yet (idempotent; safe from several processes)."""
    wanted = sorted(set(topics))
    with make_admin(bootstrap, "kinship-admin") as admin:
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return
        spec = {
            name: {
                "num_partitions": partitions,
                "replication_factor": replication_factor,
                "configs": TOPIC_CONFIGS,
            }
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
