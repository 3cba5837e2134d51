"""A minimal service built on shared/: its outbox, its consumer and one effect table.

Run as a separate process so fault tests can SIGKILL it:
    python -m tests.integration.eventapp relay    DB_URL BOOTSTRAP
    python -m tests.integration.eventapp consumer DB_URL BOOTSTRAP TOPIC GROUP [--delay-ms N]
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, insert, text

from shared.consumer import ConsumerRunner, RetryPolicy
from shared.db import BigId, json_param, make_engine
from shared.events import Event, EventRegistry, EventType
from shared.kafka import make_producer
from shared.outbox import Outbox, shared_tables
from shared.relay import OutboxRelay

ITEM_CREATED = "kinship.test_item.created.v1"


class ItemSchema(Schema):
    item_id = fields.String(required=True)
    seq = fields.Integer(required=True)


def build(topic: str) -> tuple[MetaData, Table, Table, Table, EventRegistry]:
    metadata = MetaData()
    outbox, processed = shared_tables(metadata)
    effects = Table(
        "effects",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False),  # deliberately not unique
        Column("item_key", String(64), nullable=False),
        Column("seq", Integer, nullable=False),
    )
    registry = EventRegistry([EventType(ITEM_CREATED, topic, ItemSchema)])
    return metadata, outbox, processed, effects, registry


def make_outbox(outbox_table: Table, registry: EventRegistry) -> Outbox:
    return Outbox(outbox_table, registry, source="/tests/eventapp")


def item_event(key: str, seq: int) -> Event:
    return Event(
        type=ITEM_CREATED, key=key, data={"item_id": key, "seq": seq}, source="/tests/eventapp"
    )


def effect_handler(effects: Table, delay: float = 0.0) -> Any:
    def handle(event: Event, conn: Connection) -> None:
        if delay:
            time.sleep(delay)
        conn.execute(
            insert(effects).values(
                event_id=event.id, item_key=event.data["item_id"], seq=event.data["seq"]
            )
        )

    return handle


def bulk_effect_handler(effects: Table) -> Any:
    """Apply a run of events in one statement (one JSON parameter on PostgreSQL, rows on SQLite)."""

    def handle(events: list[Event], conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text(
                    f"INSERT INTO {effects.name} (event_id, item_key, seq) "
                    "SELECT r->>0, r->>1, (r->>2)::int "
                    "FROM json_array_elements(CAST(:rows AS json)) r"
                ),
                {"rows": json_param([(e.id, e.data["item_id"], e.data["seq"]) for e in events])},
            )
            return
        rows = [
            {"event_id": e.id, "item_key": e.data["item_id"], "seq": e.data["seq"]} for e in events
        ]
        conn.execute(insert(effects), rows)

    return handle


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["relay", "consumer"])
    parser.add_argument("db")
    parser.add_argument("bootstrap")
    parser.add_argument("topic", nargs="?", default="kinship.test")
    parser.add_argument("group", nargs="?", default="test-group")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--bulk", action="store_true", help="apply effects with a batch handler")
    args = parser.parse_args(argv)
    _, outbox, processed, effects, registry = build(args.topic)
    engine = make_engine(args.db)
    runner: Any
    if args.role == "relay":
        runner = OutboxRelay(
            engine,
            outbox,
            lambda: make_producer(args.bootstrap, "test-relay"),
            batch_size=args.batch,
        )
    else:
        handler = effect_handler(effects, args.delay_ms / 1000)
        runner = ConsumerRunner(
            engine=engine,
            processed=processed,
            registry=registry,
            group=args.group,
            topics=[args.topic],
            handlers={} if args.bulk else {ITEM_CREATED: [handler]},
            batch_handlers={ITEM_CREATED: bulk_effect_handler(effects)} if args.bulk else None,
            bootstrap=args.bootstrap,
            retry=RetryPolicy(base_delay=0.2),
            max_records=args.batch,
        )
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    print("ready", flush=True)
    runner.run()


if __name__ == "__main__":
    main(sys.argv[1:])
