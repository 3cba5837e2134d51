"""A consumer runner whose last asynchronous commit was lost commits its place again."""

from __future__ import annotations

from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError
from sqlalchemy import MetaData, create_engine

from shared.consumer import ConsumerRunner
from shared.events.catalog import CATALOG
from shared.outbox import processed_table

OWNED, GONE = TopicPartition("kinship.campaigns", 0), TopicPartition("kinship.campaigns", 1)


class StubConsumer:
    """The few consumer calls an idle poll makes; records what is committed."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    def poll(self, **_: Any) -> dict[Any, Any]:
        return {}

    def assignment(self) -> set[TopicPartition]:
        return {OWNED}

    def commit_async(self, offsets: dict[TopicPartition, Any], callback: Any = None) -> None:
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})


def test_an_idle_poll_commits_again_the_owned_places_a_lost_commit_left_behind() -> None:
    metadata = MetaData()
    processed = processed_table(metadata)
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    runner = ConsumerRunner(
        engine=engine,
        processed=processed,
        registry=CATALOG,
        group="g",
        topics=["kinship.campaigns"],
        handlers={},
        bootstrap="127.0.0.1:1",
    )
    consumer = StubConsumer()
    runner._consumer = consumer  # type: ignore[assignment]
    runner._committed = {OWNED: 5, GONE: 7}

    runner.poll_once()
    assert consumer.commits == []  # nothing was lost: an idle poll commits nothing

    runner._commit_answered({OWNED: 5}, KafkaError("coordinator moved"))
    runner.poll_once()
    assert consumer.commits == [{OWNED: 5}]  # not the partition it no longer owns

    runner.poll_once()
    assert consumer.commits == [{OWNED: 5}]  # once; a new loss would set it again
