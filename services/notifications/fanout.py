"""Alert fan-out: the expander, the dispatch senders, the queue poller and progress reports.

The expander streams an alert's audience with a server-side cursor and writes one
`email_batch.queued` or `sms_batch.queued` event per slice (up to 1,000 email or `sms_batch_size`
SMS recipients) to the outbox, with its per-channel resume point, in one transaction: a restarted
expander goes on from where the last committed slice ended. Each channel's senders consume that
channel's dispatch topic, one Kafka consumer per thread, and commit a record's offset only after
every row of its batch has an outcome in the ledger.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Connection, select, update

from services.notifications import audience, compliance, ledger, preferences
from services.notifications.bootstrap import SOURCE, Deps
from services.notifications.delivery import Busy, ClaimLost, Deliverer, ProviderDown, Stopped
from services.notifications.domain import TokenBucket
from services.notifications.senders import CredentialsRefused
from services.notifications.store import alerts, idempotency_keys
from shared.consumer import dead_letter_headers
from shared.db import is_transient_error
from shared.errors import InvalidEvent
from shared.events import Event
from shared.events.catalog import CATALOG, CHANNELS, DISPATCH_TOPICS, sender_group, type_name
from shared.events.envelope import decode, format_time, utcnow
from shared.idempotency import ExpiredKeys
from shared.kafka import (
    ConsumerSpinning,
    SpinGuard,
    dead_letter_topic,
    ensure_topics,
    make_consumer,
    make_producer,
)
from shared.pacing import Pacer, Periodic
from shared.relay import lock_for

log = logging.getLogger(__name__)
BATCH_TYPES = {channel: type_name(f"{channel}_batch.queued") for channel in CHANNELS}


class Expander:
    """Turns published alerts into dispatch batches; one leader per database."""

    def __init__(self, deps: Deps, idle: float = 0.5) -> None:
        self.deps = deps
        self.idle = idle
        self._stop = threading.Event()
        self._due = threading.Event()
        self.lock = lock_for(deps.engine, "nf-expander")

    def stop(self) -> None:
        self._stop.set()
        self._due.set()

    def wake(self) -> None:
        """Look for due alerts now (one was just recorded) instead of at the next poll."""
        self._due.set()

    def run(self) -> None:
        """Expand due alerts until stopped; wait as a standby while another expander leads."""
        while not self._stop.is_set():
            try:
                with self.deps.engine.connect() as lock_conn:
                    if not self.lock.try_acquire(lock_conn):
                        self._stop.wait(1.0)
                        continue
                    try:
                        while not self._stop.is_set():
                            self._due.clear()  # a wake from here on means: look again
                            if not self.expand_next():
                                self._due.wait(self.idle)
                    finally:
                        try:
                            self.lock.release(lock_conn)
                        except Exception:  # noqa: BLE001 - the connection may be gone
                            log.debug("expander lock release failed", exc_info=True)
            except Exception as exc:  # noqa: BLE001 - keep expanding through outages
                log.warning("expander paused", extra={"error": type(exc).__name__})
                self._stop.wait(1.0)

    def expand_next(self) -> bool:
        """Expand one due alert completely; return False when none is due."""
        now = self.deps.clock()
        with self.deps.engine.connect() as conn:
            row = conn.execute(
                select(alerts)
                .where(alerts.c.status == "expanding")
                .where((alerts.c.send_at.is_(None)) | (alerts.c.send_at <= now))
                .order_by(alerts.c.created_at)
                .limit(1)
            ).first()
        if row is None:
            return False
        self.expand(row)
        return True

    def expand(self, alert: Any) -> None:
        """Stream the audience after the resume points; write slices with their resume points."""
        config = self.deps.config
        channels = [c for c in alert.channels if c in ("email", "sms")]
        checkpoints: dict[str, str | None] = dict.fromkeys(channels)
        saved = alert.checkpoint or ""
        for part in saved.split("|") if saved else []:
            channel, _, last = part.partition("=")
            if channel in checkpoints:
                checkpoints[channel] = last or None
        size = {"email": config.email_batch_size, "sms": config.sms_batch_size}
        buffers: dict[str, list[str]] = {c: [] for c in channels}
        seq = int(alert.batches or 0)
        starts = [v for v in checkpoints.values()]
        after = None if any(v is None for v in starts) else min(v for v in starts if v)
        interested = audience.interest_filter(alert.audience or {})
        for rows in self._audience_slices(alert, after):
            for sid, email_ok, sms_ok, interests in rows:
                if not interested(interests):
                    continue
                for channel, ok in (("email", email_ok), ("sms", sms_ok)):
                    if channel not in buffers or not ok:
                        continue
                    last = checkpoints[channel]
                    if last is not None and sid <= last:
                        continue
                    buffers[channel].append(sid)
                    if len(buffers[channel]) >= size[channel]:
                        seq += 1
                        self._flush(alert, channel, buffers[channel], seq, checkpoints)
                        buffers[channel] = []
            if self._stop.is_set():
                return  # resumes from the saved points
            if self._cancelled(alert.alert_id):
                return
        for channel, members in buffers.items():
            if members:
                seq += 1
                self._flush(alert, channel, members, seq, checkpoints)
        with self.deps.engine.begin() as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.alert_id == alert.alert_id, alerts.c.status == "expanding")
                .values(status="sending", version=alerts.c.version + 1)
            )
        log.info("alert expanded", extra={"alert_id": alert.alert_id, "batches": seq})

    def _audience_slices(self, alert: Any, after: str | None) -> Iterator[Sequence[Any]]:
        """Yield an alert's audience after `after`, in supporter order, in slices of rows
        (supporter_id, email_ok, sms_ok, interests), from a server-side cursor: the audience
        streams through, never all in memory.

        It is read twice over. The head, planned to start at once (index scans), keeps the
        senders busy while PostgreSQL prepares the rest with the plan cheapest for reading
        everything (hash joins and a sort): for a million supporters that plan costs 2.6 s of
        CPU instead of 7-8, but returns its first row only after 2.2 s (docs/runtime-facts.md).
        """
        head = self.deps.config.expander_head_rows
        for whole in (False, True):
            query = audience.audience_query(
                alert.campaign_id, alert.organization_id, alert.audience or {}, after
            )
            count = 0
            with self.deps.engine.connect() as read:
                if whole and read.dialect.name == "postgresql":
                    read.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
                elif not whole:
                    query = query.limit(head)
                options = read.execution_options(stream_results=True, yield_per=2000)
                for rows in options.execute(query).partitions():
                    count += len(rows)
                    after = rows[-1][0]
                    yield rows
            if not whole and count < head:
                return  # the head held everyone left: no need to plan for the rest

    def _cancelled(self, alert_id: str) -> bool:
        with self.deps.engine.connect() as conn:
            status = conn.execute(
                select(alerts.c.status).where(alerts.c.alert_id == alert_id)
            ).scalar()
        return status == "cancelled"

    def _flush(
        self,
        alert: Any,
        channel: str,
        members: list[str],
        seq: int,
        checkpoints: dict[str, str | None],
    ) -> None:
        checkpoints[channel] = members[-1]
        saved = "|".join(f"{c}={v or ''}" for c, v in checkpoints.items())
        event = Event(
            type=BATCH_TYPES[channel],
            key=f"{alert.alert_id}:{seq}",
            source=SOURCE,
            subject=channel,
            data={
                "batch_id": f"{alert.alert_id}:{seq}",
                "alert_id": alert.alert_id,
                "campaign_id": alert.campaign_id,
                "organization_id": alert.organization_id,
                "channel": channel,
                "seq": seq,
                "supporter_ids": members,
                "at": format_time(utcnow()),
            },
        )
        with self.deps.engine.begin() as conn:
            # Slice `seq` follows slice seq - 1, or another expander wrote it: its lock's
            # session died (a dropped idle connection, a failover) and a standby took the lead
            # while this one went on. Both writing it counted the audience twice over, and the
            # alert never reached done. The row lock serializes them; the loser stops here.
            taken = conn.execute(
                update(alerts)
                .where(alerts.c.alert_id == alert.alert_id, alerts.c.batches == seq - 1)
                .values(checkpoint=saved)
            ).rowcount
            if taken != 1:
                raise LeadLost(f"slice {seq} of an alert was written by another expander")
            self.deps.outbox.add(conn, event)
            ledger.bump(conn, alert.alert_id, total=len(members), batches=1)


class LeadLost(Exception):
    """Another expander leads now: this one stops, and waits as a standby."""


class DispatchSender:
    """Consumes one channel's dispatch topic and sends each batch through the ledger.

    Finished batches' offsets are committed together, at most once per `commit_interval` and
    when the sender stops. A batch delivered again (after a crash, or to the next owner of its
    partition after a rebalance) is harmless: the ledger says its rows are done, and nothing is
    sent. A commit per batch was a synchronous round trip for the sender and a write to the
    offsets log for the broker, a thousand of each for a million recipients. (kafka-python 3
    runs rebalance listeners on its IO thread, where a blocking commit is refused.)
    """

    commit_interval = 1.0

    def __init__(
        self,
        deps: Deps,
        channel: str,
        name: str,
        bucket: TokenBucket | None = None,
        group: str = "notifications",
    ) -> None:
        self.deps = deps
        self.channel = channel
        self.topic = DISPATCH_TOPICS[channel]
        self.group = sender_group(group, channel)
        self.name = name
        self._stop = threading.Event()
        self.deliverer = Deliverer(deps, self._stop)
        self.bucket = bucket
        self._producer: KafkaProducer | None = None
        self.stats = {"batches": 0, "dead": 0, "replaced": 0}
        self._spin_guard = SpinGuard()
        self._finished: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        self._committed_at = time.monotonic()
        # How often each record failed so far (DispatchSender._after_failure), by its place:
        # several failing batches take turns at the head of their partitions.
        self._failing: dict[tuple[str, int, int], int] = {}

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        bootstrap = self.deps.settings.kafka_bootstrap_servers
        ensure_topics(
            bootstrap,
            # Both channels' topics: the relay publishes an alert's batches of each channel
            # whether or not that channel's senders have started.
            [*DISPATCH_TOPICS.values(), dead_letter_topic(self.topic, self.group)],
            self.deps.config.dispatch_partitions,
            self.deps.settings.kafka_replication_factor,
        )
        consumer = self._new_consumer(bootstrap)
        backoff = 0.25
        try:
            while not self._stop.is_set():
                try:
                    self.poll_once(consumer)
                    backoff = 0.25
                except KafkaError as exc:
                    # The broker is away (restarting, unreachable): nothing of the batch in
                    # hand was committed, so wait and poll again, as the consumer runner does.
                    log.warning(
                        "kafka unavailable, dispatch sender waiting",
                        extra={
                            "group": self.group,
                            "sender": self.name,
                            "error": type(exc).__name__,
                        },
                    )
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                except ConsumerSpinning as exc:
                    log.warning(
                        "dispatch consumer spinning, replaced",
                        extra={"group": self.group, "sender": self.name, "error": str(exc)},
                    )
                    self.stats["replaced"] += 1
                    self.commit_finished(consumer, final=True)
                    consumer.close(autocommit=False)
                    consumer = self._new_consumer(bootstrap)
        finally:
            log.info("dispatch sender stopped", extra={"group": self.group, **self.stats})
            self.commit_finished(consumer, final=True)
            consumer.close(autocommit=False)
            if self._producer is not None:
                self._producer.close(timeout=10)

    def _new_consumer(self, bootstrap: str) -> KafkaConsumer:
        consumer = make_consumer(
            bootstrap,
            self.group,
            f"{self.group}-{self.name}",
            max_poll_records=1,
            # A slow SMS batch or a long provider backoff must not cost the partition.
            max_poll_interval_ms=900_000,
            # fetch_max_wait_ms stays at the shared 500 ms: an idle sender fetches twice a
            # second, not ten times as at the 100 ms used until session 10, which cost the
            # broker ~6 % of a core more and the senders ~5 % more at rest, and in every phase
            # through the channel not sending. The "stall" that 100 ms was for was a spinning
            # consumer starving its sibling threads; SpinGuard now replaces such a consumer.
        )
        consumer.partitions_for_topic(self.topic)  # metadata first, as ConsumerRunner does
        consumer.subscribe([self.topic])
        return consumer

    def poll_once(self, consumer: KafkaConsumer) -> None:
        batch = self._spin_guard.poll(consumer.poll, timeout_ms=200, max_records=1)
        for tp, records in batch.items():
            for record in records:
                try:
                    self.handle(record)
                except Stopped:
                    return  # not committed: the next owner takes the batch up where it stands
                except CredentialsRefused as exc:
                    # Every batch would fail the same way: wait for an operator, fail nothing.
                    consumer.seek(tp, record.offset)
                    pause_for_credentials(self.deps, self._stop, exc)
                    return
                except ProviderDown as exc:
                    # The provider's incident, not the batch's: every batch would fail the
                    # same way. Its rows are queued again; wait, then take it up again.
                    consumer.seek(tp, record.offset)
                    log.warning(
                        "provider unavailable; sending paused",
                        extra={"error": str(exc), "group": self.group},
                    )
                    self._stop.wait(self.deps.config.provider_pause_seconds)
                    return
                except (Busy, ClaimLost):
                    # A worker that lost this partition in a rebalance is still sending it, or
                    # took rows of it over from this one during a long backoff.
                    consumer.seek(tp, record.offset)
                    self._stop.wait(1.0)
                    return
                except Exception as exc:  # noqa: BLE001 - retried, and given up if it is ours
                    wait = self._after_failure(record, exc)
                    if wait is not None:
                        log.warning(
                            "dispatch batch interrupted, will retry",
                            extra={"error": type(exc).__name__, "group": self.group},
                        )
                        consumer.seek(tp, record.offset)
                        self._stop.wait(wait)
                        return
                self._failing.pop((record.topic, record.partition, record.offset), None)
                self._finished[tp] = record.offset + 1
        if time.monotonic() - self._committed_at >= self.commit_interval:
            self.commit_finished(consumer)

    def handle(self, record: Any) -> None:
        """Send one dispatch record; once this returns, its offset may be committed."""
        try:
            event = decode(record.key, record.value, record.headers)
            CATALOG.check_incoming(event)
        except InvalidEvent as exc:
            self._dead_letter(record, exc)
            return
        if event.type != BATCH_TYPES[self.channel] or event.data.get("channel") != self.channel:
            wrong = InvalidEvent(f"not a batch for the {self.channel} senders: {event.type}")
            self._dead_letter(record, wrong)
            return
        if self.channel == "email":
            self.deliverer.send_alert_email_batch(event.data)
        else:
            assert self.bucket is not None
            self.deliverer.send_alert_sms_batch(event.data, self.bucket)
        self.stats["batches"] += 1
        self.deliverer.batch_finished(str(event.data["batch_id"]))
        # A batch that died was recorded and counted with its failed deliveries. Checked on
        # every delivery of the batch, not only when this send saw it die: a sender stopped, or
        # cut off from the broker, before its dead-letter write sees the batch back with
        # nothing left to send, and finishes here.
        batch_id = str(event.data["batch_id"])
        if self.deliverer.dead_batch_unlettered(batch_id):
            self._dead_letter(record, RuntimeError("provider kept failing; deliveries failed"))
            self.deliverer.dead_lettered(batch_id)

    def _after_failure(self, record: Any, exc: Exception) -> float | None:
        """Count a failed try of record: return how long to wait before trying it again, or
        None once it was given up (its batch failed and dead-lettered).

        An outage of the database or the broker, a deadlock or a timeout, is waited out however
        long (a second at a time): it says nothing about the batch. Any other error (a fault in
        our code or in the alert's data, failing the batch every time) used to be retried for
        ever: the partition stalled behind it, and the alert never finished. It is tried
        BATCH_MAX_ATTEMPTS times, the waits doubling (1, 2, 4, 8 s...), each record counted
        on its own: a sender owns several partitions, and failing batches at their heads come
        back in turns (one counter for the latest record was reset by each of them in turn,
        and none was ever given up)."""
        if is_transient_error(exc) or isinstance(exc, KafkaError):
            return 1.0
        place = (record.topic, record.partition, record.offset)
        if len(self._failing) >= 10_000:
            self._failing.clear()  # places of partitions this sender no longer owns
        tries = self._failing[place] = self._failing.get(place, 0) + 1
        if tries < self.deps.config.batch_max_attempts:
            return min(2.0 ** (tries - 1), 30.0)
        try:
            data = decode(record.key, record.value, record.headers).data
            self.deliverer.fail_batch(data, self.channel, f"batch_error:{type(exc).__name__}"[:64])
            batch_id = str(data["batch_id"])
            # Once per batch: one given up before and redelivered (a commit lost) fails again.
            if self.deliverer.dead_batch_unlettered(batch_id):
                self._dead_letter(record, exc)
                self.deliverer.dead_lettered(batch_id)
        except Exception as failed:  # noqa: BLE001 - tried again with the next retry
            if isinstance(failed, (Busy, ClaimLost, KafkaError)) or is_transient_error(failed):
                # An outage, or rows another live worker holds: nothing about the batch.
                log.warning(
                    "dispatch batch not given up yet",
                    extra={"error": type(failed).__name__, "group": self.group},
                )
                return 1.0
            # Its recipients cannot even be recorded as failed (data the ledger refuses): tried
            # again, it would hold the partition for ever. The dead-letter topic keeps it.
            try:
                self._dead_letter(record, exc)
            except Exception:  # noqa: BLE001 - the broker: tried again with the next retry
                return 1.0
            log.error(
                "dispatch batch dead-lettered unrecorded",
                extra={"error": type(failed).__name__, "group": self.group, "tries": tries},
            )
            return None
        log.error(
            "dispatch batch given up: recipients failed, batch dead-lettered",
            extra={"error": type(exc).__name__, "group": self.group, "tries": tries},
        )
        return None

    def commit_finished(self, consumer: KafkaConsumer, final: bool = False) -> None:
        """Commit the places of the batches finished since the last commit.

        final: the sender is leaving (stopping, or replacing its consumer). A group rebalancing
        refuses a commit of the old generation; the consumer then rejoins (a short poll whose
        records are left to whoever owns them next) and commits again, so a stopped sender
        leaves nothing of its own to redo.
        """
        self._committed_at = time.monotonic()
        if not self._finished:
            return
        finished = dict(self._finished)
        self._finished.clear()
        tries = 3 if final else 1
        for attempt in range(1, tries + 1):
            # Only partitions this sender owns now (again after a rejoin): the broker takes a
            # commit for any partition of the group, and one finished before a rebalance
            # would rewind its new owner.
            owned = consumer.assignment()
            offsets = {
                tp: OffsetAndMetadata(offset, "", -1)
                for tp, offset in finished.items()
                if tp in owned
            }
            if not offsets:
                return
            try:
                consumer.commit(offsets)
                return
            except (RebalanceInProgressError, CommitFailedError) as exc:
                if attempt == tries:
                    self._commit_failed(exc)
                    return
                consumer.poll(timeout_ms=1000, max_records=1)  # rejoin; the next owner reads
            except KafkaError as exc:
                self._commit_failed(exc)
                return

    @staticmethod
    def _commit_failed(exc: KafkaError) -> None:
        # Redelivery is harmless: the ledger says every row of those batches is done.
        log.warning("dispatch offset commit failed", extra={"error": type(exc).__name__})

    def _dead_letter(self, record: Any, exc: BaseException) -> None:
        if self._producer is None:
            self._producer = make_producer(
                self.deps.settings.kafka_bootstrap_servers, f"{self.group}-dlq", linger_ms=0
            )
        future = self._producer.send(
            dead_letter_topic(self.topic, self.group),
            key=record.key,
            value=record.value,
            headers=dead_letter_headers(record, exc),
        )
        self._producer.flush(timeout=30)
        future.get(timeout=1)
        self.stats["dead"] += 1


def pause_for_credentials(deps: Deps, stop: threading.Event, exc: CredentialsRefused) -> None:
    """A provider refused our key: say so loudly, and wait before trying again."""
    report_refused_credentials(exc)
    stop.wait(deps.config.credentials_pause_seconds)


def report_refused_credentials(exc: CredentialsRefused) -> None:
    """Say loudly that a provider refused our key (an operator must fix it)."""
    log.error("provider refused our credentials; sending paused", extra={"error": str(exc)})


# Rows the queue poller claims at a time, per channel.
EMAIL_SLICE = 50
SMS_SLICE = 20


class QueuePoller:
    """Sends queued single messages: transactional mail and SMS, and deferred SMS when due.

    A worker runs one for each channel: one after the other in one loop, a slow provider
    (30 s timeouts) held up the other channel's slice for many minutes (a welcome text then
    missed its window)."""

    def __init__(
        self,
        deps: Deps,
        bucket: TokenBucket | None = None,
        channels: Sequence[str] = ("email", "sms"),
    ) -> None:
        self.deps = deps
        self.channels = tuple(channels)
        self._stop = threading.Event()
        self.deliverer = Deliverer(deps, self._stop)
        self.bucket = bucket
        self._pace = Pacer(deps.config.poll_interval, deps.config.poll_ceiling)
        # channel: when (time.monotonic) to try again its provider, which refused our key
        self._paused: dict[str, float] = {}

    def stop(self) -> None:
        self._stop.set()
        self._pace.wake()

    def wake(self) -> None:
        """Look for due rows now (new ones were just committed) instead of at the next poll."""
        self._pace.wake()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep polling through outages
                log.warning("queue poller paused", extra={"error": type(exc).__name__})
                self._stop.wait(1.0)
                continue
            if sent:
                self._pace.found_work()
            else:
                self._pace.idle()

    def run_once(self) -> int:
        """Claim and send one slice of due emails, then one of due texts; return how many
        were claimed.

        Apart, so that the texts a night deferred, all due at 08:00 and sent at the SMS rate,
        do not hold up a confirmation link or a thank-you queued a minute later: it waits for
        one slice of texts at most. A provider that refuses our key pauses its own channel
        (credentials_pause_seconds at a time); the other goes on.
        """
        claimed = 0
        config = self.deps.config
        for channel in self.channels:
            if self._stop.is_set():
                break
            if self._paused.get(channel, 0.0) > time.monotonic():
                continue
            limit = SMS_SLICE if channel == "sms" else EMAIL_SLICE
            claim, rows = self.deliverer.claim_due(limit, channel)
            claimed += len(rows)
            # A few at a time (texts paced by the bucket): one at a time, a provider's latency
            # held confirmation links, and the texts a night deferred, all due at 08:00, to a
            # few a second whatever SMS_RATE_PER_SECOND said.
            lanes = config.sms_concurrency if channel == "sms" else config.email_concurrency
            self._send_claim(channel, claim, rows, max(1, min(lanes, len(rows))))
        return claimed

    def _send_claim(self, channel: str, claim: str, rows: list[Any], lanes: int) -> None:
        """Send a claim's rows, `lanes` at once. A provider refusing our key hands back the
        rows not tried yet and pauses the channel; on a stop the claim lapses and another
        poller takes the rest; an outage of the database is raised to the run loop."""
        refused: list[CredentialsRefused] = []
        untried: list[Any] = []
        lock = threading.Lock()

        def send(row: Any) -> None:
            if self._stop.is_set():
                return  # the claim lapses and another poller takes it
            if refused:
                with lock:
                    untried.append(row)
                return
            if row.channel == "sms" and self.bucket is not None:
                self.bucket.acquire()
            try:
                self.deliverer.send_claimed(claim, row)
            except CredentialsRefused as exc:
                with lock:
                    refused.append(exc)
            except Stopped:
                raise
            except Exception as exc:
                if is_transient_error(exc):
                    raise  # the database is away: the run loop waits, the claim lapses
                self.deliverer.note_error(claim, row, exc)

        try:
            if lanes == 1:
                for row in rows:
                    send(row)
            else:
                with ThreadPoolExecutor(lanes, thread_name_prefix="poller") as pool:
                    futures = [pool.submit(send, row) for row in rows]
                for future in futures:
                    future.result()  # a stop or an outage, raised as from one lane
        finally:
            # Also when a lane met an outage meanwhile: the refusal still pauses the channel.
            if refused:
                pause = self.deps.config.credentials_pause_seconds
                self._paused[channel] = time.monotonic() + pause
                report_refused_credentials(refused[0])
                with contextlib.suppress(Exception):  # in an outage the claim lapses instead
                    self.deliverer.unclaim(claim, untried)


class ProgressPublisher:
    """Publishes alert.progressed when an alert's counts changed, at most once per interval.

    Before each look it applies providers' outcomes that came before their rows were settled.
    Hourly it also forgets expired Idempotency-Key records and unconfirmed signatures.
    """

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.expired_keys = ExpiredKeys(deps.engine, idempotency_keys)
        self.unconfirmed = Periodic(self.forget_unconfirmed)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.apply_held_outcomes()
            except Exception as exc:  # noqa: BLE001
                log.warning("held outcomes paused", extra={"error": type(exc).__name__})
            try:
                self.publish_once()
                self.expired_keys.forget_if_due()
                self.unconfirmed.run_if_due()
            except Exception as exc:  # noqa: BLE001
                log.warning("progress publisher paused", extra={"error": type(exc).__name__})
            self._stop.wait(self.deps.config.progress_interval)

    def apply_held_outcomes(self) -> int:
        """Apply providers' outcomes that arrived before their rows were settled, each in its
        own transaction (a callback applying another to the same row takes the locks in the
        same order), one failing not keeping the others back."""
        now = self.deps.clock()
        with self.deps.engine.connect() as conn:
            due = compliance.held_outcomes_due(conn, now)
        for held in due:
            try:
                with self.deps.engine.begin() as conn:
                    compliance.apply_held_outcome(conn, self.deps.outbox, held, now)
            except Exception as exc:  # noqa: BLE001 - the next look tries it again
                log.warning("held outcome not applied", extra={"error": type(exc).__name__})
        return len(due)

    def forget_unconfirmed(self) -> int:
        """Forget unconfirmed double opt-in signatures, and preference changes never confirmed,
        past their time (hourly)."""
        now = self.deps.clock()
        older_than = now - timedelta(hours=self.deps.config.pending_ttl_hours)
        with self.deps.engine.begin() as conn:
            preferences.forget_expired(conn, now)
            return audience.forget_unconfirmed(conn, older_than)

    def publish_once(self) -> int:
        """Publish the counts of every alert that changed; mark alerts whose rows are all done."""
        published = 0
        with self.deps.engine.begin() as conn:
            changed = select(alerts).where(alerts.c.version != alerts.c.published_version)
            if conn.dialect.name == "postgresql":
                # Two publishers at once (a rolling deploy's overlap): each alert's report is
                # read, stamped and committed by one at a time. Otherwise the slower one's
                # older counts could carry the later time, and campaigns keeps the latest.
                changed = changed.with_for_update(skip_locked=True)
            rows = conn.execute(changed).all()
            for row in rows:
                status = row.status
                done = row.sent + row.failed + row.suppressed
                if status == "sending" and done >= row.total:
                    status = "done"
                    conn.execute(
                        update(alerts)
                        .where(alerts.c.alert_id == row.alert_id, alerts.c.status == "sending")
                        .values(status="done")
                    )
                self.deps.outbox.add(conn, progress_event(row, status))
                conn.execute(
                    update(alerts)
                    .where(alerts.c.alert_id == row.alert_id)
                    .values(published_version=row.version)
                )
                published += 1
        return published


def progress_event(row: Any, status: str) -> Event:
    """Return alert.progressed for an alert row: queued = total - sent - failed - suppressed."""
    queued = max(row.total - row.sent - row.failed - row.suppressed, 0)
    return Event(
        type=type_name("alert.progressed"),
        key=row.campaign_id,
        source=SOURCE,
        data={
            "alert_id": row.alert_id,
            "campaign_id": row.campaign_id,
            "total": row.total,
            "queued": queued,
            "sent": row.sent,
            "delivered": row.delivered,
            "failed": row.failed,
            "suppressed": row.suppressed,
            "deferred": row.deferred,
            "status": status,
            "at": format_time(utcnow()),
        },
    )


def alert_counts(conn: Connection, alert_id: str) -> dict[str, Any] | None:
    """Return an alert's status and counters."""
    row = conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
    if row is None:
        return None
    keys = ("status", "total", "sent", "delivered", "failed", "suppressed", "deferred")
    counts = {k: getattr(row, k) for k in keys}
    counts.update(ambiguous=row.ambiguous, dead_batches=row.dead_batches, batches=row.batches)
    counts["queued"] = max(row.total - row.sent - row.failed - row.suppressed, 0)
    counts["alert_id"] = alert_id
    return counts
