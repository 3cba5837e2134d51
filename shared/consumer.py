"""The consumer runner: at-least-once delivery from Kafka, exactly-once effects in the database.

For each polled batch the runner validates every record, runs the handlers of new events in one
database transaction that also records their event ids (so a redelivered event has no second
effect), and commits the Kafka offsets only after that transaction commits. A record that can
never be processed goes to ``<topic>.<group>.dlq`` with its error and origin in headers; a
``RetryableError`` sends it to ``<topic>.<group>.retry`` to be tried again after a backoff. When
the database is unreachable the runner pauses its partitions and resumes when it is back.

A batch's transaction runs on the runner's apply thread while the next batch is fetched and
validated: batches are still applied one at a time and in order.
"""

from __future__ import annotations

import functools
import logging
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Connection, Engine, Table, delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared import metrics
from shared.db import database_ready, is_connection_error, json_param, one_of
from shared.errors import InvalidEvent, RetryableError
from shared.events.envelope import Event, decode, utcnow
from shared.events.registry import EventRegistry
from shared.kafka import (
    H_VALUE_BYTES,
    ConsumerSpinning,
    SpinGuard,
    close_quietly,
    dead_letter_topic,
    ensure_topics,
    make_consumer,
    make_producer,
    refused,
    retry_topic,
)
from shared.logging import error_text
from shared.outbox import parked_table

log = logging.getLogger(__name__)

Handler = Callable[[Event, Connection], None]
# Takes a run of consecutive events of one type: for effects that are cheaper in bulk.
BatchHandler = Callable[[list[Event], Connection], None]
H_ATTEMPT = "kinship_attempt"
H_NOT_BEFORE = "kinship_not_before_ms"
H_ORIGIN_TOPIC = "kinship_origin_topic"
H_ORIGIN_PARTITION = "kinship_origin_partition"
H_ORIGIN_OFFSET = "kinship_origin_offset"
H_ERROR = "kinship_error"
H_ERROR_CLASS = "kinship_error_class"
H_FAILED_AT = "kinship_failed_at"
_OWN_HEADERS = {
    H_ATTEMPT,
    H_NOT_BEFORE,
    H_ORIGIN_TOPIC,
    H_ORIGIN_PARTITION,
    H_ORIGIN_OFFSET,
    H_ERROR,
    H_ERROR_CLASS,
    H_FAILED_AT,
}


class _HandlerFailed(Exception):
    """A per-event handler raised: names the event, so it is not handled a second time."""

    def __init__(self, item: _Item, cause: Exception) -> None:
        super().__init__(str(cause))
        self.item = item
        self.cause = cause


def _cause(exc: Exception) -> Exception:
    return exc.cause if isinstance(exc, _HandlerFailed) else exc


class DatabaseDown(Exception):
    """The database cannot be reached: pause, do not drop or dead-letter anything."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; after max_attempts the event is dead-lettered."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 300.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        computed: float = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        computed *= random.uniform(0.8, 1.2)
        return max(computed, retry_after or 0.0)


@dataclass(eq=False)
class _Item:
    record: Any
    event: Event
    attempt: int


@dataclass(frozen=True)
class _Retry:
    """An event for the retry topic: tried again (kind 'retried', its attempt counted) or held
    behind an earlier failed event of its key (kind 'parked', its attempt kept)."""

    item: _Item
    kind: str
    attempt: int
    not_before_ms: int
    error: str
    error_class: str


@dataclass
class _Outcome:
    """What one batch produced besides its database effects."""

    dead: list[tuple[Any, BaseException]] = field(default_factory=list)
    # For the retry topic: failed events, and events held behind a failed one of their key.
    retries: list[_Retry] = field(default_factory=list)
    # The next offset to commit per partition.
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


@dataclass
class _Batch:
    """One polled batch, validated: its work, and what to do with its offsets afterwards."""

    outcome: _Outcome = field(default_factory=_Outcome)
    work: list[_Item] = field(default_factory=list)
    first_offsets: dict[TopicPartition, int] = field(default_factory=dict)


def _header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None


def origin_headers(record: Any) -> list[tuple[str, bytes]]:
    """Where a record was read: topic, partition and offset (an offset alone means little
    across partitions)."""
    return [
        (H_ORIGIN_TOPIC, record.topic.encode()),
        (H_ORIGIN_PARTITION, str(record.partition).encode()),
        (H_ORIGIN_OFFSET, str(record.offset).encode()),
    ]


def carried_headers(record: Any) -> list[tuple[str, bytes]]:
    """A record's own headers, less Kinship's bookkeeping, to go with it to a retry or
    dead-letter topic. A header's value may be null (Kafka allows it, another client may write
    one, kafka-python reads it as None): bytes(None) raised, and the runner died on the record
    at every start, never dead-lettering it. kafka-python's producer writes no null value, so
    an empty one stands for it."""
    return [
        (k, b"" if v is None else bytes(v))
        for k, v in record.headers or ()
        if k not in _OWN_HEADERS
    ]


def dead_letter_headers(
    record: Any, exc: BaseException, origin: list[tuple[str, bytes]] | None = None
) -> list[tuple[str, bytes]]:
    """The headers of a record's dead letter: its own (less Kinship's bookkeeping), where it
    came from (origin, else where it was read), the error named without personal data
    (shared.logging.error_text), when, and after how many attempts."""
    headers = carried_headers(record)
    headers += origin_headers(record) if origin is None else origin
    headers += [
        (H_ERROR, error_text(exc).encode()),
        (H_ERROR_CLASS, type(exc).__name__.encode()),
        (H_FAILED_AT, utcnow().isoformat().encode()),
        (H_ATTEMPT, (_header(record, H_ATTEMPT) or "0").encode()),
    ]
    return headers


# A key's events wait behind a parked event at most this long past its due time (or, for an
# event waiting its turn, past its parking), counted while this consumer runs: its retry
# record must have been lost. (A worker that was down for longer must first read the retry
# topic again, else the key's next event on the main topic would overtake it.)
PARKED_LOST_AFTER = timedelta(hours=1)
# An event waiting behind another comes round again no sooner than this (ms).
PARKED_RECHECK_MS = 1000

Place = tuple[str, str]  # (main topic, record key): the events that must keep their order


@dataclass
class _Parked:
    offset: int  # on the main topic: the key's order
    not_before_ms: int | None  # when a failed event is tried again
    parked_at: datetime


class _Parking:
    """Which of a batch's events may run now, so that each key keeps its order over retries.

    A failed event goes to the retry topic and parks its key: the key's later events, from
    either topic, go to the retry topic behind it (parked too, without counting an attempt)
    and come round until the ones before them on the main topic have been applied or
    dead-lettered. Events of other keys go on. The rows live in the consumer's database, in
    each batch's transaction, so a rebalance or a restart keeps them.
    """

    def __init__(
        self, rows: dict[Place, dict[str, _Parked]], now: datetime, running_since: datetime
    ) -> None:
        self.rows = rows
        self.now = now
        self.running_since = running_since
        self.dropped: set[str] = set()
        self.kept: dict[str, tuple[Place, _Parked]] = {}
        self.held: list[_Retry] = []

    def admit(self, item: _Item, place: Place | None, offset: int) -> bool:
        """Whether item runs now (its key is not parked, or it is the key's next event); if
        not, it is parked and held back. An admitted event is taken off, as if it succeeds
        (park() puts it back when it fails)."""
        rows = self.rows.get(place) if place is not None else None
        while rows:
            head_id = min(rows, key=lambda event_id: rows[event_id].offset)
            head = rows[head_id]
            if head_id == item.event.id:
                self._drop(rows, head_id)
                return True
            if not self._lost(head):
                break
            log.warning(
                "parked event never came back; its key goes on",
                extra={"event_id": head_id, "topic": place[0] if place else None},
            )
            self._drop(rows, head_id)
        if not rows:
            return True
        assert place is not None
        mine = rows.get(item.event.id)
        if mine is None:
            mine = rows[item.event.id] = _Parked(offset, None, self.now)
            self._keep(place, item.event.id, mine)
        now_ms = int(self.now.timestamp() * 1000)
        due = max(head.not_before_ms or 0, now_ms + PARKED_RECHECK_MS)
        self.held.append(
            _Retry(
                item,
                "parked",
                item.attempt,
                due,
                f"waiting behind event {head_id} of its key",
                "Parked",
            )  # fmt: skip
        )
        return False

    def park(self, item: _Item, place: Place | None, offset: int, not_before_ms: int) -> None:
        """Park a failed event's key behind it until it is tried again at not_before_ms."""
        if place is None:
            return
        parked = _Parked(offset, not_before_ms, self.now)
        self.rows.setdefault(place, {})[item.event.id] = parked
        self._keep(place, item.event.id, parked)

    def drop(self, item: _Item, place: Place | None) -> None:
        """A failed event was dead-lettered: its key's next event may go."""
        rows = self.rows.get(place) if place is not None else None
        if rows and item.event.id in rows:
            self._drop(rows, item.event.id)
        else:
            self.dropped.add(item.event.id)  # parked in an earlier batch, then admitted

    def _lost(self, parked: _Parked) -> bool:
        since = max(parked.parked_at, self.running_since)
        if parked.not_before_ms is not None:
            since = max(since, datetime.fromtimestamp(parked.not_before_ms / 1000, since.tzinfo))
        return self.now - since > PARKED_LOST_AFTER

    def _keep(self, place: Place, event_id: str, parked: _Parked) -> None:
        self.kept[event_id] = (place, parked)
        self.dropped.discard(event_id)

    def _drop(self, rows: dict[str, _Parked], event_id: str) -> None:
        del rows[event_id]
        self.kept.pop(event_id, None)
        self.dropped.add(event_id)


class ConsumerRunner:
    """Runs the handlers of one consumer group over its topics until stopped."""

    def __init__(
        self,
        *,
        engine: Engine,
        processed: Table,
        registry: EventRegistry,
        group: str,
        topics: Sequence[str],
        handlers: Mapping[str, Sequence[Handler]],
        bootstrap: str,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        retry: RetryPolicy | None = None,
        max_records: int = 1000,
        poll_timeout_ms: int = 200,
        partitions: int = 3,
        replication_factor: int = 1,
        keep_processed_days: float = 14.0,
        switch_interval: float | None = 0.001,
        consumer_factory: Callable[[], KafkaConsumer] | None = None,
        producer_factory: Callable[[], KafkaProducer] | None = None,
        on_commit: Callable[[AbstractSet[str]], None] | None = None,
    ) -> None:
        batch_handlers = dict(batch_handlers or {})
        unknown = [name for name in [*handlers, *batch_handlers] if name not in registry]
        if unknown:
            raise ValueError(f"handlers registered for unknown event types: {unknown}")
        self.engine = engine
        self.processed = processed
        self.parked = parked_table(processed.metadata)
        self.registry = registry
        self.group = group
        self.topics = list(topics)
        self.handlers: dict[str, list[Handler]] = {n: list(fns) for n, fns in handlers.items()}
        self.batch_handlers = batch_handlers
        both = set(self.handlers) & set(batch_handlers)
        if both:
            raise ValueError(f"event types with both kinds of handler: {sorted(both)}")
        self.bootstrap = bootstrap
        self.running_since = utcnow()
        self.retry = retry or RetryPolicy()
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.switch_interval = switch_interval
        # Called with the event types of a batch whose effects just committed (a poller in
        # this process can look now).
        self.on_commit = on_commit
        self._consumer_factory = consumer_factory or (
            lambda: make_consumer(bootstrap, group, f"{group}-consumer")
        )
        self._producer_factory = producer_factory or (
            lambda: make_producer(bootstrap, f"{group}-dlq", linger_ms=0)
        )
        self._retry_topics = {retry_topic(topic, group): topic for topic in self.topics}
        self._handled = frozenset(self.handlers) | frozenset(self.batch_handlers)
        self._stop = threading.Event()
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        # Retry partitions held back until their head record is due (monotonic deadline).
        self._held: dict[TopicPartition, float] = {}
        self._committed: dict[TopicPartition, int] = {}
        # Set (from kafka-python's IO thread) when an asynchronous commit failed: an idle poll
        # then commits the places again, so a lost last commit does not leave the group's lag
        # above zero until the next record arrives.
        self._commit_lost = False
        self._applier: ThreadPoolExecutor | None = None
        self._inflight: tuple[_Batch, Future[None]] | None = None
        self.stats = {
            "processed": 0, "skipped": 0, "duplicates": 0, "dead": 0, "retried": 0, "parked": 0,
            "replaced": 0,
        }  # fmt: skip
        self._spin_guard = SpinGuard()
        self.keep_processed = timedelta(days=keep_processed_days)
        self._next_prune = 0.0

    # -- lifecycle -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the batch in hand, commit it, leave the group and return from run()."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def all_topics(self) -> list[str]:
        """Return the main, retry and dead-letter topics this group uses."""
        names = list(self.topics)
        names += [retry_topic(t, self.group) for t in self.topics]
        names += [dead_letter_topic(t, self.group) for t in self.topics]
        return names

    def run(self) -> None:
        """Consume until stop() is called."""
        ensure_topics(self.bootstrap, self.all_topics(), self.partitions, self.replication_factor)
        self._applier = ThreadPoolExecutor(1, thread_name_prefix=f"{self.group}-apply")
        if self.switch_interval is not None:
            # When PostgreSQL answers, the apply thread needs the GIL back from the polling
            # thread: at the default 5 ms interval that wait was longer than the database's work.
            sys.setswitchinterval(self.switch_interval)
        subscribed = self.topics + list(self._retry_topics)
        self.running_since = utcnow()
        self._join(subscribed)
        log.info("consumer started", extra={"group": self.group, "topics": self.topics})
        backoff = 0.25
        try:
            while not self.stopping:
                try:
                    self.poll_once()
                    backoff = 0.25
                except ConsumerSpinning as exc:
                    log.warning(
                        "kafka consumer spinning, replaced",
                        extra={"group": self.group, "error": str(exc)},
                    )
                    self._replace_consumer(subscribed)
                except KafkaError as exc:
                    # The broker is away: nothing was committed, so wait and poll again.
                    log.warning(
                        "kafka unavailable, consumer waiting",
                        extra={"group": self.group, "error": type(exc).__name__},
                    )
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    self.running_since = utcnow()  # parked events' hour counts from its return
        finally:
            try:
                self._settle()
            except Exception as exc:  # noqa: BLE001 - its events are redelivered, deduped
                log.warning("last batch not finished", extra={"error": type(exc).__name__})
            self._applier.shutdown(wait=True)
            self._applier = None
            self._commit(dict(self._committed), wait=True)
            if self._consumer is not None:
                self._consumer.close(autocommit=False)
            if self._producer is not None:
                self._producer.close(timeout=10)
            log.info("consumer stopped", extra={"group": self.group, **self.stats})

    def _replace_consumer(self, topics: list[str]) -> None:
        """Finish and commit the work in hand, then swap the consumer for a new member (see
        shared.kafka.SpinGuard); what was not committed is delivered again and deduplicated."""
        try:
            self._settle()
        except Exception as exc:  # noqa: BLE001 - its events are redelivered, deduped
            log.warning("batch not finished", extra={"error": type(exc).__name__})
        self._commit(dict(self._committed), wait=True)
        assert self._consumer is not None
        self._consumer.close(autocommit=False)
        self._held.clear()  # a retry partition's head is held again when next polled
        self._join(topics)
        self.stats["replaced"] += 1

    def _join(self, topics: list[str]) -> None:
        """Make the consumer and subscribe it, its topics' metadata loaded first."""
        self._consumer = self._consumer_factory()
        self._load_metadata(topics)
        self._consumer.subscribe(topics)

    def _load_metadata(self, topics: list[str], timeout: float = 30.0) -> None:
        """Know every topic's partitions before joining the group.

        A consumer that joins before its metadata lists a freshly created topic is assigned
        none of its partitions until the next metadata refresh, minutes later.
        """
        assert self._consumer is not None
        deadline = time.monotonic() + timeout
        missing = list(topics)
        while missing and time.monotonic() < deadline and not self.stopping:
            missing = [t for t in missing if not self._consumer.partitions_for_topic(t)]
            if missing:
                self._stop.wait(0.1)
        if missing:
            log.warning("topic metadata not loaded", extra={"topics": missing})

    def poll_once(self) -> None:
        """Poll the next batch while the previous one is applied, then hand the next one over.

        The database transaction of batch N runs on the runner's apply thread (it mostly waits
        on PostgreSQL, which works on another core) while this thread fetches and validates
        batch N+1. Batches are still applied one at a time and in order, and offsets are only
        committed after their batch's transaction has committed.
        """
        consumer = self._consumer
        assert consumer is not None, "run() creates the consumer"
        self._release_due()
        self._prune_if_due()
        records = self._spin_guard.poll(
            consumer.poll, timeout_ms=self.poll_timeout_ms, max_records=self.max_records
        )
        batch = self._prepare(records) if records else None
        if not self._settle(pending=batch):
            return
        if batch is None:
            if self._commit_lost:  # _settle above left nothing in flight
                self._commit_lost = False
                self._commit(dict(self._committed))  # of the partitions still owned
            return
        if batch.work:
            assert self._applier is not None, "run() creates the apply thread"
            self._inflight = (batch, self._applier.submit(self._apply, batch.work, batch.outcome))
        else:
            self._finish_batch(batch)

    def _settle(self, pending: _Batch | None = None) -> bool:
        """Wait for the batch being applied and finish it; False if the database went away.

        ``pending`` is a batch polled meanwhile: if the database is down it is put back too.
        """
        if self._inflight is None:
            return True
        batch, applied = self._inflight
        self._inflight = None
        try:
            applied.result()
        except DatabaseDown:
            self._wait_for_database(batch, pending)
            return False
        except BaseException:
            self._seek_back(batch, pending)
            raise
        self._finish_batch(batch, pending)
        return True

    def _finish_batch(self, batch: _Batch, pending: _Batch | None = None) -> None:
        try:
            self._finish(batch.outcome)
        except KafkaError:
            # Dead letters or retries were not written: take the batch (and any polled after
            # it) again later.
            self._seek_back(batch, pending)
            raise

    def _seek_back(self, batch: _Batch, pending: _Batch | None) -> None:
        """Rewind to the first offsets of a batch and of the one polled after it."""
        offsets = dict(pending.first_offsets) if pending is not None else {}
        offsets.update(batch.first_offsets)  # the earlier batch's offsets win
        self._seek(offsets)

    # -- one batch -------------------------------------------------------------------------------

    def _prepare(self, records: Mapping[TopicPartition, list[Any]]) -> _Batch:
        """Decode and validate records; poison goes to the dead-letter list, not to handlers."""
        batch = _Batch()
        outcome = batch.outcome
        for tp, partition_records in records.items():
            is_retry = tp.topic in self._retry_topics
            batch.first_offsets[tp] = partition_records[0].offset
            for record in partition_records:
                if is_retry and self._hold_if_early(tp, record):
                    break
                outcome.offsets[tp] = record.offset + 1
                try:
                    event = decode(record.key, record.value, record.headers)
                    self.registry.check_incoming(event)
                except InvalidEvent as exc:
                    outcome.dead.append((record, exc))
                    continue
                if event.type not in self._handled:
                    self.stats["skipped"] += 1
                    continue
                attempt = int(_header(record, H_ATTEMPT) or 0) if is_retry else 0
                batch.work.append(_Item(record, event, attempt))
        return batch

    def _hold_if_early(self, tp: TopicPartition, record: Any) -> bool:
        """Hold a retry partition back while its head record is not yet due."""
        due_ms = int(_header(record, H_NOT_BEFORE) or 0)
        wait = due_ms / 1000 - time.time()
        if wait <= 0:
            return False
        assert self._consumer is not None
        self._consumer.seek(tp, record.offset)
        self._consumer.pause(tp)
        self._held[tp] = time.monotonic() + wait
        return True

    def _prune_if_due(self) -> None:
        """Forget processed ids older than Kafka could redeliver (hourly, cheap on an index)."""
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + 3600
        cutoff = utcnow() - self.keep_processed
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(self.processed).where(
                        self.processed.c.consumer_group == self.group,
                        self.processed.c.processed_at < cutoff,
                    )
                )
        except Exception as exc:  # noqa: BLE001 - pruning is housekeeping; try again later
            log.warning("pruning processed ids failed", extra={"error": type(exc).__name__})

    def _release_due(self) -> None:
        now = time.monotonic()
        due = [tp for tp, until in self._held.items() if until <= now]
        if due and self._consumer is not None:
            for tp in due:
                del self._held[tp]
            assigned = self._consumer.assignment()
            self._consumer.resume(*[tp for tp in due if tp in assigned])

    def _apply(self, work: list[_Item], outcome: _Outcome) -> None:
        """Run handlers for new events: the whole batch in one transaction, else one by one.

        Events of a parked key wait behind its failed event on the retry topic (_Parking).
        """
        unique: dict[str, _Item] = {}
        for item in work:
            unique.setdefault(item.event.id, item)
        self.stats["duplicates"] += len(work) - len(unique)
        items = list(unique.values())
        places = {item.event.id: self._place(item) for item in items}
        failed: tuple[_Item, Exception] | None = None
        failed_run: list[_Item] = []
        try:
            with self.engine.begin() as conn:
                parking = self._parking(conn, places.values())
                admitted = [item for item in items if parking.admit(item, *places[item.event.id])]
                fresh = self._mark_processed(conn, [item.event.id for item in admitted])
                for run in self._runs([item for item in admitted if item.event.id in fresh]):
                    try:
                        self._handle_run(run, conn)
                    except _HandlerFailed as exc:
                        failed, failed_run = (exc.item, exc.cause), run
                        raise
                    except Exception:
                        failed_run = run  # a batch handler failed: isolate its events
                        raise
                self._save_parking(conn, parking)
            outcome.retries += parking.held
            self._after_commit(admitted, fresh)
            return
        except Exception as exc:
            if is_connection_error(_cause(exc)):
                raise DatabaseDown(str(exc)) from exc
            if not failed_run:
                raise
        # One event failed and rolled the batch back: route it, and redo the others one by one
        # so they still take effect. A per-event handler that failed is not called twice.
        log.info("batch failed, isolating the failing event", extra={"group": self.group})
        try:
            with self.engine.begin() as conn:
                parking = self._parking(conn, places.values())
                fresh, done = set(), []
                for item in items:
                    where = places[item.event.id]
                    if not parking.admit(item, *where):
                        continue
                    if failed is not None and item is failed[0]:
                        self._route_failure(item, failed[1], outcome, parking, *where)
                        continue
                    savepoint = conn.begin_nested()
                    try:
                        if self._mark_processed(conn, [item.event.id]):
                            self._handle_run([item], conn)
                            fresh.add(item.event.id)
                        savepoint.commit()
                        done.append(item)
                    except Exception as exc:
                        if is_connection_error(_cause(exc)):
                            raise _cause(exc) from None
                        savepoint.rollback()
                        self._route_failure(item, _cause(exc), outcome, parking, *where)
                self._save_parking(conn, parking)
            outcome.retries += parking.held
            self._after_commit(done, fresh)
        except Exception as exc:
            if is_connection_error(exc):
                raise DatabaseDown(str(exc)) from exc
            raise

    def _place(self, item: _Item) -> tuple[Place | None, int]:
        """The events item keeps its order among (none without a key), and its place there."""
        record = item.record
        if record.topic in self._retry_topics:
            offset = int(_header(record, H_ORIGIN_OFFSET) or -1)
        else:
            offset = int(record.offset)
        key = item.event.key
        return ((self._main_topic(record), key) if key else None), offset

    def _parking(self, conn: Connection, places: Iterable[tuple[Place | None, int]]) -> _Parking:
        """Read the parked events of the batch's keys."""
        table = self.parked
        wanted = {place for place, _ in places if place is not None}
        rows: dict[Place, dict[str, _Parked]] = {}
        keys = {key for _, key in wanted}
        if keys:
            query = select(
                table.c.topic, table.c.event_key, table.c.event_id, table.c.origin_offset,
                table.c.not_before_ms, table.c.parked_at,
            ).where(
                table.c.consumer_group == self.group, one_of(conn, table.c.event_key, keys)
            )  # fmt: skip
            for topic, key, event_id, offset, not_before_ms, parked_at in conn.execute(query):
                if (topic, key) in wanted:
                    parked = _Parked(offset, not_before_ms, parked_at)
                    rows.setdefault((topic, key), {})[event_id] = parked
        return _Parking(rows, utcnow(), self.running_since)

    def _save_parking(self, conn: Connection, parking: _Parking) -> None:
        """Write what a batch changed in the parked events, in the batch's transaction."""
        table = self.parked
        if parking.dropped:
            conn.execute(
                delete(table).where(
                    table.c.consumer_group == self.group,
                    table.c.event_id.in_(sorted(parking.dropped)),
                )
            )
        if parking.kept:
            rows = [
                {
                    "consumer_group": self.group, "event_id": event_id, "topic": place[0],
                    "event_key": place[1], "origin_offset": parked.offset,
                    "not_before_ms": parked.not_before_ms, "parked_at": parked.parked_at,
                }
                for event_id, (place, parked) in parking.kept.items()
            ]  # fmt: skip
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            statement = insert(table).values(rows)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[table.c.consumer_group, table.c.event_id],
                    set_={"not_before_ms": statement.excluded.not_before_ms},
                )
            )

    def _route_failure(
        self,
        item: _Item,
        exc: Exception,
        outcome: _Outcome,
        parking: _Parking,
        place: Place | None,
        offset: int,
    ) -> None:
        """Dead-letter a failed event, or park its key and try it again after a backoff."""
        attempt = item.attempt + 1
        if isinstance(exc, InvalidEvent) or attempt >= self.retry.max_attempts:
            outcome.dead.append((item.record, exc))
            parking.drop(item, place)
            return
        # RetryableError, or an unexpected bug that may be transient: retry, then DLQ.
        retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
        not_before_ms = int((time.time() + self.retry.delay(attempt, retry_after)) * 1000)
        outcome.retries.append(
            _Retry(item, "retried", attempt, not_before_ms, error_text(exc), type(exc).__name__)
        )
        parking.park(item, place, offset, not_before_ms)

    def _after_commit(self, items: list[_Item], fresh: set[str]) -> None:
        """Count a committed batch's events, and tell whoever waits on their effects."""
        applied = Counter(item.event.type for item in items if item.event.id in fresh)
        for event_type, count in applied.items():
            metrics.EVENTS_CONSUMED.labels(self.group, event_type, "processed").inc(count)
        processed = sum(applied.values())
        self.stats["processed"] += processed
        self.stats["duplicates"] += len(items) - processed
        if processed and self.on_commit is not None:
            self.on_commit(applied.keys())

    @staticmethod
    def _runs(items: list[_Item]) -> list[list[_Item]]:
        """Split items into runs of consecutive events of one type (keeps their order)."""
        runs: list[list[_Item]] = []
        for item in items:
            if runs and runs[-1][0].event.type == item.event.type:
                runs[-1].append(item)
            else:
                runs.append([item])
        return runs

    def _handle_run(self, run: list[_Item], conn: Connection) -> None:
        event_type = run[0].event.type
        batch_handler = self.batch_handlers.get(event_type)
        if batch_handler is not None:
            batch_handler([item.event for item in run], conn)
            return
        for item in run:
            try:
                for handler in self.handlers[event_type]:
                    handler(item.event, conn)
            except Exception as exc:
                raise _HandlerFailed(item, exc) from exc

    def _mark_processed(self, conn: Connection, event_ids: list[str]) -> set[str]:
        """Record event ids for this group; return those not seen before."""
        table = self.processed
        now = utcnow()
        if conn.dialect.name == "postgresql":
            # One JSON parameter instead of 3 x N bind parameters (compiling those dominated),
            # and only the ids seen before come back: usually none, so nothing to fetch.
            statement = text(
                f"WITH fresh AS (INSERT INTO {table.name} (consumer_group, event_id, processed_at) "
                "SELECT :group, json_array_elements_text(CAST(:ids AS json)), :now "
                "ON CONFLICT DO NOTHING RETURNING event_id) "
                "SELECT json_array_elements_text(CAST(:ids AS json)) "
                "EXCEPT ALL SELECT event_id FROM fresh"
            )
            params = {"group": self.group, "ids": json_param(event_ids), "now": now}
            return set(event_ids) - set(conn.execute(statement, params).scalars())
        rows = [
            {"consumer_group": self.group, "event_id": eid, "processed_at": now}
            for eid in event_ids
        ]
        returning = (
            sqlite_insert(table).values(rows).on_conflict_do_nothing().returning(table.c.event_id)
        )
        return set(conn.execute(returning).scalars())

    # -- after the batch -------------------------------------------------------------------------

    def _finish(self, outcome: _Outcome) -> None:
        """Dead-letter and schedule retries, then commit offsets."""
        if outcome.dead or outcome.retries:
            sends: list[tuple[Any, Callable[[KafkaProducer], Any]]] = [
                (record, functools.partial(self._send_dead, record=record, exc=exc))
                for record, exc in outcome.dead
            ]
            sends += [
                (retry.item.record, functools.partial(self._send_retry, retry=retry))
                for retry in outcome.retries
            ]
            refusals = self._send_all(sends)
            if refusals:
                # Refused for good as written again: larger than the broker takes once sent
                # without the compression they came with and with our headers. Their dead
                # letters go without the value; else the batch would come back for ever.
                close_quietly(self._producer)
                self._producer = None
                stubs = [
                    (record, functools.partial(self._send_stub, record=record, refusal=why))
                    for record, why in refusals
                ]
                if self._send_all(stubs):
                    raise KafkaError("dead letters refused even without their values")
        self._commit(outcome.offsets)

    def _send_all(
        self, sends: Sequence[tuple[Any, Callable[[KafkaProducer], Any]]]
    ) -> list[tuple[Any, BaseException]]:
        """Send records and wait for them; return those the broker refused for good (raise
        KafkaError for any other failure: the batch comes back, its applied events deduped)."""
        producer = self._get_producer()
        futures: list[tuple[Any, Any]] = []
        refusals: list[tuple[Any, BaseException]] = []
        for record, send in sends:
            try:
                futures.append((record, send(producer)))
            except KafkaError as exc:  # the producer's own size limit: refused before sending
                if not refused(exc):
                    raise
                refusals.append((record, exc))
        producer.flush(timeout=30)
        for record, future in futures:
            if future.succeeded():
                continue
            failure = future.exception if future.is_done else None
            if not refused(failure):
                raise KafkaError("dead-letter or retry records were not acknowledged")
            refusals.append((record, failure))
        return refusals

    def _send_stub(self, producer: KafkaProducer, record: Any, refusal: BaseException) -> Any:
        """Dead-letter a record the broker refused to take again: its headers, no value."""
        self.stats["dead"] += 1
        headers = dead_letter_headers(record, refusal, self._origin(record))
        headers.append((H_VALUE_BYTES, str(len(record.value or b"")).encode()))
        topic = dead_letter_topic(self._main_topic(record), self.group)
        return producer.send(topic, key=record.key, value=b"", headers=headers)

    def _commit(self, offsets: Mapping[TopicPartition, int], wait: bool = False) -> None:
        """Commit offsets; asynchronously by default, since effects are already deduped.

        A commit lost to a crash or a rebalance only means redelivery, which the processed
        event ids absorb, so the batch loop does not wait for the broker's answer.
        """
        assert self._consumer is not None
        # Only partitions this member owns now: the broker takes a commit for any partition of
        # the group, so a batch finished after a rebalance, or the commit at a stop, rewound
        # the new owner's progress (a wave of redelivery after every rolling deploy).
        owned = self._consumer.assignment()
        offsets = {tp: off for tp, off in offsets.items() if tp in owned}
        self._committed = {tp: off for tp, off in self._committed.items() if tp in owned}
        if not offsets:
            return
        self._committed.update(offsets)
        commit = {tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}
        try:
            if wait:
                self._consumer.commit(commit)
            else:
                self._consumer.commit_async(commit, callback=self._commit_answered)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("offset commit failed", extra={"error": type(exc).__name__})

    def _commit_answered(self, offsets: Any, response: Any) -> None:
        if isinstance(response, Exception):
            self._commit_lost = True

    def _seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        assert self._consumer is not None
        assigned = self._consumer.assignment()
        for tp, offset in offsets.items():
            if tp in assigned:
                self._consumer.seek(tp, offset)

    def _get_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self._producer_factory()
        return self._producer

    def _origin(self, record: Any) -> list[tuple[str, bytes]]:
        if record.topic in self._retry_topics:
            keep = (H_ORIGIN_TOPIC, H_ORIGIN_PARTITION, H_ORIGIN_OFFSET)
            return [(k, bytes(v)) for k, v in record.headers or () if k in keep]
        return origin_headers(record)

    def _main_topic(self, record: Any) -> str:
        topic: str = record.topic
        return self._retry_topics.get(topic, topic)

    def _send_dead(self, producer: KafkaProducer, *, record: Any, exc: BaseException) -> Any:
        self.stats["dead"] += 1
        metrics.EVENTS_CONSUMED.labels(self.group, "-", "dead_lettered").inc()
        log.warning(
            "event dead-lettered",
            extra={
                "group": self.group,
                "topic": record.topic,
                "offset": record.offset,
                "error_class": type(exc).__name__,
            },
        )
        headers = dead_letter_headers(record, exc, self._origin(record))
        topic = dead_letter_topic(self._main_topic(record), self.group)
        return producer.send(topic, key=record.key, value=record.value, headers=headers)

    def _send_retry(self, producer: KafkaProducer, *, retry: _Retry) -> Any:
        item = retry.item
        self.stats[retry.kind] += 1
        metrics.EVENTS_CONSUMED.labels(self.group, item.event.type, retry.kind).inc()
        record = item.record
        headers = carried_headers(record)
        headers += self._origin(record)
        headers += [
            (H_ATTEMPT, str(retry.attempt).encode()),
            (H_NOT_BEFORE, str(retry.not_before_ms).encode()),
            (H_ERROR, retry.error[:2000].encode()),
            (H_ERROR_CLASS, retry.error_class.encode()),
        ]
        topic = retry_topic(self._main_topic(record), self.group)
        return producer.send(topic, key=record.key, value=record.value, headers=headers)

    # -- database outage -------------------------------------------------------------------------

    def _wait_for_database(self, batch: _Batch, pending: _Batch | None = None) -> None:
        """Put the batch back, pause every partition and resume once the database answers."""
        consumer = self._consumer
        assert consumer is not None
        log.warning("database unreachable, consumer paused", extra={"group": self.group})
        metrics.CONSUMER_PAUSED.labels(self.group).set(1)
        self._seek_back(batch, pending)
        consumer.pause(*consumer.assignment())
        delay = 0.25
        try:
            while not self.stopping:
                # Polling while paused keeps the group membership alive and fetches nothing,
                # except from partitions a rebalance assigned meanwhile (they come unpaused):
                # put those records back, or the runner would go on past them and commit
                # beyond them.
                records = consumer.poll(timeout_ms=int(delay * 1000))
                for tp, partition_records in records.items():
                    consumer.seek(tp, partition_records[0].offset)
                consumer.pause(*consumer.assignment())
                if database_ready(self.engine):
                    break
                delay = min(delay * 2, 5.0)
        finally:
            # Also when the broker went away meanwhile (poll raised): nothing stays paused for
            # good; a batch that meets the database still down comes back here.
            held = set(self._held)
            consumer.resume(*[tp for tp in consumer.assignment() if tp not in held])
            metrics.CONSUMER_PAUSED.labels(self.group).set(0)
            self.running_since = utcnow()  # parked events' hour counts from here again
        log.info("database back, consumer resumed", extra={"group": self.group})
