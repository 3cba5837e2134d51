"""The outbox relay: publishes committed outbox rows to Kafka, in order, then deletes them.

Only one relay per database publishes at a time: it holds a PostgreSQL session advisory lock
(SQLite: an exclusive file lock) on the connection it reads the outbox with, so a second relay
waits as a hot standby and takes over within a second of the first one dying. A relay killed
after Kafka acknowledged a batch but before deleting it republishes that batch when it comes
back; consumers drop the repeats by event id.

A row the broker refuses for good (too large, say) would otherwise be retried forever and hold
back every later event of the service: it goes to ``kinship.outbox.dlq`` with its error, and the
relay goes on with the rows behind it, in order.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError
from sqlalchemy import Connection, Engine, Table, delete, func, select, text

from shared.consumer import H_ERROR, H_ERROR_CLASS, H_FAILED_AT, H_ORIGIN_TOPIC
from shared.events.envelope import CONTENT_TYPE, SPEC_VERSION, format_time, utcnow
from shared.kafka import H_VALUE_BYTES, REFUSED, TOO_LARGE, close_quietly, ensure_topics, refused
from shared.logging import error_text
from shared.outbox import NOTIFY_CHANNEL
from shared.pacing import CommitListener

log = logging.getLogger(__name__)
ProducerFactory = Callable[[], KafkaProducer]
DEAD_LETTER_TOPIC = "kinship.outbox.dlq"


class LeaderLock(Protocol):
    """Held by the one relay that may publish; released when its process or connection dies."""

    def try_acquire(self, conn: Connection) -> bool:
        """Try once, without blocking; return True when this process now holds the lock."""

    def release(self, conn: Connection) -> None:
        """Give the lock up (best effort; a dead connection has released it already)."""


# PostgreSQL frees a session's locks when it sees the session gone: at once for a process that
# died (its socket closed), but for a host that vanished (powered off, cut off) only when TCP
# gives up on it, two hours by the kernel's defaults, with every standby waiting meanwhile.
# The server's keepalives for the session, set by the session, make it about half a minute.
KEEPALIVES = {
    "tcp_keepalives_idle": 10,
    "tcp_keepalives_interval": 5,
    "tcp_keepalives_count": 3,
    "tcp_user_timeout": 25_000,  # milliseconds: unacknowledged data, as when sending
}
# The try's answer is the first column (scalar() reads it); the settings come after it.
_TRY_LOCK = text(
    "SELECT pg_try_advisory_lock(:k)"
    + "".join(f", set_config('{name}', '{int(v)}', false)" for name, v in KEEPALIVES.items())
)


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock."""

    def __init__(self, name: str) -> None:
        self.key = zlib.crc32(name.encode())

    def try_acquire(self, conn: Connection) -> bool:
        # The keepalives and the try in one round trip (a standby tries every second).
        got = conn.execute(_TRY_LOCK, {"k": self.key}).scalar()
        conn.commit()
        return bool(got)

    def release(self, conn: Connection) -> None:
        """Unlock; a session that cannot (its transaction aborted by the error that ended the
        leader's run) is closed, which releases its locks, and never goes back to the pool."""
        try:
            conn.rollback()  # an aborted transaction refuses every statement, the unlock too
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            conn.commit()
        except Exception:
            # Back in the pool still holding the lock, it kept every relay (this one included)
            # a standby until the pool recycled the connection, up to half an hour.
            conn.invalidate()
            raise


class FileLock:
    """An exclusive flock beside a SQLite database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self, conn: Connection) -> bool:
        import os

        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self, conn: Connection) -> None:
        import os

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_for(engine: Engine, name: str) -> LeaderLock:
    """Return the leader lock that suits the engine's database."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(name)
    database = engine.url.database or "memory"
    return FileLock(Path(f"{database}.{name}.lock"))


def record_headers(row: Any) -> list[tuple[str, bytes]]:
    headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", row.event_id.encode()),
        ("ce_source", row.source.encode()),
        ("ce_type", row.type.encode()),
        ("ce_time", format_time(row.time).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if row.subject:
        headers.append(("ce_subject", row.subject.encode()))
    return headers


class OutboxRelay:
    """Moves outbox rows to Kafka in id order, in batches, with the idempotent producer."""

    def __init__(
        self,
        engine: Engine,
        table: Table,
        producer_factory: ProducerFactory,
        *,
        batch_size: int = 1000,
        max_batch_bytes: int = 16 * 1024 * 1024,
        idle_sleep: float = 0.05,
        idle_ceiling: float = 1.0,
        linger: float = 0.02,
        lock: LeaderLock | None = None,
        flush_timeout: float = 30.0,
        dead_letter_topic: str = DEAD_LETTER_TOPIC,
    ) -> None:
        self.engine = engine
        self.table = table
        self.producer_factory = producer_factory
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        # The first batch_size rows, cut after the row that reaches max_batch_bytes (the first
        # row always goes): the relay holds a batch whole, and at MAX_EVENT_BYTES a row a
        # thousand rows could be 900 MB. The sizes are summed by the database, over those rows
        # only (PostgreSQL reads a bytea's length without detoasting it).
        head = select(table).order_by(table.c.id).limit(batch_size).subquery()
        size = func.length(head.c.data)
        ahead = (func.sum(size).over(order_by=head.c.id) - size).label("ahead")
        sized = select(head, ahead).subquery()
        self._next_rows = (
            select(*(sized.c[column.name] for column in table.columns))
            .where(sized.c.ahead < max_batch_bytes)
            .order_by(sized.c.id)
        )
        # Between empty looks: idle_sleep where nothing signals new rows (SQLite); on
        # PostgreSQL the outbox's trigger NOTIFYs each commit, and the relay waits for it, or
        # idle_ceiling at most.
        self.idle_sleep = idle_sleep
        self.idle_ceiling = idle_ceiling
        self._listener: CommitListener | None = None
        # After a partial batch, let rows gather a moment: under a steady trickle of requests
        # each cycle (select, produce, wait for the acks, delete, commit) otherwise carried a
        # handful of rows and the relay spent more CPU per event than the request that made it.
        self.linger = linger
        self.lock = lock or lock_for(engine, f"{table.name}-relay")
        self.flush_timeout = flush_timeout
        self.dead_letter_topic = dead_letter_topic
        self._dead_letter_ready = False
        self._stop = threading.Event()
        self._producer: KafkaProducer | None = None
        self.published = 0
        self.dead_lettered = 0

    def stop(self) -> None:
        """Ask the relay to finish its current batch and return from run()."""
        self._stop.set()
        listener = self._listener
        if listener is not None:
            listener.interrupt()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _get_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self.producer_factory()
        return self._producer

    def _drop_producer(self) -> None:
        close_quietly(self._producer)
        self._producer = None

    def publish_batch(self, conn: Connection) -> int:
        """Publish one batch of committed rows; return how many were published (or moved to the
        dead-letter topic) and deleted."""
        table = self.table
        rows = conn.execute(self._next_rows).all()
        conn.commit()
        if not rows:
            return 0
        done, failure = self._send(rows)
        dead = []
        if refused(failure):
            # kafka-python fails every record still pending in the idempotent producer behind
            # one the broker refuses for good (a fatal error of that producer): a new producer
            # sends the first unacknowledged row alone to tell whether it is the one.
            self._drop_producer()
            row = rows[len(done)]
            alone, failure = self._send([row])
            done += alone
            if refused(failure):
                self._dead_letter(row, failure)
                dead.append(row.id)
                failure = None
        if done or dead:
            conn.execute(delete(table).where(table.c.id.in_(done + dead)))
            conn.commit()
        self.published += len(done)
        if failure is not None:
            self._drop_producer()
            raise KafkaError(f"outbox publish failed after {len(done)} rows: {failure}")
        return len(done) + len(dead)

    def _send(self, rows: Sequence[Any]) -> tuple[list[Any], BaseException | None]:
        """Send rows in order; return the ids of the acknowledged prefix and the first failure."""
        producer = self._get_producer()
        futures = []
        failure: BaseException | None = None
        for row in rows:
            try:
                futures.append(
                    producer.send(
                        row.topic,
                        key=row.key.encode(),
                        value=bytes(row.data),
                        headers=record_headers(row),
                    )
                )
            except REFUSED as exc:  # over the producer's own max_request_size: never sent
                failure = exc
                break
        producer.flush(timeout=self.flush_timeout)
        # Delete only the prefix Kafka acknowledged: a gap would let a later event overtake.
        done = []
        for row, future in zip(rows, futures, strict=False):
            if not future.is_done or future.failed():
                failure = future.exception if future.is_done else TimeoutError("not acknowledged")
                break
            done.append(row.id)
        return done, failure

    def _dead_letter(self, row: Any, exc: BaseException) -> None:
        """Put a row the broker refused on the dead-letter topic, with its error in headers (its
        value too, unless its size is what was refused); raise KafkaError if that fails."""
        self._drop_producer()  # the refusal was fatal to the producer that sent the row
        producer = self._get_producer()
        if not self._dead_letter_ready:
            bootstrap = producer.config["bootstrap_servers"]
            # The broker's default replication; one partition keeps the dead rows in order.
            ensure_topics(bootstrap, [self.dead_letter_topic], 1, replication_factor=-1)
            self._dead_letter_ready = True
        size = len(row.data)
        headers = record_headers(row) + [
            (H_ORIGIN_TOPIC, row.topic.encode()),
            (H_ERROR, error_text(exc).encode()),
            (H_ERROR_CLASS, type(exc).__name__.encode()),
            (H_FAILED_AT, utcnow().isoformat().encode()),
            (H_VALUE_BYTES, str(size).encode()),
        ]
        too_large = isinstance(exc, TOO_LARGE)
        value = b"" if too_large else bytes(row.data)
        future = producer.send(
            self.dead_letter_topic, key=row.key.encode(), value=value, headers=headers
        )
        producer.flush(timeout=self.flush_timeout)
        if not future.is_done or future.failed():
            raise KafkaError(f"outbox row not dead-lettered: {future.exception}")
        self.dead_lettered += 1
        # Ids, type and sizes only: the event's data and key stay out of the logs.
        log.error(
            "outbox row refused by kafka, dead-lettered",
            extra={
                "event_id": row.event_id,
                "event_type": row.type,
                "topic": row.topic,
                "bytes": size,
                "error_class": type(exc).__name__,
                "dead_letter_topic": self.dead_letter_topic,
            },
        )

    def run(self) -> None:
        """Publish until stop() is called; wait as a standby while another relay leads."""
        if self.engine.dialect.name == "postgresql":
            self._listener = CommitListener(self.engine, NOTIFY_CHANNEL)
        try:
            self._run()
        finally:
            listener, self._listener = self._listener, None
            if listener is not None:
                listener.close()

    def _run(self) -> None:
        backoff = 0.5
        while not self.stopping:
            try:
                with self.engine.connect() as conn:
                    if not self.lock.try_acquire(conn):
                        self._stop.wait(1.0)
                        continue
                    log.info("outbox relay is the leader", extra={"table": self.table.name})
                    try:
                        self._lead(conn)
                    finally:
                        try:
                            self.lock.release(conn)
                        except Exception:  # noqa: BLE001 - the connection may be gone
                            log.debug("lock release failed", exc_info=True)
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - keep relaying through outages
                reason = error_text(exc, 300)  # the host refused, a bad password: never row data
                log.warning("outbox relay paused", extra={"error": reason, "retry_in": backoff})
                self._drop_producer()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self._drop_producer()

    def _lead(self, conn: Connection) -> None:
        while not self.stopping:
            published = self.publish_batch(conn)
            if published == 0:
                self._idle()
            elif published < self.batch_size and self.linger > 0:
                self._stop.wait(self.linger)

    def _idle(self) -> None:
        listener = self._listener
        if listener is None:
            self._stop.wait(self.idle_sleep)
        elif not self.stopping:
            listener.wait(self.idle_ceiling)
            # Woken by one commit: let the commits right behind it join the same batch, as
            # after a partial batch, rather than publish each request's events on their own.
            if self.linger > 0:
                self._stop.wait(self.linger)
