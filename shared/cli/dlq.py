"""`kinship dlq list|redrive`: see the events a consumer group gave up on, and send them again.

A dead-lettered `signature.created` is a signer never thanked and missing from the audience
until someone acts. Once the cause is fixed (a deploy, a setting), `redrive` publishes each
dead letter back onto the topic it first arrived on, with its key, value and CloudEvents
headers as they were. Every consumer group of that topic reads it again; those that handled it
already skip it (they record each event id), the one that failed handles it now. Progress is a
consumer group of its own per dead-letter topic, so each dead letter is redriven once.

Listing shows what an operator needs to decide, never the event's data: it holds personal
details (a signer's address), which stay in Kafka.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click

from shared.consumer import (
    H_ERROR,
    H_ERROR_CLASS,
    H_FAILED_AT,
    H_ORIGIN_OFFSET,
    H_ORIGIN_TOPIC,
)

DLQ_SUFFIX = ".dlq"
REDRIVE_GROUP = "kinship-redrive."
# Headers the consumer added on the way to the dead-letter topic: not carried back.
OWN_PREFIX = "kinship_"


def _bootstrap() -> str:
    """The Kafka to read, as `kinship dev up` chose it: KAFKA_BOOTSTRAP_SERVERS, else the one
    the running stack recorded, else the local broker (KAFKA_PORT, 9092). Refused at once,
    naming it, when nothing answers there (the client waited 30 s, then gave a traceback)."""
    from shared.cli.main import local_kafka
    from shared.config import env_str, var_dir
    from shared.devstack import read_stack_state
    from shared.local_kafka import port_is_open

    recorded = read_stack_state(var_dir()).get("kafka_bootstrap")
    bootstrap = (
        env_str("KAFKA_BOOTSTRAP_SERVERS", "")
        or (recorded if isinstance(recorded, str) else "")
        or local_kafka().bootstrap
    )

    def answers(server: str) -> bool:
        host, _, port = server.strip().rpartition(":")
        return port.isdigit() and port_is_open(host.strip("[]") or "127.0.0.1", int(port))

    if not any(answers(server) for server in bootstrap.split(",")):
        click.echo(
            f"kinship dlq: no Kafka answers at {bootstrap}; start the stack (kinship dev up)"
            " or set KAFKA_BOOTSTRAP_SERVERS",
            err=True,
        )
        sys.exit(1)
    return bootstrap


def dead_letter_topics(bootstrap: str) -> list[str]:
    from shared.kafka import make_admin

    with make_admin(bootstrap, "kinship-dlq") as admin:
        return sorted(t for t in admin.list_topics() if t.endswith(DLQ_SUFFIX))


def _records(bootstrap: str, topic: str, group: str | None) -> Iterator[tuple[Any, Any]]:
    """Yield (consumer, record) for a dead-letter topic's records, a partition at a time, from
    the group's position when given (else from the start), stopping at the end; with a group
    the caller commits what it has dealt with."""
    from kafka import TopicPartition

    from shared.kafka import make_consumer

    consumer = make_consumer(bootstrap, group or "kinship-dlq-list", "kinship-dlq")
    try:
        for number in sorted(consumer.partitions_for_topic(topic) or ()):
            tp = TopicPartition(topic, number)
            consumer.assign([tp])
            if group is None:
                consumer.seek_to_beginning(tp)
            end = consumer.end_offsets([tp])[tp]
            while consumer.position(tp) < end:
                batch = consumer.poll(timeout_ms=2000, max_records=500).get(tp, [])
                if not batch:
                    break
                for record in batch:
                    if record.offset < end:
                        yield consumer, record
    finally:
        consumer.close()


def _count(bootstrap: str, topic: str) -> int:
    """How many records a topic holds, from its partitions' offsets (none is read)."""
    from kafka import TopicPartition

    from shared.kafka import make_consumer

    consumer = make_consumer(bootstrap, "kinship-dlq-list", "kinship-dlq")
    try:
        partitions = [
            TopicPartition(topic, n) for n in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        first, end = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
        return sum(end[tp] - first[tp] for tp in partitions)
    finally:
        consumer.close()


def _header(record: Any, name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value or b"").decode("utf-8", errors="replace")
    return ""


@click.group()
def dlq() -> None:
    """Events a consumer group gave up on: list them, send them again once the cause is fixed."""


@dlq.command("list")
@click.argument("topic", required=False)
def dlq_list(topic: str | None) -> None:
    """Each dead-letter topic's count, or one topic's dead letters: type, event id, error,
    when (never the event's data)."""
    bootstrap = _bootstrap()
    topics = dead_letter_topics(bootstrap)
    if topic is None:
        for name in topics:
            click.echo(f"{name}\t{_count(bootstrap, name)}")
        return
    if topic not in topics:
        click.echo(f"kinship dlq list: no dead-letter topic {topic}", err=True)
        sys.exit(1)
    for _, record in _records(bootstrap, topic, None):
        origin = f"{_header(record, H_ORIGIN_TOPIC)}@{_header(record, H_ORIGIN_OFFSET)}"
        click.echo(
            "\t".join(
                [
                    f"{record.partition}:{record.offset}",
                    _header(record, "ce_type"),
                    _header(record, "ce_id"),
                    _header(record, H_ERROR_CLASS),
                    _header(record, H_FAILED_AT),
                    origin,
                    _header(record, H_ERROR)[:120],
                ]
            )
        )


@dlq.command("redrive")
@click.argument("topic")
def dlq_redrive(topic: str) -> None:
    """Publish each dead letter of TOPIC not redriven yet back onto its origin topic, as it
    first arrived (key, value, CloudEvents headers); consumers that handled it skip it."""
    from kafka import OffsetAndMetadata, TopicPartition

    from shared.kafka import make_producer

    bootstrap = _bootstrap()
    if topic not in dead_letter_topics(bootstrap):
        click.echo(f"kinship dlq redrive: no dead-letter topic {topic}", err=True)
        sys.exit(1)
    producer = make_producer(bootstrap, "kinship-dlq-redrive")
    sent = skipped = 0
    try:
        for consumer, record in _records(bootstrap, topic, REDRIVE_GROUP + topic):
            origin = _header(record, H_ORIGIN_TOPIC)
            # A stub's value is empty (b"", not None): sent back, every group on the topic
            # would dead-letter it again, and the count would say the event was recovered.
            if origin and record.value:
                headers = [(k, v) for k, v in record.headers or () if not k.startswith(OWN_PREFIX)]
                producer.send(origin, key=record.key, value=record.value, headers=headers).get(
                    timeout=30
                )
                sent += 1
            else:  # a stub without its value (refused by the broker as too large): nothing to send
                skipped += 1
            done = TopicPartition(record.topic, record.partition)
            consumer.commit({done: OffsetAndMetadata(record.offset + 1, "", -1)})
    finally:
        producer.close()
    click.echo(f"{topic}: {sent} redriven, {skipped} without a value to send")
