"""The delivery ledger on PostgreSQL: what the queue poller sees, and what a status change costs."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select, text

from services.notifications import ledger
from services.notifications.store import deliveries
from shared.db import make_engine
from shared.events.envelope import utcnow
from shared.migrate import upgrade

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(database_url: str) -> Engine:
    upgrade("notifications", database_url)
    return make_engine(database_url)


def hot_updates(engine: Engine) -> int:
    """Heap-only updates of the ledger so far (the statistics are flushed after each commit)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        return int(
            conn.execute(
                text(
                    "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'nf_deliveries'"
                )
            ).scalar_one()
        )


def test_a_dispatch_batch_is_settled_in_place_and_never_enters_the_pollers_index(
    engine: Engine,
) -> None:
    """A fan-out writes each recipient's row as `sending`, then `sent`. Those rows are not the
    poller's, and no index names their status: PostgreSQL rewrites them in place (HOT), with
    no new entry in any index, which halves what settling a million recipients costs it."""
    now = utcnow()
    alert_id, batch_key = str(uuid.uuid4()), "alert:1@worker-a"
    entries = [ledger.Entry(f"sup-{i:04d}", "sending", batch_key) for i in range(1000)]
    waiting = ledger.new_row(message_key="thanks:sig-1", recipient_id="sup-x", channel="email",
                             kind="thanks", status="queued", now=now)  # fmt: skip
    with engine.begin() as conn:
        inserted = ledger.insert_batch(conn, entries, message_key=alert_id, channel="email",
                                       kind="alert", alert_id=alert_id, now=now)  # fmt: skip
        ids = [row.delivery_id for row in inserted]
        ledger.insert_new(conn, [waiting])
    with engine.connect() as conn:
        polled = conn.execute(
            select(deliveries.c.message_key).where(deliveries.c.delivery_id.in_(
                select(ledger.pollable(now, now, 50).subquery())
            ))
        ).scalars()  # fmt: skip
        assert list(polled) == ["thanks:sig-1"]
    before = hot_updates(engine)
    with engine.begin() as conn:
        moved = ledger.transition(conn, ids, "sent", now + timedelta(seconds=1),
                                  from_status=("sending",), batch_key=batch_key,
                                  provider_message_id="msg-1", count_attempt=True)  # fmt: skip
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
    assert moved == 1000

    deadline = time.monotonic() + 10
    while hot_updates(engine) - before < 1000 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert hot_updates(engine) - before == 1000, "settling rewrote index entries"
    with engine.connect() as conn:
        in_index = conn.execute(
            select(func.count()).select_from(deliveries).where(deliveries.c.poll_at.is_not(None))
        ).scalar_one()
    assert in_index == 1


def test_a_redelivered_batch_inserts_only_the_rows_it_did_not_have(engine: Engine) -> None:
    """A batch is first inserted whole; when some of its rows exist (a redelivery after a
    crash), the caller's transaction goes on and only the missing rows are added, once."""
    now = utcnow()
    alert_id = str(uuid.uuid4())

    def insert(conn: Connection, first: int, last: int, batch_key: str) -> list[Any]:
        entries = [ledger.Entry(f"sup-{i:04d}", "sending", batch_key) for i in range(first, last)]
        return ledger.insert_batch(conn, entries, message_key=alert_id, channel="email",
                                   kind="alert", alert_id=alert_id, now=now)  # fmt: skip

    with engine.begin() as conn:
        assert len(insert(conn, 0, 600, "b1@worker-a")) == 600
    with engine.begin() as conn:
        again = insert(conn, 300, 1000, "b1@worker-b")
        assert sorted(row.recipient_id for row in again) == [
            f"sup-{i:04d}" for i in range(600, 1000)
        ]
        ledger.bump(conn, alert_id, total=1)  # the transaction is still usable after the retry
    with engine.connect() as conn:
        held = dict(
            conn.execute(
                select(deliveries.c.recipient_id, deliveries.c.batch_key).where(
                    deliveries.c.message_key == alert_id
                )
            ).all()
        )
    assert len(held) == 1000
    assert {held[f"sup-{i:04d}"] for i in range(600)} == {"b1@worker-a"}
    assert {held[f"sup-{i:04d}"] for i in range(600, 1000)} == {"b1@worker-b"}


def test_the_poller_takes_due_waiting_rows_and_stale_claims_only(engine: Engine) -> None:
    now = utcnow()
    later = now + timedelta(hours=2)

    def row(key: str, status: str, **extra: object) -> dict[str, object]:
        base = ledger.new_row(message_key=key, recipient_id="sup-1", channel="sms",
                              kind="thanks", status=status, now=now)  # fmt: skip
        return base | extra

    with engine.begin() as conn:
        ledger.insert_new(conn, [
            row("due", "queued"),
            row("deferred-past", "deferred", not_before=now - timedelta(minutes=1)),
            row("deferred-future", "deferred", not_before=later),
            row("claimed-fresh", "sending", batch_key="poll:a", claimed_at=now),
            row("claimed-stale", "queued", batch_key="poll:b",
                claimed_at=now - timedelta(hours=1)),
            row("batch-held", "queued", batch_key="alert:3@worker-b", claimed_at=now),
            row("done", "sent", batch_key="poll:c", claimed_at=now - timedelta(hours=1)),
        ])  # fmt: skip
    lease = now - timedelta(minutes=5)
    with engine.connect() as conn:
        ids = ledger.pollable(now, lease, 50).subquery()
        taken = conn.execute(
            select(deliveries.c.message_key).where(deliveries.c.delivery_id.in_(select(ids)))
        ).scalars()
        assert sorted(taken) == ["claimed-stale", "deferred-past", "due"]
        # The deferred text becomes the poller's when its morning comes.
        assert (
            conn.execute(
                select(deliveries.c.poll_at).where(deliveries.c.message_key == "deferred-future")
            ).scalar_one()
            == later
        )


def test_outbox_payloads_are_stored_without_compression(engine: Engine) -> None:
    """A dispatch batch's payload is written once, read once and deleted: PostgreSQL keeps it
    out of line as is, instead of compressing it on the way in and out."""
    with engine.connect() as conn:
        storage = conn.execute(
            text(
                "SELECT attstorage FROM pg_attribute"
                " WHERE attrelid = 'kinship_outbox'::regclass AND attname = 'data'"
            )
        ).scalar_one()
    assert storage == "e"  # EXTERNAL
