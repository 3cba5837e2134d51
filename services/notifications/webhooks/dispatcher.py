"""The delivery loop: due messages from the database, sent concurrently, each endpoint isolated.

Every endpoint has its own small budget of concurrent deliveries (one while it is failing, or
answering slowly though successfully), and such endpoints together never hold more than half
the pool, so a dead or slow endpoint's 15-second waits can only ever occupy its own slots.
Retries are rows with a due time, not sleeping threads or Kafka offsets held back.
"""

from __future__ import annotations

import functools
import html
import logging
import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import (
    CompoundSelect,
    Connection,
    Engine,
    Integer,
    Select,
    bindparam,
    delete,
    insert,
    literal_column,
    or_,
    select,
    union_all,
    update,
)

from services.notifications.senders import (
    EmailBatch,
    EmailSender,
    PermanentSendError,
    Recipient,
    SendError,
)
from services.notifications.store import organizations
from services.notifications.webhooks import domain, signing
from services.notifications.webhooks.config import WebhookConfig
from services.notifications.webhooks.handlers import delete_messages_in_batches, finish_removing
from services.notifications.webhooks.store import (
    attempts,
    deletions,
    endpoints,
    messages,
    removed_endpoints,
)
from services.notifications.webhooks.transport import GuardedTransport, Reply, Transport
from shared.pacing import Pacer

log = logging.getLogger(__name__)
# Coarse labels only: no endpoint, organization or URL (cardinality, and nothing to correlate).
ATTEMPTS = Counter(
    "kinship_webhook_attempts_total", "Webhook delivery attempts by outcome", ["outcome"]
)
LATENCY = Histogram("kinship_webhook_attempt_seconds", "Webhook delivery attempt latency")
USER_AGENT = "Kinship-Webhooks/1"
RECLAIM_EVERY = 10.0
NOTICE_EVERY = 5.0
PURGE_EVERY = 600.0
PURGE_BATCH = 1000
# An endpoint whose successful answers take this long on average is limited like a failing one.
SLOW_ANSWER_SECONDS = 5.0
# A notice still 'sending' after this long was left by a dispatcher that died mid-send.
NOTICE_LEASE = 300.0


@dataclass(frozen=True)
class Endpoint:
    """What a delivery needs to know about its endpoint."""

    endpoint_id: str
    organization_id: str
    url: str
    secret: str
    previous_secrets: Sequence[Mapping[str, str]] | None
    failing: bool
    # Its last chunk's answers were slow (SLOW_ANSWER_SECONDS on average), though successes.
    slow: bool = False

    @property
    def limited(self) -> bool:
        """Whether it takes one chunk at a time, within the half of the pool such endpoints
        share: failing, or answering so slowly that a few of them would hold every thread."""
        return self.failing or self.slow

    def secrets(self, now: datetime) -> list[str]:
        """Return the secrets to sign with: the current one, and the old ones while they
        overlap (signing.live_secrets)."""
        return [self.secret, *signing.live_secrets(self.previous_secrets, now)]


@dataclass(frozen=True)
class Outcome:
    """One attempt's result, recorded after its chunk."""

    message_id: str
    attempts: int
    trigger: str
    at: datetime
    reply: Reply
    latency_ms: int
    held: bool = False  # a deletion: it never gives up (domain.HELD)


@functools.lru_cache(maxsize=32)
def due_query(endpoints: int) -> CompoundSelect[Any] | Select[Any]:
    """Return the ids of each endpoint's first due messages, up to its room, in one query.

    One statement object per number of endpoints, with the ids, rooms and time as parameters:
    built afresh every round, the union took a fifth of the dispatcher's time to construct and
    compile.
    """
    # A deletion waits for its endpoint's chunks claimed before it was written: such a chunk
    # carries the bodies as they were before the erasure, and a message of it still to go
    # would hand the partner the person's details after it was told to delete them.
    # (Constants of the code in the SQL text, not parameters: the statement keeps the
    # parameters the claim's plan is checked with.)
    earlier = messages.alias("earlier")
    in_flight_before = (
        select(earlier.c.message_id)
        .where(
            earlier.c.endpoint_id == messages.c.endpoint_id,
            earlier.c.status == literal_column("'delivering'"),
            earlier.c.claimed_at <= messages.c.created_at,
        )
        .exists()
    )
    deletion = messages.c.event_type.in_([literal_column(f"'{t}'") for t in domain.HELD])
    picks = [
        select(messages.c.message_id)
        .where(
            messages.c.endpoint_id == bindparam(f"endpoint_{i}"),
            messages.c.status == "pending",
            messages.c.next_attempt_at <= bindparam("now", type_=messages.c.next_attempt_at.type),
            or_(~deletion, ~in_flight_before),
        )
        .order_by(messages.c.next_attempt_at)
        .limit(bindparam(f"room_{i}", type_=Integer))
        .subquery()
        .select()
        for i in range(endpoints)
    ]
    return union_all(*picks) if len(picks) > 1 else picks[0]


@dataclass(frozen=True)
class _Finished:
    """A delivered chunk waiting to be recorded: the attempts made, and what was left."""

    endpoint: Endpoint
    chunk: Sequence[Any]
    outcomes: list[Outcome]
    claimed_at: datetime  # the claim its rows carry (what hands back only rows still ours)


def outcome(reply: Reply) -> str:
    """Return a metrics label for an attempt's result."""
    if domain.is_success(reply.status):
        return "delivered"
    if reply.status is not None:
        return f"http_{reply.status // 100}xx"
    error = reply.error or ""
    return "refused" if error.startswith("refused") else error.split(":")[0].replace(" ", "_")


def wall_clock() -> datetime:
    """Return the real time (signatures carry it: receivers compare it with their own clock)."""
    return datetime.now(UTC)


class Dispatcher:
    """Deliver due messages until stopped (run), or one round at a time (tick, for tests)."""

    def __init__(
        self,
        engine: Engine,
        config: WebhookConfig,
        *,
        production: bool = False,
        clock: Callable[[], datetime] = wall_clock,
        transport: Transport | None = None,
        email: EmailSender | None = None,
        from_email: str = "alerts@kinship.example",
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.transport = transport or GuardedTransport(
            domain.parse_networks(config.allowed_networks),
            config.https_required(production),
            read_cap=config.response_read_cap,
            max_age=config.connection_max_age,
        )
        self.email = email
        self.from_email = from_email
        self.rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(config.pool_size, thread_name_prefix="webhook")
        self._lock = threading.Lock()
        self._inflight: dict[str, int] = {}
        self._failing_inflight = 0  # chunks in flight of limited endpoints (failing, slow)
        self._slow: set[str] = set()  # endpoints whose last chunk answered slowly
        self._stop = threading.Event()
        self._pace = Pacer(config.poll_interval, config.poll_ceiling)
        # Finished chunks waiting to be recorded: one recorder writes all that are waiting in
        # one transaction, instead of one transaction per chunk.
        self._finished: queue.SimpleQueue[_Finished | None] = queue.SimpleQueue()
        self._last_reclaim = 0.0
        self._last_notice = 0.0
        self._last_purge = 0.0
        # Every endpoint's (url, enabled), read by the watcher while chunks are in flight, and
        # when (monotonic): chunks check their endpoint here, not each with a query of its own.
        self._seen: tuple[float, dict[str, tuple[str, bool]]] = (0.0, {})

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> None:
        """Deliver until stop() is called; finish the chunks in flight before returning."""
        recorder = threading.Thread(target=self._record_loop, name="webhook-recorder", daemon=True)
        recorder.start()
        # Reclaiming and owners' notices (an email, up to the provider's timeout) on their own
        # thread: a slow email provider must not hold up every partner's deliveries.
        keeper = threading.Thread(
            target=self._housekeeping_loop, name="webhook-keeper", daemon=True
        )
        keeper.start()
        watcher = threading.Thread(target=self._watch_loop, name="webhook-watcher", daemon=True)
        watcher.start()
        while not self._stop.is_set():
            try:
                claimed = self.tick()
            except Exception:
                log.exception("webhook dispatcher round failed")
                claimed = 0
            if claimed:
                self._pace.found_work()
            else:
                self._pace.idle()
        self._pool.shutdown(wait=True)
        self._finished.put(None)
        recorder.join()
        keeper.join()
        watcher.join()
        close = getattr(self.transport, "close", None)
        if callable(close):
            close()

    def stop(self) -> None:
        """Ask run() to return."""
        self._stop.set()
        self._pace.wake()

    def wake(self) -> None:
        """Look for due messages now (new ones were just committed) instead of at the next poll."""
        self._pace.wake()

    def tick(self, wait_for_results: bool = False) -> int:
        """Claim due messages for endpoints with free slots and start delivering them."""
        now = self.clock()
        futures: list[Future[None]] = []
        with self.engine.begin() as conn:
            live = self._endpoints(conn)
            budget = self._budgets(live)
            claimed = self._claim(conn, now, budget)
        with self._lock:
            failing_room = self.config.pool_size // 2 - self._failing_inflight
            # (The claim's budget let each endpoint of an organization overshoot its room.)
            org_room: dict[str, int] = defaultdict(self.config.organization_concurrency)
            for org, busy in self._org_inflight(live).items():
                org_room[org] -= busy
        handed_back: list[str] = []
        order = list(claimed.items())
        self.rng.shuffle(order)  # failing endpoints take turns when their half is full
        for endpoint_id, rows in order:
            endpoint = live[endpoint_id]
            size = 1 if endpoint.failing else self.config.batch_per_endpoint
            if endpoint.limited:
                keep = max(0, min(len(rows), failing_room))
                handed_back += [row.message_id for row in rows[keep:]]
                rows = rows[:keep]
                failing_room -= keep
            # And no organization's endpoints together more than their share of the pool.
            chunks = max(0, min(-(-len(rows) // size), org_room[endpoint.organization_id]))
            handed_back += [row.message_id for row in rows[chunks * size :]]
            rows = rows[: chunks * size]
            org_room[endpoint.organization_id] -= chunks
            for start in range(0, len(rows), size):
                chunk = rows[start : start + size]
                with self._lock:
                    self._inflight[endpoint_id] = self._inflight.get(endpoint_id, 0) + 1
                    self._failing_inflight += endpoint.limited
                futures.append(
                    self._pool.submit(self._deliver, endpoint, chunk, time.monotonic(), now)
                )
        if handed_back:
            with self.engine.begin() as conn:
                conn.execute(
                    update(messages)
                    .where(messages.c.message_id.in_(handed_back))
                    .values(status="pending", claimed_at=None)
                )
        if wait_for_results:
            wait(futures)
            self._record_waiting(raise_errors=True)
            for future in futures:
                future.result()
        return sum(len(rows) for rows in claimed.values()) - len(handed_back)

    def drain(self, rounds: int = 100) -> int:
        """Run ticks until nothing is due (tests); return how many messages were attempted."""
        total = 0
        for _ in range(rounds):
            done = self.tick(wait_for_results=True)
            self._housekeeping(force=True)
            if not done:
                break
            total += done
        return total

    # -- claiming ----------------------------------------------------------------------------------

    def _endpoints(self, conn: Connection) -> dict[str, Endpoint]:
        rows = conn.execute(select(endpoints).where(endpoints.c.enabled.is_(True)))
        with self._lock:
            slow = set(self._slow)
        return {
            r.endpoint_id: Endpoint(
                r.endpoint_id,
                r.organization_id,
                r.url,
                r.secret,
                r.previous_secrets,
                r.failing_since is not None,
                r.endpoint_id in slow,
            )
            for r in rows
        }

    def _org_inflight(self, live: dict[str, Endpoint]) -> defaultdict[str, int]:
        """Return the chunks in flight per organization (the caller holds the lock)."""
        busy: defaultdict[str, int] = defaultdict(int)
        for endpoint_id, count in self._inflight.items():
            if endpoint_id in live:
                busy[live[endpoint_id].organization_id] += count
        return busy

    def _budgets(self, live: dict[str, Endpoint]) -> dict[str, int]:
        """Return how many messages each endpoint may start on now (its free chunks' worth)."""
        config = self.config
        with self._lock:
            total = sum(self._inflight.values())
            failing_room = config.pool_size // 2 - self._failing_inflight
            free = config.pool_size - total
            org_busy = self._org_inflight(live)
            budget = {}
            for endpoint_id, endpoint in live.items():
                org_left = config.organization_concurrency() - org_busy[endpoint.organization_id]
                if org_left <= 0:
                    continue  # its organization's share is in flight: claim nothing for it
                cap = (
                    config.failing_endpoint_concurrency
                    if endpoint.limited
                    else config.per_endpoint_concurrency
                )
                room = min(cap - self._inflight.get(endpoint_id, 0), org_left)
                if endpoint.limited:
                    room = min(room, failing_room)
                # Not decremented per endpoint: most have nothing due, and counting their
                # unused room would starve the endpoints listed after them. The executor
                # queues any overshoot; failing endpoints stay within their half.
                if room > 0 and free > 0:
                    # In messages: a failing endpoint's chunks hold one message each.
                    size = 1 if endpoint.failing else config.batch_per_endpoint
                    budget[endpoint_id] = min(room, free) * size
        return budget

    def _claim(
        self, conn: Connection, now: datetime, budget: dict[str, int]
    ) -> dict[str, list[Any]]:
        if not budget:
            return {}
        endpoint_ids = tuple(budget)
        params: dict[str, Any] = {"now": now}
        for i, room in enumerate(budget.values()):
            params[f"endpoint_{i}"] = endpoint_ids[i]
            params[f"room_{i}"] = room
        due = [row[0] for row in conn.execute(due_query(len(endpoint_ids)), params)]
        if not due:
            return {}
        # Of an endpoint still there and on: one deleted or turned off after `live` was read
        # keeps its messages (deleted afterwards, a batch at a time) unsent.
        on = (
            select(endpoints.c.endpoint_id)
            .where(endpoints.c.endpoint_id == messages.c.endpoint_id, endpoints.c.enabled.is_(True))
            .exists()
        )
        query = (
            update(messages)
            .where(messages.c.message_id.in_(due), messages.c.status == "pending", on)
            .values(status="delivering", claimed_at=now)
            .returning(
                messages.c.message_id,
                messages.c.endpoint_id,
                messages.c.body,
                messages.c.attempts,
                messages.c.trigger,
                messages.c.next_attempt_at,
                messages.c.supporter_id,
                messages.c.event_type,
            )
        )
        claimed: dict[str, list[Any]] = {}
        for row in sorted(conn.execute(query), key=lambda r: r.next_attempt_at):
            claimed.setdefault(row.endpoint_id, []).append(row)
        return claimed

    # -- delivering --------------------------------------------------------------------------------

    def _deliver(
        self, endpoint: Endpoint, chunk: Sequence[Any], checked: float, claimed_at: datetime
    ) -> None:
        """POST a chunk's messages one after another; `checked` is when the endpoint was read
        (monotonic), claimed_at the claim the rows carry."""
        outcomes: list[Outcome] = []
        timeout = self.config.timeout
        if time.monotonic() - checked > self.config.claim_lease() / 4:
            # Long in the pool's queue (every thread busy): the lease may have run out and the
            # rows been handed to another delivery. Only those still ours go, under a new claim.
            chunk, claimed_at = self._still_ours(chunk, claimed_at)
        try:
            for row in chunk:
                if self._stop.is_set():
                    break
                if time.monotonic() - checked >= self.config.recheck_seconds:
                    if not self._unchanged(endpoint):
                        break  # the rest go back to wait, and to the endpoint as it is now
                    checked = time.monotonic()
                sent_at = wall_clock()
                body = str(row.body)
                started = time.perf_counter()
                try:
                    headers = signing.headers(
                        endpoint.secrets(self.clock()), row.message_id, sent_at, body
                    )
                    headers["content-type"] = "application/json"
                    headers["user-agent"] = USER_AGENT
                    reply = self.transport.post(
                        endpoint.endpoint_id, endpoint.url, headers, body.encode(), timeout
                    )
                except Exception as exc:
                    # A failed attempt on the schedule like any other: unrecorded, the message
                    # would be handed back due at once, and claimed again at once, forever.
                    # The type only: a message could quote the body.
                    name = type(exc).__name__
                    where = {"endpoint_id": endpoint.endpoint_id, "message_id": row.message_id}
                    log.warning("webhook delivery raised %s", name, extra=where)
                    reply = Reply(None, None, b"", f"internal error: {name}")
                elapsed = time.perf_counter() - started
                latency = int(elapsed * 1000)
                LATENCY.observe(elapsed)
                ATTEMPTS.labels(outcome(reply)).inc()
                outcomes.append(
                    Outcome(
                        row.message_id,
                        row.attempts,
                        row.trigger,
                        self.clock(),
                        reply,
                        latency,
                        held=row.event_type in domain.HELD,
                    )  # fmt: skip
                )
                if not domain.is_success(reply.status):
                    break  # the rest wait for the endpoint to answer again
        finally:
            # The endpoint's slot is freed once this is recorded: until then its health is
            # not known to the next round.
            self._finished.put(_Finished(endpoint, chunk, outcomes, claimed_at))

    def _still_ours(
        self, chunk: Sequence[Any], claimed_at: datetime
    ) -> tuple[Sequence[Any], datetime]:
        """Claim a chunk's rows again, now, if they still carry its claim; return those, with
        their bodies as stored now.

        The new claim is later than a deletion written while the chunk waited, which then no
        longer waits for it (due_query): the bodies read at the first claim may hold details
        an erasure or a withdrawal scrubbed since, and would reach the partner after it was
        told to delete them."""
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                renewed = conn.execute(
                    update(messages)
                    .where(
                        messages.c.message_id.in_([row.message_id for row in chunk]),
                        messages.c.status == "delivering",
                        messages.c.claimed_at == claimed_at,
                    )
                    .values(claimed_at=now)
                    .returning(messages.c.message_id, messages.c.body)
                )
                stored = {str(row.message_id): str(row.body) for row in renewed}
        except Exception as exc:
            log.warning("webhook claim not renewed: %s", type(exc).__name__)
            return [], claimed_at  # reclaimed when their lease runs out
        ours = [
            SimpleNamespace(**{**row._asdict(), "body": stored[row.message_id]})
            for row in chunk
            if row.message_id in stored
        ]
        return ours, now

    def _unchanged(self, endpoint: Endpoint) -> bool:
        """Return whether the endpoint is still there, on, and at the URL the chunk is for: as
        the watcher last read it, if that is recent enough, else read now."""
        at, seen = self._seen
        try:
            if time.monotonic() - at > 2 * self.config.recheck_seconds:
                at, seen = self._read_endpoints()
        except Exception as exc:
            # Unknown is not unchanged: the rest wait (recorded as untried, or reclaimed).
            log.warning("webhook endpoint not read again: %s", type(exc).__name__)
            return False
        return seen.get(endpoint.endpoint_id) == (endpoint.url, True)

    def _read_endpoints(self) -> tuple[float, dict[str, tuple[str, bool]]]:
        at = time.monotonic()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(endpoints.c.endpoint_id, endpoints.c.url, endpoints.c.enabled)
            ).all()
        self._seen = (at, {r.endpoint_id: (r.url, bool(r.enabled)) for r in rows})
        return self._seen

    def _watch_loop(self) -> None:
        """Read every endpoint again each recheck_seconds while chunks are in flight: one small
        query for the whole pool, where a query per chunk held the database pool's connections
        (64 delivery threads) and slowed every delivery."""
        while not self._stop.wait(self.config.recheck_seconds):
            if not self._inflight:
                continue
            try:
                self._read_endpoints()
            except Exception as exc:  # noqa: BLE001 - chunks read for themselves meanwhile
                log.warning("webhook endpoints not read: %s", type(exc).__name__)

    # -- recording ---------------------------------------------------------------------------------

    def _record_loop(self) -> None:
        """Record finished chunks until run() sends None: whatever waits goes in one commit."""
        while True:
            first = self._finished.get()
            if first is None:
                return
            waiting = [first]
            last = False
            while not last:
                try:
                    item = self._finished.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    last = True
                else:
                    waiting.append(item)
            self._record_all(waiting, raise_errors=False)
            if last:
                return

    def _record_waiting(self, raise_errors: bool) -> None:
        """Record every finished chunk now (tick with wait_for_results: no recorder thread)."""
        waiting = []
        while True:
            try:
                item = self._finished.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                waiting.append(item)
        if waiting:
            self._record_all(waiting, raise_errors)

    @staticmethod
    def _still_there(conn: Connection, finished: list[_Finished]) -> tuple[set[str], set[str]]:
        """Return the chunks' messages that still exist (an endpoint deleted meanwhile took its
        own), and those of them naming a person who was erased while they were in flight.

        A partner's response may echo the payload; erasure clears the responses it finds, but
        not one recorded after it. The messages' rows are locked first: an erasure scrubs them
        before the responses, and deleting an endpoint deletes them before its attempts, so
        either committed before (and is seen here) or waits for this transaction and then
        clears what it records."""
        rows = conn.execute(
            select(messages.c.message_id, messages.c.supporter_id)
            .where(messages.c.message_id.in_([r.message_id for i in finished for r in i.chunk]))
            .with_for_update()
        ).all()
        personal = {r.message_id for i in finished for r in i.chunk if r.supporter_id is not None}
        erased = {row.message_id for row in rows if row.supporter_id is None} & personal
        return {row.message_id for row in rows}, erased

    def _record_all(self, finished: list[_Finished], raise_errors: bool) -> None:
        """Write the attempts and each message's next state, for many chunks in one transaction.

        If it fails, the chunks' messages stay claimed and are delivered again once their lease
        runs out (with the same webhook-id, so receivers can tell).
        """
        try:
            with self.engine.begin() as conn:
                self._record(conn, finished)
        except Exception:
            if raise_errors:
                raise
            log.exception("webhook attempts not recorded; retried when their lease runs out")
        finally:
            with self._lock:
                for item in finished:
                    endpoint = item.endpoint
                    self._inflight[endpoint.endpoint_id] -= 1
                    if not self._inflight[endpoint.endpoint_id]:
                        del self._inflight[endpoint.endpoint_id]
                    self._failing_inflight -= endpoint.limited
                    self._note_speed(item)
            self._pace.wake()

    def _note_speed(self, item: _Finished) -> None:
        """Mark an endpoint slow, or not, by its chunk's successful answers (the caller holds
        the lock). An endpoint answering 2xx just inside the deadline never counts as failing:
        four chunks of each of a few such partners held every thread, and everyone else's
        deliveries (deletions among them) waited for hours."""
        answered = [o.latency_ms for o in item.outcomes if domain.is_success(o.reply.status)]
        if not answered:
            return
        if sum(answered) / len(answered) >= SLOW_ANSWER_SECONDS * 1000:
            self._slow.add(item.endpoint.endpoint_id)
        else:
            self._slow.discard(item.endpoint.endpoint_id)

    def _record(self, conn: Connection, finished: list[_Finished]) -> None:
        config = self.config
        now = self.clock()
        present, erased = self._still_there(conn, finished)
        tried = [
            (item.endpoint, o)
            for item in finished
            for o in item.outcomes
            if o.message_id in present
        ]
        if tried:
            conn.execute(
                insert(attempts),
                [
                    {
                        "message_id": o.message_id,
                        "endpoint_id": endpoint.endpoint_id,
                        "attempted_at": o.at,
                        "trigger": o.trigger,
                        "status_code": o.reply.status,
                        "latency_ms": o.latency_ms,
                        "error": (o.reply.error or self._status_error(o.reply))[:200]
                        if not domain.is_success(o.reply.status)
                        else None,
                        "response_excerpt": None
                        if o.message_id in erased
                        else domain.excerpt(o.reply.body, config.response_excerpt_bytes),
                    }
                    for endpoint, o in tried
                ],
            )
        by_code: dict[int | None, list[str]] = {}
        for _, o in tried:
            if domain.is_success(o.reply.status):
                by_code.setdefault(o.reply.status, []).append(o.message_id)
        # One statement per status code (nearly always one): a statement of the same shape
        # each time, so SQLAlchemy compiles it once.
        for code, ids in by_code.items():
            conn.execute(
                update(messages)
                .where(messages.c.message_id.in_(ids))
                .values(
                    status="succeeded",
                    attempts=messages.c.attempts + 1,
                    claimed_at=None,
                    next_attempt_at=None,
                    finished_at=now,
                    last_status_code=code,
                )
            )
        # The untried go back to wait first, so an endpoint disabled below has them among the
        # waiting messages housekeeping fails (fail_disabled_backlogs). Only rows still under
        # the chunk's claim: one reclaimed meanwhile is another delivery's now.
        done = {o.message_id for _, o in tried}
        untried: defaultdict[datetime, list[str]] = defaultdict(list)
        for item in finished:
            for row in item.chunk:
                if row.message_id not in done:
                    untried[item.claimed_at].append(row.message_id)
        for claimed_at, ids in untried.items():
            conn.execute(
                update(messages)
                .where(
                    messages.c.message_id.in_(ids),
                    messages.c.status == "delivering",
                    messages.c.claimed_at == claimed_at,
                )
                .values(status="pending", claimed_at=None)
            )
        for endpoint, o in tried:
            if not domain.is_success(o.reply.status):
                self._failed(conn, endpoint, o, now)
        for item in finished:
            if item.outcomes:
                self._record_health(conn, item.endpoint, item.outcomes[-1], now)

    def _record_health(
        self, conn: Connection, endpoint: Endpoint, last: Outcome, now: datetime
    ) -> None:
        """Mark an endpoint failing or healthy again, by the last answer of one of its chunks."""
        last_ok = domain.is_success(last.reply.status)
        # The endpoint row changes only when its health does: rewriting it after every chunk
        # made concurrent chunks of one endpoint queue on its row lock.
        this = endpoints.c.endpoint_id == endpoint.endpoint_id
        # Whatever the endpoint was when this chunk was claimed: another chunk of the same
        # round may have marked it failing, or cleared the mark, since. Each statement matches
        # only a row whose health it changes, so a steady endpoint's row is never locked.
        if last_ok:
            conn.execute(
                update(endpoints)
                .where(this, endpoints.c.failing_since.is_not(None))
                .values(failing_since=None)
            )
        else:
            conn.execute(
                update(endpoints)
                .where(this, endpoints.c.failing_since.is_(None))
                .values(failing_since=now)
            )
            self._maybe_disable_failing(conn, endpoint.endpoint_id, now)

    @staticmethod
    def _status_error(reply: Reply) -> str:
        if reply.status is not None and 300 <= reply.status < 400:
            return f"HTTP {reply.status} (redirects are not followed)"
        return f"HTTP {reply.status}"

    def _failed(self, conn: Connection, endpoint: Endpoint, o: Outcome, now: datetime) -> None:
        config = self.config
        tries = o.attempts + 1
        retry_after = None
        if o.reply.status == 429:
            retry_after = domain.parse_retry_after(o.reply.retry_after, now)
        # A deletion never gives up while its endpoint is enabled: the partner holds the
        # person's details until it arrives. Past the schedule it goes again at the schedule's
        # last interval; a 410 disables the endpoint, which holds it until enabled again.
        step = min(tries, len(config.schedule)) if o.held else tries
        later = domain.next_attempt_at(
            step, now, config.schedule, config.jitter, retry_after, self.rng
        )
        gone = o.reply.status == 410
        failed = not o.held and (later is None or gone)
        conn.execute(
            update(messages)
            .where(messages.c.message_id == o.message_id)
            .values(
                status="failed" if failed else "pending",
                attempts=tries,
                claimed_at=None,
                next_attempt_at=None if failed else later,
                finished_at=now if failed else None,
                last_status_code=o.reply.status,
            )
        )
        if gone:
            disable(conn, endpoint.endpoint_id, "gone", now)

    def _maybe_disable_failing(self, conn: Connection, endpoint_id: str, now: datetime) -> None:
        since = conn.execute(
            select(endpoints.c.failing_since).where(endpoints.c.endpoint_id == endpoint_id)
        ).scalar()
        if domain.should_disable(since, now, self.config.disable_after_seconds):
            disable(conn, endpoint_id, "failing", now)

    # -- housekeeping ------------------------------------------------------------------------------

    def _housekeeping_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._housekeeping()
            except Exception:
                log.exception("webhook housekeeping failed")
            self._stop.wait(min(RECLAIM_EVERY, NOTICE_EVERY))

    def _housekeeping(self, force: bool = False) -> None:
        mono = time.monotonic()
        if force or mono - self._last_reclaim >= RECLAIM_EVERY:
            self._last_reclaim = mono
            self.reclaim()
            self.disable_failing()
            self.fail_disabled_backlogs()
            sweep = getattr(self.transport, "sweep", None)
            if callable(sweep):
                sweep()
        if force or mono - self._last_notice >= NOTICE_EVERY:
            self._last_notice = mono
            self.send_notices()
        if force or mono - self._last_purge >= PURGE_EVERY:
            self._last_purge = mono
            self.purge()

    def purge(self) -> int:
        """Delete the messages finished longer ago than the retention, with their attempts, a
        batch per transaction; return how many. A deletion notice that failed before deletions
        were held for good stays: turning its endpoint on again sends it."""
        cutoff = self.clock() - timedelta(seconds=self.config.retention_seconds)
        held_failed = messages.c.event_type.in_(domain.HELD) & (messages.c.status == "failed")
        purged = delete_messages_in_batches(
            self.engine, (messages.c.finished_at < cutoff) & ~held_failed, PURGE_BATCH, self._stop
        )
        # What a deleted endpoint left (its deletion cut short: a restart, an outage; or a
        # consumer batch that read it before and committed after). Forgotten after a day.
        cutoff_of_removals = self.clock() - timedelta(days=1)
        with self.engine.connect() as conn:
            removed = list(conn.execute(select(removed_endpoints.c.endpoint_id)).scalars())
        for endpoint_id in removed:
            finish_removing(
                self.engine, endpoint_id, self._stop, forget_removed_before=cutoff_of_removals
            )
        with self.engine.begin() as conn:  # the deletions list keeps as long (GET /deletions)
            conn.execute(delete(deletions).where(deletions.c.at < cutoff))
        if purged:
            log.info("webhook messages past retention purged", extra={"count": purged})
        return purged

    def reclaim(self) -> int:
        """Put back messages, and owner notices, whose dispatcher died mid-send."""
        now = self.clock()
        cutoff = now - timedelta(seconds=self.config.claim_lease())
        with self.engine.begin() as conn:
            result = conn.execute(
                update(messages)
                .where(messages.c.status == "delivering", messages.c.claimed_at < cutoff)
                .values(status="pending", claimed_at=None)
            )
            # send_notices stamps updated_at when it takes a notice.
            conn.execute(
                update(endpoints)
                .where(
                    endpoints.c.notice == "sending",
                    endpoints.c.updated_at < now - timedelta(seconds=NOTICE_LEASE),
                )
                .values(notice="pending")
            )
        return int(result.rowcount or 0)

    def disable_failing(self) -> int:
        """Disable the endpoints failing, with no success, for longer than allowed; return how
        many. A failure recorded past that time does it at once; this catches an endpoint whose
        last messages gave up before then (its owner is told, and learns to recover them)."""
        now = self.clock()
        cutoff = now - timedelta(seconds=self.config.disable_after_seconds)
        with self.engine.begin() as conn:
            failing = (
                conn.execute(
                    select(endpoints.c.endpoint_id).where(
                        endpoints.c.enabled.is_(True), endpoints.c.failing_since <= cutoff
                    )
                )
                .scalars()
                .all()
            )
            for endpoint_id in failing:
                disable(conn, endpoint_id, "failing", now)
        return len(failing)

    def fail_disabled_backlogs(self) -> int:
        """Fail the messages waiting for endpoints disabled automatically (gone, failing), a
        batch per transaction; return how many. A recovery resends them once the endpoint is
        enabled again; erasures stay pending until it is. Each batch holds the endpoint's row,
        so one enabled meanwhile keeps the rest waiting, to be sent."""
        has_waiting = (
            select(messages.c.message_id)
            .where(
                messages.c.endpoint_id == endpoints.c.endpoint_id,
                messages.c.status == "pending",
                messages.c.event_type.not_in(domain.HELD),
            )
            .exists()
        )
        with self.engine.connect() as conn:
            disabled = list(
                conn.execute(
                    select(endpoints.c.endpoint_id).where(
                        endpoints.c.enabled.is_(False),
                        endpoints.c.disabled_reason.in_(domain.AUTO_DISABLED),
                        has_waiting,
                    )
                ).scalars()
            )
        failed = 0
        for endpoint_id in disabled:
            while not self._stop.is_set():
                with self.engine.begin() as conn:
                    still = conn.execute(
                        select(endpoints.c.endpoint_id)
                        .where(
                            endpoints.c.endpoint_id == endpoint_id, endpoints.c.enabled.is_(False)
                        )
                        .with_for_update(read=True)
                    ).first()
                    if still is None:
                        break
                    waiting = (
                        select(messages.c.message_id)
                        .where(
                            messages.c.endpoint_id == endpoint_id,
                            messages.c.status == "pending",
                            messages.c.event_type.not_in(domain.HELD),
                        )
                        .limit(PURGE_BATCH)
                    )
                    ids = list(conn.execute(waiting).scalars())
                    if ids:
                        conn.execute(
                            update(messages)
                            .where(messages.c.message_id.in_(ids), messages.c.status == "pending")
                            .values(status="failed", finished_at=self.clock(), next_attempt_at=None)
                        )
                if not ids:
                    break
                failed += len(ids)
        return failed

    def send_notices(self) -> int:
        """Email the organization of each endpoint disabled automatically (gone, failing) once.

        notice: pending -> sending -> sent, or no_email (no contact), or failed (the address
        was refused for good); a transient error puts it back to pending, and reclaim() does
        the same for one left sending by a dispatcher that died.
        """
        if self.email is None:
            return 0
        with self.engine.begin() as conn:
            due = conn.execute(
                update(endpoints)
                .where(endpoints.c.notice == "pending")
                .values(notice="sending", updated_at=self.clock())
                .returning(
                    endpoints.c.endpoint_id,
                    endpoints.c.organization_id,
                    endpoints.c.url,
                    endpoints.c.disabled_reason,
                )
            ).all()
            contacts = dict(
                conn.execute(
                    select(organizations.c.organization_id, organizations.c.contact_email).where(
                        organizations.c.organization_id.in_([r.organization_id for r in due])
                    )
                ).all()
            )
        for row in due:
            state = self._notify(row, contacts.get(row.organization_id))
            with self.engine.begin() as conn:
                conn.execute(
                    update(endpoints)
                    .where(
                        endpoints.c.endpoint_id == row.endpoint_id, endpoints.c.notice == "sending"
                    )
                    .values(notice=state)
                )
        return len(due)

    def _notify(self, row: Any, contact: str | None) -> str:
        if not contact or self.email is None:
            return "no_email"  # the column holds 8 characters
        days = self.config.disable_after_seconds / 86400
        why = (
            "answered 410 Gone"
            if row.disabled_reason == "gone"
            else f"failed every delivery for {days:g} days"
        )
        text = (
            f"Your webhook endpoint {row.url} ({row.endpoint_id}) {why} and has been disabled. "
            "Its messages are kept, including those of events while it is disabled: fix the "
            "endpoint, enable it again, then recover the failed messages since the outage."
        )
        batch = EmailBatch(
            from_email=self.from_email,
            from_name="Kinship",
            subject="Your Kinship webhook endpoint was disabled",
            text=text,
            html=f"<p>{html.escape(text)}</p>",  # the URL is as its owner typed it
            recipients=[Recipient(contact, None, {"webhook_endpoint_id": row.endpoint_id})],
        )
        try:
            self.email.send_batch(batch)
        except PermanentSendError:
            log.warning("webhook notice refused for good", extra={"endpoint_id": row.endpoint_id})
            return "failed"
        except SendError:
            log.warning("webhook notice not sent", extra={"endpoint_id": row.endpoint_id})
            return "pending"
        return "sent"


def disable(conn: Connection, endpoint_id: str, reason: str, now: datetime) -> None:
    """Disable an endpoint: its row only. Its waiting messages are failed by housekeeping
    (Dispatcher.fail_disabled_backlogs), a batch per transaction: this runs in the
    transaction recording every endpoint's deliveries, which a dead endpoint's whole backlog
    held up for as long as it took to fail."""
    conn.execute(
        update(endpoints)
        .where(endpoints.c.endpoint_id == endpoint_id, endpoints.c.enabled.is_(True))
        .values(
            enabled=False,
            disabled_reason=reason,
            disabled_at=now,
            notice="pending" if reason in domain.AUTO_DISABLED else None,
            updated_at=now,
        )
    )


def from_deps(deps: Any) -> Dispatcher:
    """Build the dispatcher of a notifications worker from its Deps."""
    return Dispatcher(
        deps.engine,
        deps.webhooks,
        production=deps.settings.production,
        clock=lambda: deps.clock(),
        email=deps.email,
        from_email=deps.config.from_email,
    )
