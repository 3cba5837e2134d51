"""The delivery ledger: one row per (message, recipient, channel), written before any send.

A row moves queued/deferred -> sending -> sent/failed (or straight to suppressed). A worker only
calls a provider for rows it has just moved into `sending` under its own claim (`batch_key`), so
two workers never send the same row; a row found still `sending` under one's own claim after a
crash is the one ambiguous case (the request may or may not have reached the provider), and is
resent and counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, Select, select, text, update
from sqlalchemy.exc import IntegrityError

from services.notifications.store import alerts, dead_batches, deliveries, insert_ignore
from shared.db import json_param, one_of, raw
from shared.ids import ROWS_PER_PREFIX, uuid7, uuid7_prefix

DONE = ("sent", "delivered", "failed", "suppressed")
UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE
COUNTERS = ("total", "sent", "delivered", "failed", "suppressed", "deferred", "ambiguous")
# Recipients that are not a supporter: an organization's contact ("org:<id>"), or a message to
# someone since erased ("erased:<delivery id>", erasure.apply_erasure).
ORGANIZATION, ERASED = "org:", "erased:"


def names_a_supporter(recipient_id: str) -> bool:
    """Return whether a ledger row's recipient is a supporter still on file by that id."""
    return not recipient_id.startswith((ORGANIZATION, ERASED))


def new_row(
    *,
    message_key: str,
    recipient_id: str,
    channel: str,
    kind: str,
    status: str,
    now: datetime,
    alert_id: str | None = None,
    batch_key: str | None = None,
    params: dict[str, Any] | None = None,
    not_before: datetime | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    """Return a ledger row ready to insert."""
    return {
        "delivery_id": uuid7(),
        "message_key": message_key,
        "recipient_id": recipient_id,
        "channel": channel,
        "alert_id": alert_id,
        "kind": kind,
        "status": status,
        "batch_key": batch_key,
        "claimed_at": now if batch_key else None,
        "not_before": not_before,
        "attempts": 0,
        "params": params,
        "provider_message_id": None,
        "error_code": error_code,
        "created_at": now,
        "updated_at": now,
    }


def insert_new(conn: Connection, rows: list[dict[str, Any]]) -> list[Any]:
    """Insert rows whose (message, recipient, channel) is new; return those inserted."""
    if not rows:
        return []
    # executemany: SQLAlchemy sends the rows in a few multi-row INSERTs with one cached plan.
    statement = insert_ignore(conn, deliveries).returning(
        deliveries.c.delivery_id, deliveries.c.recipient_id, deliveries.c.status
    )
    return list(conn.execute(statement, rows).all())


class Entry(NamedTuple):
    """One recipient's row of a dispatch batch: who, in which state, held by which claim.

    A named tuple: a batch makes a thousand, and a frozen dataclass's __init__ sets each field
    through object.__setattr__."""

    recipient_id: str
    status: str
    batch_key: str | None
    not_before: datetime | None = None


_BATCH_ROWS = (
    "INSERT INTO nf_deliveries (delivery_id, recipient_id, status, batch_key, not_before,"
    " claimed_at, message_key, channel, alert_id, kind, attempts, created_at, updated_at)"
    " SELECT :prefix || lpad(to_hex(n - 1), 4, '0'), r->>0, r->>1, r->>2,"
    " CAST(r->>3 AS timestamptz),"
    " CASE WHEN r->>2 IS NULL THEN NULL ELSE CAST(:now AS timestamptz) END,"
    " :mk, :ch, :al, :kind, 0, :now, :now"
    " FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS batch(r, n)"
)
_RETURNING = " RETURNING delivery_id, recipient_id, status"
_INSERT_ALL = text(_BATCH_ROWS + _RETURNING)
_INSERT_NEW = text(_BATCH_ROWS + " ON CONFLICT DO NOTHING" + _RETURNING)


def insert_batch(
    conn: Connection,
    entries: Sequence[Entry],
    *,
    message_key: str,
    channel: str,
    kind: str,
    alert_id: str | None,
    now: datetime,
) -> list[Any]:
    """Insert a batch's rows whose (message, recipient, channel) is new; return those inserted
    as (delivery_id, recipient_id, status).

    On PostgreSQL the rows go as one JSON parameter and the database numbers their ids from one
    time-ordered prefix: building a dict and an id per row, and binding each field, cost more
    than the insert. A batch is almost always new, so it is first inserted whole, without
    ON CONFLICT: that clause makes PostgreSQL probe the unique index before each row, insert it
    as speculative and confirm it, a quarter of the insert's time (docs/runtime-facts.md).
    Only when a row exists (a redelivered batch) is the batch inserted again, skipping those."""
    if not entries:
        return []
    if conn.dialect.name != "postgresql" or len(entries) > ROWS_PER_PREFIX:
        return insert_new(conn, [
            new_row(message_key=message_key, recipient_id=e.recipient_id, channel=channel,
                    kind=kind, status=e.status, alert_id=alert_id, batch_key=e.batch_key,
                    not_before=e.not_before, now=now)
            for e in entries
        ])  # fmt: skip
    rows = json_param([[e.recipient_id, e.status, e.batch_key, e.not_before] for e in entries])
    params = {"mk": message_key, "ch": channel, "al": alert_id, "kind": kind, "now": now,
              "prefix": uuid7_prefix(), "rows": rows}  # fmt: skip
    try:
        with conn.begin_nested():
            return list(conn.execute(_INSERT_ALL, params).all())
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
            raise
    return list(conn.execute(_INSERT_NEW, params).all())


def by_status(inserted: Iterable[Sequence[str]]) -> dict[str, dict[str, str]]:
    """Group rows (delivery_id, recipient_id, status) as insert_batch returns them into
    {status: {recipient_id: delivery_id}}; a status with no rows reads as an empty dict.

    Rows are unpacked rather than read by name: a SQLAlchemy Row's attribute costs about ten
    times a tuple unpacking, and a batch has a thousand of them."""
    grouped: dict[str, dict[str, str]] = defaultdict(dict)
    for delivery_id, recipient_id, status in inserted:
        grouped[status][recipient_id] = delivery_id
    return grouped


def existing(
    conn: Connection, message_key: str, channel: str, recipient_ids: Sequence[str]
) -> list[Any]:
    """Return the ledger rows already held for these recipients of a message."""
    if not recipient_ids:
        return []
    query = select(
        deliveries.c.delivery_id,
        deliveries.c.recipient_id,
        deliveries.c.status,
        deliveries.c.batch_key,
        deliveries.c.updated_at,
    ).where(
        deliveries.c.message_key == message_key,
        deliveries.c.channel == channel,
        one_of(conn, deliveries.c.recipient_id, recipient_ids),
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return list(conn.execute(query).all())


def pollable(
    now: datetime,
    lease: datetime,
    limit: int,
    channel: str | None = None,
    alerts: bool | None = None,
) -> Select[Any]:
    """Select the ids of rows the queue poller may take now (of one channel, if given; an
    alert's only, or none of an alert's, if alerts is given), the longest due first: waiting
    rows that are due, and rows a poller claimed before `lease` (it died or hangs).

    poll_at (store.POLL_AT) is computed by the database and set only for such rows, so the
    poller's index never holds a dispatch batch's rows."""
    query = (
        select(deliveries.c.delivery_id)
        .where(deliveries.c.poll_at <= now)
        .where(deliveries.c.batch_key.is_(None) | (deliveries.c.claimed_at < lease))
    )
    if channel is not None:
        query = query.where(deliveries.c.channel == channel)
    if alerts is not None:
        query = query.where(
            deliveries.c.alert_id.is_not(None) if alerts else deliveries.c.alert_id.is_(None)
        )
    return query.order_by(deliveries.c.poll_at).limit(limit)


def transition(
    conn: Connection,
    delivery_ids: Iterable[str],
    status: str,
    now: datetime,
    *,
    from_status: Sequence[str],
    batch_key: str | None = None,
    keep_claim: bool = True,
    provider_message_id: str | None = None,
    error_code: str | None = None,
    not_before: datetime | None = None,
    count_attempt: bool = False,
    new_key: str | None = None,
) -> int:
    """Move rows (held under batch_key when given) from one of from_status to status."""
    ids = list(delivery_ids)
    if not ids:
        return 0
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if provider_message_id is not None:
        values["provider_message_id"] = provider_message_id
    if error_code is not None:
        values["error_code"] = error_code
    if not_before is not None:
        values["not_before"] = not_before
    if count_attempt:
        values["attempts"] = deliveries.c.attempts + 1
    if not keep_claim:
        values["batch_key"] = None
        values["claimed_at"] = None
    if new_key is not None:
        values["batch_key"] = new_key
        values["claimed_at"] = now
    statement = update(deliveries).where(
        one_of(conn, deliveries.c.delivery_id, ids), deliveries.c.status.in_(list(from_status))
    )
    if batch_key is not None:
        statement = statement.where(deliveries.c.batch_key == batch_key)
    return int(conn.execute(statement.values(**values)).rowcount or 0)


_SETTLE_SENT = (
    "WITH settled AS ("
    " UPDATE nf_deliveries SET status = 'sent', updated_at = %(now)s, attempts = attempts + 1,"
    " provider_message_id = COALESCE(%(provider_message_id)s, provider_message_id)"
    " WHERE delivery_id = %(delivery_id)s AND status IN ('sending', 'queued')"
    " AND batch_key = %(batch_key)s RETURNING 1),"
    " claimed AS ("
    " UPDATE nf_deliveries SET status = 'sending', updated_at = %(now)s"
    " WHERE delivery_id = %(next_id)s AND status = 'queued' AND batch_key = %(batch_key)s"
    " RETURNING 1),"
    " counted AS ("
    " UPDATE nf_alerts SET sent = sent + 1, version = version + 1"
    " WHERE alert_id = %(alert_id)s AND EXISTS (SELECT FROM settled))"
    " SELECT EXISTS (SELECT FROM claimed)"
)


def settle_sent(
    conn: Connection,
    delivery_id: str,
    batch_key: str,
    now: datetime,
    *,
    alert_id: str,
    provider_message_id: str | None,
    claim_next: str | None,
) -> bool:
    """Mark one held row sent, count it on its alert and claim the next row, in one statement
    (PostgreSQL): what transition and bump do in three, for the SMS lanes' hot path.

    Return whether claim_next is now held. (PostgreSQL runs every data-modifying CTE whether
    or not the final SELECT reads it.) One statement is atomic: run it on a connection in
    autocommit, so the alert row it counts on is locked only while the statement runs. It goes
    to the driver as plain SQL (shared.db.raw).
    """
    params = {
        "now": now,
        "provider_message_id": provider_message_id,
        "delivery_id": delivery_id,
        "batch_key": batch_key,
        "next_id": claim_next,
        "alert_id": alert_id,
    }
    return bool(raw(conn, _SETTLE_SENT, params).fetchone()[0])


def bump(conn: Connection, alert_id: str | None, **deltas: int) -> None:
    """Add to an alert's counters in the caller's transaction (the ledger change's own)."""
    changes = {k: v for k, v in deltas.items() if v}
    if alert_id is None or not changes:
        return
    unknown = set(changes) - set(COUNTERS) - {"dead_batches", "batches"}
    if unknown:
        raise ValueError(f"unknown alert counters {sorted(unknown)}")
    values: dict[str, Any] = {name: alerts.c[name] + delta for name, delta in changes.items()}
    values["version"] = alerts.c.version + 1
    conn.execute(update(alerts).where(alerts.c.alert_id == alert_id).values(**values))


def dispatch_batch(batch_key: str | None) -> str | None:
    """Return the dispatch batch a claim belongs to ("<batch id>@<worker>"), else None."""
    batch_id, at, _ = (batch_key or "").rpartition("@")
    return batch_id if at else None


def mark_dead_batch(conn: Connection, batch_id: str, alert_id: str, now: datetime) -> None:
    """Record that a dispatch batch died and count it on its alert, once, in the caller's
    transaction (the one that fails its deliveries)."""
    row = {"batch_id": batch_id, "alert_id": alert_id, "created_at": now}
    # Whether the row is new, by what it returns: psycopg reports a rowcount of -1 (truthy)
    # for this multi-row VALUES form, which counted a batch given up twice as two.
    added = insert_ignore(conn, dead_batches, [row]).returning(dead_batches.c.batch_id)
    if conn.execute(added).first() is not None:
        bump(conn, alert_id, dead_batches=1)


def dead_batch_unlettered(conn: Connection, batch_id: str) -> bool:
    """Return whether batch_id died and is not yet on the dead-letter topic."""
    found = conn.execute(
        select(dead_batches.c.dead_lettered_at).where(dead_batches.c.batch_id == batch_id)
    ).first()
    return found is not None and found.dead_lettered_at is None


def stamp_dead_lettered(conn: Connection, batch_id: str, now: datetime) -> None:
    conn.execute(
        update(dead_batches)
        .where(dead_batches.c.batch_id == batch_id, dead_batches.c.dead_lettered_at.is_(None))
        .values(dead_lettered_at=now)
    )


def by_id(conn: Connection, delivery_id: str) -> Row[Any] | None:
    return conn.execute(select(deliveries).where(deliveries.c.delivery_id == delivery_id)).first()
