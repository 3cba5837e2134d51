"""Look at real Kafka from tests: end offsets, a group's lag, every record of a topic."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError


def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    with KafkaConsumer(bootstrap_servers=bootstrap, client_id="test-probe") as consumer:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return dict(consumer.end_offsets(tps)) if tps else {}


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Return how many records of topic the group has not committed past."""
    ends = end_offsets(bootstrap, topic)
    with KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-probe") as admin:
        committed = admin.list_group_offsets({group: list(ends)}).get(group, {})
    lag = 0
    for tp, end in ends.items():
        meta = committed.get(tp)
        offset = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag += max(end - offset, 0)
    return lag


def caught_up(bootstrap: str, group: str, topic: str) -> bool:
    """Whether the group has committed past every record of topic: a probe for `eventually`
    (a coordinator moving or loading, just after a broker restart, is "not yet")."""
    try:
        return group_lag(bootstrap, group, topic) == 0
    except KafkaError:
        return False


def wait_for_members(bootstrap: str, group: str, members: int, timeout: float = 60.0) -> None:
    """Wait until Kafka reports a consumer group Stable with this many members (joined and
    synced: each holds its assignment)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    with KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-probe") as admin:
        while time.monotonic() < deadline:
            try:
                seen = admin.describe_groups([group]).get(group, {})
            except KafkaError:  # the coordinator moving or loading: ask again
                seen = {}
            if seen.get("group_state") == "Stable" and len(seen.get("members", [])) == members:
                return
            time.sleep(0.1)
    raise AssertionError(f"group {group} never had {members} stable members: {seen}")


def read_all(
    bootstrap: str, topic: str, expected: int | None = None, timeout: float = 60.0
) -> list[Any]:
    """Read a topic from the beginning until expected records (or its end) have been seen.

    The reader assigns itself every partition rather than joining a consumer group: a group's
    join can take longer than the test waits on a loaded broker (seen once in CI, where a
    reader got nothing in 60 s from a topic holding both records it waited for).
    """
    wanted = expected if expected is not None else sum(end_offsets(bootstrap, topic).values())
    records: list[Any] = []
    with KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        client_id="test-reader",
        # The topic may be created after the reader starts (a sender makes its dead-letter
        # topic when it starts): without this it would not look again for five minutes.
        metadata_max_age_ms=500,
    ) as consumer:
        deadline = time.monotonic() + timeout
        while len(records) < wanted and time.monotonic() < deadline:
            partitions = {TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)}
            if not partitions:
                time.sleep(0.2)
                continue
            if partitions != consumer.assignment():
                consumer.assign(sorted(partitions))
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    return records


def headers_of(record: Any) -> dict[str, str]:
    return {k: bytes(v).decode(errors="replace") for k, v in record.headers or ()}


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """Return the group's committed offset of each partition of topic that has one."""
    tps = list(end_offsets(bootstrap, topic))
    with KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-probe") as admin:
        committed = admin.list_group_offsets({group: tps}).get(group, {})
    return {tp.partition: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
