"""Where records land on real Kafka: alert batches round-robin, everything else by key hash."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.partitioner.default import murmur2

from shared.events.catalog import DISPATCH_TOPICS
from shared.kafka import ensure_topics, make_admin, make_producer
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration


def test_alert_batches_spread_evenly_and_other_topics_keep_key_hashing(
    kafka_bootstrap: str,
) -> None:
    dispatch = DISPATCH_TOPICS["email"]
    alert = f"alert-{uuid.uuid4().hex[:8]}"
    other = f"test.partitions.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [dispatch, other], 6)
    producer = make_producer(kafka_bootstrap, "test-partitions")
    try:
        partitions = len(producer.partitions_for(dispatch))
        keys = [f"{alert}:{seq}" for seq in range(10 * partitions)]
        for key in keys:
            producer.send(dispatch, key=key.encode(), value=b"{}")
            producer.send(other, key=key.encode(), value=b"{}")
        producer.flush(timeout=30)
    finally:
        producer.close()

    batches = [r for r in read_all(kafka_bootstrap, dispatch) if r.key.startswith(alert.encode())]
    assert len(batches) == len(keys)
    # Each partition holds exactly its tenth, in sequence order: seq % partitions.
    assert Counter(r.partition for r in batches) == {p: 10 for p in range(partitions)}
    assert all(r.partition == int(r.key.rpartition(b":")[2]) % partitions for r in batches)
    # A topic not listed keeps Kafka's default: murmur2 of the key, as every client computes it.
    plain = read_all(kafka_bootstrap, other, expected=len(keys))
    assert len(plain) == len(keys)
    assert all(r.partition == (murmur2(r.key) & 0x7FFFFFFF) % 6 for r in plain)


def test_topics_roll_a_segment_a_day_whatever_the_cluster_default(kafka_bootstrap: str) -> None:
    """A segment is deleted whole once its newest record is past retention: rolled daily, an
    erased signer's details in an event outlive the erasure by at most retention plus a day."""
    topic = f"test.segments.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [topic], 1)
    with make_admin(kafka_bootstrap, "test-segments") as admin:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    assert described["topic"][topic]["segment.ms"]["value"] == str(24 * 3600 * 1000)
