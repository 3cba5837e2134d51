"""Fault tests of the outbox, relay and consumer runner with real Kafka and real PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from sqlalchemy import Engine, Table, func, insert, select

from shared.consumer import H_ORIGIN_TOPIC, ConsumerRunner, RetryPolicy, _Batch
from shared.db import make_engine
from shared.errors import RetryableError
from shared.events import Event, EventRegistry
from shared.kafka import (
    H_VALUE_BYTES,
    ConsumerSpinning,
    SpinGuard,
    dead_letter_topic,
    ensure_topics,
    make_producer,
)
from shared.outbox import Outbox
from shared.relay import OutboxRelay
from tests.integration import eventapp
from tests.support.kafka import (
    caught_up,
    committed_offsets,
    end_offsets,
    headers_of,
    read_all,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class App:
    db: str
    bootstrap: str
    topic: str
    group: str
    engine: Engine
    outbox_table: Table
    processed: Table
    effects: Table
    registry: EventRegistry
    outbox: Outbox
    logs: Path

    def count(self, table: Table) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def distinct_effects(self) -> int:
        with self.engine.connect() as conn:
            query = select(func.count(func.distinct(self.effects.c.event_id)))
            return int(conn.execute(query).scalar_one())

    def add_events(self, events: list[Event]) -> None:
        with self.engine.begin() as conn:
            self.outbox.add_many(conn, events)

    def spawn(self, role: str, *extra: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{role}-{uuid.uuid4().hex[:6]}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.eventapp",
                role,
                self.db,
                self.bootstrap,
                self.topic,
                self.group,
                *extra,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return proc

    def per_key_sequences(self) -> dict[str, list[int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.effects.c.item_key, self.effects.c.seq).order_by(self.effects.c.id)
            ).all()
        sequences: dict[str, list[int]] = defaultdict(list)
        for key, seq in rows:
            sequences[key].append(seq)
        return sequences


@pytest.fixture
def app(database_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[App]:
    topic = f"kinship.test.{uuid.uuid4().hex[:8]}"
    metadata, outbox_table, processed, effects, registry = eventapp.build(topic)
    engine = make_engine(database_url)
    metadata.create_all(engine)
    ensure_topics(kafka_bootstrap, [topic], partitions=3)
    yield App(
        database_url,
        kafka_bootstrap,
        topic,
        f"g-{uuid.uuid4().hex[:6]}",
        engine,
        outbox_table,
        processed,
        effects,
        registry,
        eventapp.make_outbox(outbox_table, registry),
        tmp_path,
    )
    engine.dispose()


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_relay_killed_three_times_loses_nothing_and_duplicates_nothing(app: App) -> None:
    total, keys = 10_000, 50
    consumer = app.spawn("consumer")
    relay = app.spawn("relay", "--batch", "300")
    seq: dict[str, int] = defaultdict(int)

    def write() -> None:
        rng = random.Random(7)
        for _start in range(0, total, 100):
            events = []
            for _ in range(100):
                key = f"item-{rng.randrange(keys)}"
                events.append(eventapp.item_event(key, seq[key]))
                seq[key] += 1
            app.add_events(events)
            time.sleep(0.01)

    writer = threading.Thread(target=write)
    writer.start()
    pending_at_kill = []
    rng = random.Random()
    try:
        for _ in range(3):
            time.sleep(rng.uniform(0.3, 1.5))
            relay.send_signal(signal.SIGKILL)
            relay.wait()
            pending_at_kill.append(app.count(app.outbox_table))
            relay = app.spawn("relay", "--batch", "300")
        writer.join()
        eventually(lambda: app.count(app.outbox_table) == 0, timeout=120, message="outbox drained")
        eventually(
            lambda: caught_up(app.bootstrap, app.group, app.topic),
            timeout=120,
            message="consumer caught up",
        )
    finally:
        writer.join()
        stop(relay)
        stop(consumer)
    assert any(pending for pending in pending_at_kill), "no kill happened while work was pending"
    assert app.count(app.effects) == total
    assert app.distinct_effects() == total
    for key, sequence in app.per_key_sequences().items():
        assert sequence == sorted(sequence), f"events of {key} were reordered"


def test_two_relays_at_once_publish_each_event_once_in_order(app: App) -> None:
    relays = [app.spawn("relay", "--batch", "100"), app.spawn("relay", "--batch", "100")]
    try:
        for batch in range(20):
            app.add_events([eventapp.item_event(f"k{i % 7}", batch * 100 + i) for i in range(100)])
        eventually(lambda: app.count(app.outbox_table) == 0, timeout=180, message="outbox drained")
    finally:
        for relay in relays:
            stop(relay)
    records = read_all(app.bootstrap, app.topic, expected=2000)
    ids = [headers_of(r)["ce_id"] for r in records]
    assert len(ids) == 2000 and len(set(ids)) == 2000
    assert sum(end_offsets(app.bootstrap, app.topic).values()) == 2000  # no repeat after them
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        by_key[record.key].append(int(record.value.split(b'"seq":')[1].split(b"}")[0]))
    assert all(seqs == sorted(seqs) for seqs in by_key.values())


def test_consumer_killed_mid_batch_applies_no_effect_twice(app: App) -> None:
    total = 3000
    for start in range(0, total, 500):
        app.add_events([eventapp.item_event(f"k{i % 11}", i) for i in range(start, start + 500)])
    relay = app.spawn("relay")
    # A slow handler keeps a batch transaction open long enough to be killed inside it.
    consumer = app.spawn("consumer", "--delay-ms", "2", "--batch", "400")
    try:
        for threshold in (400, 1200):
            eventually(
                lambda t=threshold: app.count(app.effects) >= t,
                timeout=180,  # the killed member's session (15 s) must lapse before a new join
                message=f"{threshold} effects",
            )
            time.sleep(random.uniform(0.05, 0.4))
            consumer.send_signal(signal.SIGKILL)
            consumer.wait()
            consumer = app.spawn("consumer", "--delay-ms", "2", "--batch", "400")
        eventually(
            lambda: (
                caught_up(app.bootstrap, app.group, app.topic) and app.count(app.outbox_table) == 0
            ),
            timeout=120,
            message="caught up",
        )
    finally:
        stop(consumer)
        stop(relay)
    assert app.count(app.effects) == total
    assert app.distinct_effects() == total


def test_poison_messages_go_to_the_dead_letter_topic_and_good_ones_still_apply(app: App) -> None:
    good = [eventapp.item_event("k", i) for i in range(5)]
    producer: KafkaProducer = make_producer(app.bootstrap, "test-poison")
    base = good[0].headers()

    def with_type(type_name: str) -> list[tuple[str, bytes]]:
        return [(k, type_name.encode() if k == "ce_type" else v) for k, v in base]

    def with_id(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [(k, uuid.uuid4().hex.encode() if k == "ce_id" else v) for k, v in headers]

    def with_raw_id(raw: bytes) -> list[tuple[str, bytes]]:
        return [(k, raw if k == "ce_id" else v) for k, v in base]

    poison = [
        (b"k", b"{not json", with_id(base)),
        (b"k", b'{"item_id": "k", "seq": 1}', with_id(with_type("kinship.nobody.heard_of.v1"))),
        (b"k", b'{"item_id": "k", "seq": "not a number"}', with_id(base)),
        # Ids the processed-events table (String(64)) cannot store: they used to crash the
        # worker on that batch at every start.
        (b"k", b'{"item_id": "k", "seq": 1}', with_raw_id(b"x" * 65)),
        (b"k", b'{"item_id": "k", "seq": 1}', with_raw_id(b"id-with-\x00-inside")),
        # Keys no event of ours has, which the parking table (String(200)) cannot store when
        # a handler fails: the worker crashed on them at every start.
        (b"x" * 201, b'{"item_id": "k", "seq": 1}', with_id(base)),
        (b"key-with-\x00-inside", b'{"item_id": "k", "seq": 1}', with_id(base)),
    ]
    producer.send(app.topic, key=b"k", value=good[0].value(), headers=good[0].headers())
    for key, value, headers in poison:
        producer.send(app.topic, key=key, value=value, headers=headers)
    for event in good[1:]:
        producer.send(app.topic, key=b"k", value=event.value(), headers=event.headers())
    producer.flush()
    producer.close()

    consumer = app.spawn("consumer")
    try:
        eventually(lambda: app.count(app.effects) == 5, timeout=180, message="good events applied")
        dead = read_all(app.bootstrap, dead_letter_topic(app.topic, app.group), expected=7)
    finally:
        stop(consumer)
    assert consumer.returncode == 0, "the consumer crashed"
    assert len(dead) == 7
    assert sum(end_offsets(app.bootstrap, dead_letter_topic(app.topic, app.group)).values()) == 7
    errors = [headers_of(record) for record in dead]
    assert {h["kinship_error_class"] for h in errors} == {"InvalidEvent", "UnknownEventType"}
    assert any("not JSON" in h["kinship_error"] for h in errors)
    assert any("seq" in h["kinship_error"] for h in errors)
    assert sum("ce_id" in h["kinship_error"] for h in errors) == 2
    assert sum("record key" in h["kinship_error"] for h in errors) == 2
    assert all(h["kinship_origin_topic"] == app.topic for h in errors)
    assert all(h["kinship_origin_offset"].isdigit() for h in errors)
    assert b"{not json" in [record.value for record in dead]  # as it came, whatever the order


def test_a_poison_record_kafka_refuses_to_take_again_is_dead_lettered_without_its_value(
    app: App,
) -> None:
    """Another client's record, compressed under the broker's limit but past it once written
    again uncompressed with our headers: its dead letter was refused for good, the batch came
    back, and the consumer went round it for ever, committing nothing. Its dead letter now
    goes without the value (its size in a header), and the events behind it apply."""
    good = [eventapp.item_event("k", i) for i in range(3)]
    squeezed = make_producer(app.bootstrap, "test-squeezed", compression_type="gzip")
    poison = b"{not json" + b" " * 2_000_000  # a few KB gzipped; 2 MB as written again
    squeezed.send(app.topic, key=b"k", value=poison, headers=good[0].headers())
    squeezed.flush()
    squeezed.close()
    producer = make_producer(app.bootstrap, "test-good")
    for event in good:
        producer.send(app.topic, key=b"k", value=event.value(), headers=event.headers())
    producer.flush()
    producer.close()
    consumer = app.spawn("consumer")
    try:
        eventually(lambda: app.count(app.effects) == 3, timeout=180, message="good events applied")
        [dead] = read_all(app.bootstrap, dead_letter_topic(app.topic, app.group), expected=1)
    finally:
        stop(consumer)
    assert consumer.returncode == 0, "the consumer crashed"
    headers = headers_of(dead)
    assert dead.value == b"" and int(headers["kinship_value_bytes"]) == len(poison)
    assert headers["kinship_error_class"] == "MessageSizeTooLargeError"
    assert headers["kinship_origin_topic"] == app.topic


def _runner(app: App, handler: Any, **kwargs: Any) -> ConsumerRunner:
    return ConsumerRunner(
        engine=app.engine,
        processed=app.processed,
        registry=app.registry,
        group=app.group,
        topics=[app.topic],
        handlers={eventapp.ITEM_CREATED: [handler]},
        bootstrap=app.bootstrap,
        **kwargs,
    )


def test_retryable_error_is_retried_later_and_applied_once(app: App) -> None:
    attempts: dict[int, int] = defaultdict(int)
    apply = eventapp.effect_handler(app.effects)

    def flaky(event: Event, conn: Any) -> None:
        attempts[event.data["seq"]] += 1
        if event.data["seq"] == 2 and attempts[2] < 3:
            raise RetryableError("provider said 503", retry_after=0.2)
        apply(event, conn)

    runner = _runner(app, flaky, retry=RetryPolicy(max_attempts=5, base_delay=0.1))
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        app.add_events([eventapp.item_event("k", i) for i in range(5)])
        relay = OutboxRelay(
            app.engine, app.outbox_table, lambda: make_producer(app.bootstrap, "test-relay")
        )
        with app.engine.connect() as conn:
            while relay.publish_batch(conn):
                pass
        eventually(lambda: app.count(app.effects) == 5, timeout=180, message="all applied")
    finally:
        runner.stop()
        thread.join(timeout=30)
    # Each failure is one attempt: the first in the batch, the second from the retry topic.
    assert attempts[2] == 3
    assert app.distinct_effects() == 5 and app.count(app.effects) == 5
    assert runner.stats["retried"] == 2


def _publish_all(app: App) -> None:
    relay = OutboxRelay(
        app.engine, app.outbox_table, lambda: make_producer(app.bootstrap, "test-relay")
    )
    with app.engine.connect() as conn:
        while relay.publish_batch(conn):
            pass


def test_a_retried_event_keeps_its_keys_order_and_holds_back_no_other_key(app: App) -> None:
    # An alert.cancelled must never take effect before the alert.published it cancels: while
    # an event waits on the retry topic, the later events of its key wait behind it (parked),
    # in order; other keys go on.
    release = threading.Event()
    apply = eventapp.effect_handler(app.effects)

    def gated(event: Event, conn: Any) -> None:
        if event.data["item_id"] == "a" and event.data["seq"] == 1 and not release.is_set():
            raise RetryableError("provider said 503")
        apply(event, conn)

    runner = _runner(
        app, gated, retry=RetryPolicy(max_attempts=10**6, base_delay=0.1, max_delay=0.2)
    )
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        app.add_events([eventapp.item_event(key, i) for i in range(4) for key in ("a", "b")])
        _publish_all(app)
        eventually(
            lambda: app.per_key_sequences().get("b") == [0, 1, 2, 3] and runner.stats["retried"],
            timeout=180,
            message="key b applied while a waits",
        )
        late = eventapp.item_event("a", 4)  # a new event of the parked key
        app.add_events([late])
        _publish_all(app)

        def parked() -> set[str]:
            with app.engine.connect() as conn:
                return set(conn.execute(select(runner.parked.c.event_id)).scalars())

        eventually(lambda: late.id in parked(), timeout=180, message="the late event parked")
        assert len(parked()) == 4  # a:1 and the three behind it
        assert app.per_key_sequences()["a"] == [0]
        release.set()
        eventually(lambda: app.count(app.effects) == 9, timeout=180, message="all applied")
    finally:
        runner.stop()
        thread.join(timeout=30)
    assert app.per_key_sequences() == {"a": [0, 1, 2, 3, 4], "b": [0, 1, 2, 3]}
    assert app.distinct_effects() == 9
    with app.engine.connect() as conn:  # and the key is no longer parked
        assert conn.execute(select(func.count()).select_from(runner.parked)).scalar_one() == 0


def test_a_dead_lettered_event_lets_the_rest_of_its_key_go_in_order(app: App) -> None:
    apply = eventapp.effect_handler(app.effects)
    tries = 0
    tries_before: dict[int, int] = {}  # by seq: how often seq 1 had failed when it applied

    def broken(event: Event, conn: Any) -> None:
        nonlocal tries
        if event.data["seq"] == 1:
            tries += 1
            raise RetryableError("never works")
        tries_before[event.data["seq"]] = tries
        apply(event, conn)

    runner = _runner(app, broken, retry=RetryPolicy(max_attempts=3, base_delay=0.1))
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        app.add_events([eventapp.item_event("a", i) for i in range(5)])
        _publish_all(app)
        eventually(lambda: app.count(app.effects) == 4, timeout=180, message="the rest applied")
    finally:
        runner.stop()
        thread.join(timeout=30)
    assert app.per_key_sequences() == {"a": [0, 2, 3, 4]}
    # The rest only after its last attempt (seq 0 applied again when its batch was redone).
    assert {seq: tries_before[seq] for seq in (2, 3, 4)} == {2: 3, 3: 3, 4: 3}
    assert runner.stats["dead"] == 1
    dead = read_all(app.bootstrap, dead_letter_topic(app.topic, app.group), expected=1)
    assert [json.loads(r.value)["seq"] for r in dead] == [1]
    assert sum(end_offsets(app.bootstrap, dead_letter_topic(app.topic, app.group)).values()) == 1


def test_a_spinning_consumer_is_replaced_and_every_event_applies_once(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kafka-python can leave a member whose poll() never waits (shared.kafka.SpinGuard). The
    # guard's verdict is forced once, after the first events applied, which the real guard
    # reaches after 5 s of such polls.
    runner: ConsumerRunner | None = None
    real_poll = SpinGuard.poll
    forced: list[bool] = []

    def poll(guard: SpinGuard, consumer_poll: Any, **kwargs: Any) -> dict[Any, Any]:
        if not forced and runner is not None and runner.stats["processed"] >= 10:
            forced.append(True)
            raise ConsumerSpinning("forced by the test")
        return real_poll(guard, consumer_poll, **kwargs)

    monkeypatch.setattr(SpinGuard, "poll", poll)
    runner = _runner(app, eventapp.effect_handler(app.effects))
    thread = threading.Thread(target=runner.run)
    thread.start()
    relay = OutboxRelay(
        app.engine, app.outbox_table, lambda: make_producer(app.bootstrap, "test-relay")
    )
    try:
        for first in (0, 10):
            app.add_events([eventapp.item_event(f"k{i % 3}", i) for i in range(first, first + 10)])
            with app.engine.connect() as conn:
                while relay.publish_batch(conn):
                    pass
            eventually(lambda: forced or app.count(app.effects) == 20, timeout=180, message="spun")
        eventually(lambda: app.count(app.effects) == 20, timeout=180, message="all applied")
    finally:
        runner.stop()
        thread.join(timeout=30)
    assert forced and runner.stats["replaced"] == 1
    assert app.distinct_effects() == 20 and app.count(app.effects) == 20


def test_an_idle_relay_publishes_a_commit_at_once_and_stops_at_once(app: App) -> None:
    # The outbox's trigger NOTIFYs each commit and the idle relay LISTENs: with ten minutes
    # between its own looks here, only the notification can bring the event out in time.
    relay = OutboxRelay(
        app.engine,
        app.outbox_table,
        lambda: make_producer(app.bootstrap, "test-relay"),
        idle_ceiling=600.0,
    )
    thread = threading.Thread(target=relay.run)
    thread.start()
    try:
        # A first event makes the relay's producer (its broker handshake is not what is timed).
        app.add_events([eventapp.item_event("warm-up", 0)])
        eventually(lambda: relay.published == 1, timeout=180, message="warm-up published")
        time.sleep(1.0)  # past its looks after that batch: waiting
        for seq in range(3):
            committed = time.monotonic()
            app.add_events([eventapp.item_event("idle", seq)])
            eventually(lambda n=seq + 2: relay.published == n, timeout=180, message="published")
            assert time.monotonic() - committed < 2.0
            time.sleep(0.3)
    finally:
        stopping = time.monotonic()
        relay.stop()
        thread.join(timeout=30)
    assert not thread.is_alive() and time.monotonic() - stopping < 2.0
    records = read_all(app.bootstrap, app.topic, expected=4)
    assert sorted(json.loads(r.value)["seq"] for r in records if r.key == b"idle") == [0, 1, 2]


def test_broker_restart_mid_stream_loses_nothing(app: App, local_kafka: Any) -> None:
    if local_kafka is None:
        pytest.skip("needs the test session's own broker to restart it")
    total = 3000
    relay = app.spawn("relay", "--batch", "100")
    consumer = app.spawn("consumer")
    try:
        app.add_events([eventapp.item_event(f"k{i % 5}", i) for i in range(1000)])
        eventually(lambda: app.count(app.effects) > 0, timeout=180, message="first effects")
        local_kafka.stop()
        # Events keep arriving while the broker is down; they wait in the outbox.
        app.add_events([eventapp.item_event(f"k{i % 5}", i) for i in range(1000, 2000)])
        time.sleep(3.0)  # a real outage, not a wait for Kafka
        local_kafka.start()
        app.add_events([eventapp.item_event(f"k{i % 5}", i) for i in range(2000, total)])
        eventually(lambda: app.count(app.outbox_table) == 0, timeout=180, message="outbox drained")
        eventually(
            lambda: caught_up(app.bootstrap, app.group, app.topic),
            timeout=180,
            message="consumer caught up",
        )
    finally:
        if not local_kafka.status().running:
            local_kafka.start()
        stop(relay)
        stop(consumer)
    assert app.count(app.effects) == total
    assert app.distinct_effects() == total


def test_consumer_pauses_while_the_database_is_down_and_resumes(app: App, postgres: Any) -> None:
    if postgres is None:
        pytest.skip("needs the test session's own PostgreSQL to stop it")
    consumer = app.spawn("consumer")
    # Events go straight to Kafka: the database is about to disappear under the consumer.
    producer = make_producer(app.bootstrap, "test-direct")
    events = [eventapp.item_event("k", i) for i in range(400)]
    try:
        for event in events[:200]:
            producer.send(app.topic, key=b"k", value=event.value(), headers=event.headers())
        producer.flush()
        eventually(lambda: app.count(app.effects) == 200, timeout=180, message="first half")
        app.engine.dispose()
        postgres.stop_server()
        for event in events[200:]:
            producer.send(app.topic, key=b"k", value=event.value(), headers=event.headers())
        producer.flush()
        time.sleep(2.0)
        assert consumer.poll() is None, "the consumer crashed while the database was down"
        postgres.start_server()
        eventually(lambda: app.count(app.effects) == 400, timeout=90, message="second half")
        eventually(
            lambda: caught_up(app.bootstrap, app.group, app.topic),
            timeout=180,
            message="offsets committed",
        )
    finally:
        producer.close()
        if os.path.exists(postgres.data / "postmaster.pid") is False:
            postgres.start_server()
        stop(consumer)
    assert app.distinct_effects() == 400 and app.count(app.effects) == 400
    assert sum(end_offsets(app.bootstrap, dead_letter_topic(app.topic, app.group)).values()) == 0


def test_sigterm_lets_the_consumer_finish_its_batch_and_leave_cleanly(app: App) -> None:
    total = 2000
    app.add_events([eventapp.item_event(f"k{i % 3}", i) for i in range(total)])
    relay = app.spawn("relay")
    consumer = app.spawn("consumer", "--delay-ms", "1", "--batch", "300")
    try:
        eventually(lambda: app.count(app.effects) >= 300, timeout=180, message="first batch")
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(timeout=30) == 0, "the consumer did not stop cleanly on SIGTERM"
        applied = app.count(app.effects)
        # Whatever it applied, it committed: a fresh consumer starts where it left off.
        assert applied == app.distinct_effects()
        consumer = app.spawn("consumer", "--batch", "300")
        eventually(
            lambda: (
                caught_up(app.bootstrap, app.group, app.topic) and app.count(app.effects) == total
            ),
            timeout=120,
            message="caught up after the restart",
        )
    finally:
        stop(consumer)
        stop(relay)
    assert app.distinct_effects() == total and app.count(app.effects) == total


def test_rows_kafka_refuses_are_dead_lettered_and_the_rows_behind_them_still_go_out(
    app: App,
) -> None:
    # Written before the outbox capped event sizes, or under a broker with a smaller
    # message.max.bytes. The broker's default (1 MiB) refuses the first for good; the
    # producer's own limit (4 MiB) refuses the second before sending it. Each used to be
    # retried forever, holding back every later event of the service.
    events = [eventapp.item_event(f"k{i % 2}", i) for i in range(6)]
    big, huge = eventapp.item_event("k0", 98), eventapp.item_event("k1", 99)

    def oversized(event: Event, size: int) -> dict[str, Any]:
        pad = b"x" * size
        return {
            "event_id": event.id,
            "topic": app.topic,
            "key": event.key,
            "type": event.type,
            "source": event.source,
            "time": event.time,
            "data": b'{"item_id": "%s", "seq": 9, "pad": "%s"}' % (event.key.encode(), pad),
        }

    with app.engine.begin() as conn:
        app.outbox.add_many(conn, events[:3])
        conn.execute(insert(app.outbox_table).values(oversized(big, 1_500_000)))
        app.outbox.add_many(conn, events[3:5])
        conn.execute(insert(app.outbox_table).values(oversized(huge, 5_000_000)))
        app.outbox.add_many(conn, events[5:])
    relay = OutboxRelay(
        app.engine,
        app.outbox_table,
        lambda: make_producer(app.bootstrap, "test-relay"),
        dead_letter_topic=f"{app.topic}.relay.dlq",
    )
    thread = threading.Thread(target=relay.run)
    thread.start()
    try:
        eventually(lambda: app.count(app.outbox_table) == 0, timeout=180, message="outbox drained")
    finally:
        relay.stop()
        thread.join(timeout=30)
    assert relay.published == 6 and relay.dead_lettered == 2
    records = read_all(app.bootstrap, app.topic, timeout=60)
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        by_key[record.key].append(json.loads(record.value)["seq"])
    # In order, by first appearance: rows acknowledged behind a refused one are published
    # again (consumers drop repeats by event id).
    assert {key: list(dict.fromkeys(seqs)) for key, seqs in by_key.items()} == {
        b"k0": [0, 2, 4],
        b"k1": [1, 3, 5],
    }
    dead = read_all(app.bootstrap, f"{app.topic}.relay.dlq", expected=2, timeout=60)
    headers = [headers_of(record) for record in dead]
    assert [h["ce_id"] for h in headers] == [big.id, huge.id]
    assert all(h["kinship_origin_topic"] == app.topic for h in headers)
    assert all(h["kinship_error_class"] == "MessageSizeTooLargeError" for h in headers)
    assert all(int(h["kinship_value_bytes"]) > 1_500_000 for h in headers)
    assert [record.value for record in dead] == [b"", b""]  # Kafka would refuse them again


def test_the_relays_batches_stop_at_their_byte_limit_and_keep_the_order(app: App) -> None:
    """A relay holds its batch whole: rows are cut after the one reaching max_batch_bytes, and
    a row over the limit on its own still goes (alone)."""
    sizes = [400] * 3 + [2500] + [400] * 3
    rows = []
    for seq, size in enumerate(sizes):
        event = eventapp.item_event("k", seq)
        head = b'{"item_id": "k", "seq": %d, "pad": "' % seq
        rows.append({
            "event_id": event.id, "topic": app.topic, "key": event.key, "type": event.type,
            "source": event.source, "time": event.time,
            "data": head + b"x" * (size - len(head) - 2) + b'"}',
        })  # fmt: skip
    with app.engine.begin() as conn:
        for row in rows:  # one by one: ids in this order
            conn.execute(insert(app.outbox_table).values(row))
    relay = OutboxRelay(
        app.engine,
        app.outbox_table,
        lambda: make_producer(app.bootstrap, "test-relay"),
        batch_size=100,
        max_batch_bytes=1000,
    )
    batches = []
    with app.engine.connect() as conn:
        while published := relay.publish_batch(conn):
            batches.append(published)
    assert batches == [3, 1, 3]  # 400 x 3 reaches 1,000; 2,500 alone; the rest
    records = read_all(app.bootstrap, app.topic, expected=len(sizes), timeout=60)
    assert [len(record.value) for record in records] == sizes
    assert [json.loads(record.value)["seq"] for record in records] == list(range(len(sizes)))
    assert sum(end_offsets(app.bootstrap, app.topic).values()) == len(sizes)


def test_records_of_partitions_assigned_while_the_database_is_down_are_not_skipped(
    app: App, postgres: Any
) -> None:
    # A runner waiting for the database polls with its partitions paused; a rebalance meanwhile
    # hands it partitions in a fresh, unpaused state, and that poll returns their records. It
    # used to drop them, then go on past them once the database was back: never applied.
    if postgres is None:
        pytest.skip("needs the test session's own PostgreSQL to stop it")
    engines = [make_engine(app.db), make_engine(app.db)]
    first, second = (_runner(app, eventapp.effect_handler(app.effects)) for _ in range(2))
    first.engine, second.engine = engines
    producer = make_producer(app.bootstrap, "test-direct")
    events = [eventapp.item_event(f"k{i % 12}", i) for i in range(120)]
    threads = [threading.Thread(target=first.run)]
    threads[0].start()
    try:
        for event in events[:60]:
            producer.send(
                app.topic, key=event.key.encode(), value=event.value(), headers=event.headers()
            )
        producer.flush()
        eventually(lambda: app.count(app.effects) == 60, timeout=180, message="first half")
        for engine in [app.engine, *engines]:
            engine.dispose()
        postgres.stop_server()
        for event in events[60:]:
            producer.send(
                app.topic, key=event.key.encode(), value=event.value(), headers=event.headers()
            )
        producer.flush()
        time.sleep(2.0)  # the first runner meets the outage and waits, its partitions paused
        threads.append(threading.Thread(target=second.run))
        threads[1].start()
        eventually(
            lambda: bool(second._consumer is not None and second._consumer.assignment()),
            timeout=180,
            message="the second runner took partitions",
        )
        time.sleep(2.0)
        second.stop()  # its partitions go back to the first runner, which still waits
        threads[1].join(timeout=30)
        assert first._consumer is not None
        eventually(
            lambda: len(first._consumer.assignment()) == 6,  # type: ignore[union-attr]
            timeout=180,
            message="the first runner has every partition again",
        )
        time.sleep(6.0)  # at least one of its waiting polls (at most 5 s apart) fetches them
        postgres.start_server()
        eventually(lambda: app.count(app.effects) == 120, timeout=90, message="second half")
        eventually(
            lambda: caught_up(app.bootstrap, app.group, app.topic),
            timeout=180,
            message="offsets committed",
        )
    finally:
        producer.close()
        if not (postgres.data / "postmaster.pid").exists():
            postgres.start_server()
        first.stop()
        second.stop()
        for thread in threads:
            thread.join(timeout=30)
        for engine in engines:
            engine.dispose()
    assert app.distinct_effects() == 120 and app.count(app.effects) == 120


def _polled_until(runner: ConsumerRunner, condition: Callable[[], bool], message: str) -> None:
    """Drive a runner's loop by hand (as run() does) until condition holds."""
    eventually(lambda: runner.poll_once() or condition(), timeout=60, message=message)


def test_a_runner_commits_only_the_partitions_it_owns_and_makes_a_lost_commit_again(
    app: App,
) -> None:
    # The broker takes a commit for any partition of the group: a batch finished after a
    # rebalance took a partition away, or the commit made when the runner stops, would rewind
    # the new owner's progress. And a lost asynchronous commit (the coordinator moved) is made
    # again by the next idle poll, or the group's lag stays above zero until the next record.
    first, second = (_runner(app, eventapp.effect_handler(app.effects)) for _ in range(2))
    every = [TopicPartition(app.topic, p) for p in range(3)]
    ensure_topics(app.bootstrap, first.all_topics())
    first._join([app.topic, *first._retry_topics])  # as run() does
    thread = threading.Thread(target=second.run)

    def owned() -> set[TopicPartition]:
        assert first._consumer is not None
        return {tp for tp in first._consumer.assignment() if tp.topic == app.topic}

    try:
        _polled_until(first, lambda: len(owned()) == 3, "alone")
        thread.start()
        _polled_until(first, lambda: 0 < len(owned()) < 3, "the second runner took partitions")
        mine = owned()
        first._commit(dict.fromkeys(every, 6))  # a batch that spanned the rebalance
        first._commit(dict(first._committed), wait=True)  # the runner stops
        assert committed_offsets(app.bootstrap, app.group, app.topic) == {
            tp.partition: 6 for tp in mine
        }

        first._committed = dict.fromkeys(every, 8)  # where it got to, the others' places too
        for _ in range(2):
            first.poll_once()
        assert committed_offsets(app.bootstrap, app.group, app.topic) == {
            tp.partition: 6 for tp in mine
        }  # nothing was lost: an idle poll commits nothing
        first._commit_answered({}, KafkaError("coordinator moved"))  # kafka-python's callback
        eventually(
            lambda: (
                first.poll_once()
                or committed_offsets(app.bootstrap, app.group, app.topic)
                == {tp.partition: 8 for tp in mine}
            ),
            timeout=60,
            message="the lost commit made again, for the owned partitions only",
        )
    finally:
        second.stop()
        if thread.is_alive():
            thread.join(timeout=30)
        first._consumer.close(autocommit=False)  # type: ignore[union-attr]


def test_a_long_wait_for_the_database_restarts_the_parked_events_clock(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parked events count as lost an hour after they are due, counted while the consumer
    # runs: a database outage is not running, or a key's next event would overtake them. And
    # nothing is fetched while it waits, nor left paused after.
    paused: list[bool] = []
    back = time.monotonic() + 1.0

    def database_ready(engine: Engine) -> bool:
        consumer = runner._consumer
        assert consumer is not None
        paused.append(consumer.paused() == consumer.assignment())
        return time.monotonic() > back

    monkeypatch.setattr("shared.consumer.database_ready", database_ready)
    runner = _runner(app, eventapp.effect_handler(app.effects))
    runner._join(runner.topics)
    try:
        _polled_until(runner, lambda: len(runner._consumer.assignment()) == 3, "assigned")  # type: ignore[union-attr]
        runner.running_since -= timedelta(hours=3)  # it started long before the outage
        before = runner.running_since
        runner._wait_for_database(_Batch())
        assert len(paused) >= 2 and all(paused)
        assert runner._consumer.paused() == set()  # type: ignore[union-attr]
        assert runner.running_since - before > timedelta(hours=2)
    finally:
        runner._consumer.close(autocommit=False)  # type: ignore[union-attr]


def test_an_operator_redrives_dead_letters_once_the_cause_is_fixed(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead-lettered event is a signer never thanked until someone acts: `kinship dlq list`
    shows what failed and why (never its data), `kinship dlq redrive` sends it back to its
    topic once the cause is fixed; it applies once, the events handled already stay handled,
    and a second redrive sends nothing."""
    from click.testing import CliRunner

    from shared.cli.main import cli

    broken = {"on": True}
    apply = eventapp.effect_handler(app.effects)

    def handler(event: Event, conn: Any) -> None:
        if event.data["seq"] == 2 and broken["on"]:
            raise ValueError("a setting was wrong")
        apply(event, conn)

    runner = _runner(app, handler, retry=RetryPolicy(max_attempts=1, base_delay=0.1))
    thread = threading.Thread(target=runner.run)
    thread.start()
    dlq = dead_letter_topic(app.topic, app.group)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", app.bootstrap)
    try:
        app.add_events([eventapp.item_event("k", i) for i in range(5)])
        _publish_all(app)
        eventually(lambda: sum(end_offsets(app.bootstrap, dlq).values()) == 1, timeout=180,
                   message="one dead letter")  # fmt: skip
        eventually(lambda: app.count(app.effects) == 4, message="the others applied")
        listed = CliRunner().invoke(cli, ["dlq", "list", dlq])
        assert listed.exit_code == 0, listed.output
        [line] = listed.output.strip().splitlines()
        assert eventapp.ITEM_CREATED in line and "ValueError" in line
        assert '"seq"' not in line  # the event's data stays in Kafka
        assert f"{dlq}\t1" in CliRunner().invoke(cli, ["dlq", "list"]).output
        broken["on"] = False  # the fix is deployed
        # A stub: an event the broker refused as too large, dead-lettered without its value.
        # There is nothing to send back; an empty record would be dead-lettered again by
        # every group on the topic, and counted as redriven.
        stub_producer = make_producer(app.bootstrap, "test-stub")
        stub_headers = [(H_ORIGIN_TOPIC, app.topic.encode()), (H_VALUE_BYTES, b"2000000"),
                        ("ce_type", eventapp.ITEM_CREATED.encode())]  # fmt: skip
        stub_producer.send(dlq, key=b"k", value=b"", headers=stub_headers).get(timeout=30)
        stub_producer.close()
        before = sum(end_offsets(app.bootstrap, app.topic).values())
        redriven = CliRunner().invoke(cli, ["dlq", "redrive", dlq])
        assert redriven.exit_code == 0, redriven.output
        assert "1 redriven, 1 without a value" in redriven.output, redriven.output
        assert sum(end_offsets(app.bootstrap, app.topic).values()) == before + 1
        eventually(lambda: app.count(app.effects) == 5, message="the dead letter applied")
        again = CliRunner().invoke(cli, ["dlq", "redrive", dlq])
        assert "0 redriven" in again.output
        time.sleep(1.0)
    finally:
        runner.stop()
        thread.join(timeout=30)
    assert app.distinct_effects() == 5 and app.count(app.effects) == 5
    missing = CliRunner().invoke(cli, ["dlq", "redrive", "kinship.nowhere.dlq"])
    assert missing.exit_code == 1
