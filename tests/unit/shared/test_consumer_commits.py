"""The consumer runner's offsets, with stub consumers: a lost asynchronous commit is made
again, and records polled while the runner waits for the database are not skipped."""

from __future__ import annotations

from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaError
from sqlalchemy import MetaData, create_engine

from shared.consumer import ConsumerRunner, _Batch
from shared.events.catalog import CATALOG
from shared.outbox import processed_table

OWNED, GONE = TopicPartition("kinship.campaigns", 0), TopicPartition("kinship.campaigns", 1)
NEW = TopicPartition("kinship.campaigns", 2)


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


def test_offsets_of_partitions_given_away_are_never_committed() -> None:
    """The broker takes a commit for any partition of the group: a batch finished after a
    rebalance took its partition away, or the commit made when the runner stops, would rewind
    the new owner's progress."""
    runner = _runner()
    consumer = StubConsumer()
    consumer.commit = lambda offsets: consumer.commits.append(  # type: ignore[attr-defined]
        {tp: meta.offset for tp, meta in offsets.items()}
    )
    runner._consumer = consumer  # type: ignore[assignment]
    runner._committed = {OWNED: 5, GONE: 7}
    runner._commit({OWNED: 6, GONE: 9})  # a batch that spanned the rebalance
    runner._commit(dict(runner._committed), wait=True)  # the runner stops
    assert consumer.commits == [{OWNED: 6}, {OWNED: 6}]
    assert runner._committed == {OWNED: 6}


class Record:
    def __init__(self, tp: TopicPartition, offset: int) -> None:
        self.topic, self.partition, self.offset = tp.topic, tp.partition, offset


class RebalancingConsumer:
    """While the runner waits for the database, a rebalance hands it a partition, unpaused."""

    def __init__(self, polls: list[Any]) -> None:
        self.owned = {OWNED}
        self.polls = polls
        self.paused: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int] = {}

    def poll(self, **_: Any) -> dict[Any, Any]:
        answer = self.polls.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.owned.add(NEW)  # the rebalance: a new partition, in a fresh (unpaused) state
        for tp, records in answer.items():
            assert tp not in self.paused, "a paused partition returned records"
            self.positions[tp] = records[-1].offset + 1
        return dict(answer)

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)


def _runner() -> ConsumerRunner:
    metadata = MetaData()
    processed = processed_table(metadata)
    return ConsumerRunner(
        engine=create_engine("sqlite://"),
        processed=processed,
        registry=CATALOG,
        group="g",
        topics=["kinship.campaigns"],
        handlers={},
        bootstrap="127.0.0.1:1",
    )


def test_records_polled_while_waiting_for_the_database_are_put_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([False, False, True])
    monkeypatch.setattr("shared.consumer.database_ready", lambda engine: next(answers))
    runner = _runner()
    consumer = RebalancingConsumer([{NEW: [Record(NEW, 40), Record(NEW, 41)]}, {}, {}])
    runner._consumer = consumer  # type: ignore[assignment]

    runner._wait_for_database(_Batch())

    # The records of the newly assigned partition are fetched again once the database is back,
    # not skipped (and then committed past) as if they had been handled.
    assert consumer.positions[NEW] == 40
    assert consumer.polls == []  # paused at once: the later polls fetched nothing from it
    assert consumer.paused == set()


def test_a_broker_error_while_waiting_for_the_database_leaves_nothing_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.consumer.database_ready", lambda engine: False)
    runner = _runner()
    consumer = RebalancingConsumer([{}, KafkaError("broker away")])
    runner._consumer = consumer  # type: ignore[assignment]

    with pytest.raises(KafkaError):
        runner._wait_for_database(_Batch())
    assert consumer.paused == set()  # the run loop polls again, and pauses again if need be


def test_a_long_wait_for_the_database_restarts_the_parked_events_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parked events count as lost an hour after they are due, counted while the consumer
    runs: a database outage is not running, or the key's next event would overtake them."""
    from datetime import timedelta

    monkeypatch.setattr("shared.consumer.database_ready", lambda engine: True)
    runner = _runner()
    runner._consumer = RebalancingConsumer([{}])  # type: ignore[assignment]
    runner.running_since -= timedelta(hours=3)  # it started long before the outage
    before = runner.running_since
    runner._wait_for_database(_Batch())
    assert runner.running_since - before > timedelta(hours=2)
