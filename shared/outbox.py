"""The transactional outbox: events are rows written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
    text,
)
from sqlalchemy import event as sa_event

from shared.db import BigId, Moment, json_param
from shared.events.envelope import Event, json_dumps
from shared.events.registry import EventRegistry

OUTBOX_TABLE = "kinship_outbox"
# The largest event value (JSON data) the outbox takes: with its key and headers (columns of at
# most 200 characters) safely under the broker's default message.max.bytes (1 MiB), which
# refuses a larger record for good. The producer allows 4 MiB: without this cap such an event
# would only fail at the relay, after its transaction committed.
MAX_EVENT_BYTES = 900_000
PROCESSED_TABLE = "kinship_processed_events"
PARKED_TABLE = "kinship_parked_events"
# Every INSERT into the outbox NOTIFYs this channel (delivered at commit), so an idle relay
# LISTENing on it starts at once instead of polling (shared.pacing.CommitListener).
NOTIFY_CHANNEL = OUTBOX_TABLE
NOTIFY_DDL = (
    f"CREATE OR REPLACE FUNCTION {OUTBOX_TABLE}_notify() RETURNS trigger LANGUAGE plpgsql"
    f" AS $$ BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', ''); RETURN NULL; END $$",
    f"CREATE TRIGGER {OUTBOX_TABLE}_notify AFTER INSERT ON {OUTBOX_TABLE}"
    f" FOR EACH STATEMENT EXECUTE FUNCTION {OUTBOX_TABLE}_notify()",
)
DROP_NOTIFY_DDL = (
    f"DROP TRIGGER IF EXISTS {OUTBOX_TABLE}_notify ON {OUTBOX_TABLE}",
    f"DROP FUNCTION IF EXISTS {OUTBOX_TABLE}_notify()",
)


class EventTooLarge(ValueError):
    """An event larger than MAX_EVENT_BYTES: refused before its transaction commits (HTTP 413)."""

    def __init__(self, event_type: str, size: int) -> None:
        super().__init__(f"a {event_type} event of {size} bytes is over {MAX_EVENT_BYTES}")
        self.event_type = event_type
        self.size = size


def outbox_table(metadata: MetaData) -> Table:
    """Define the outbox table in a service's metadata (once)."""
    if OUTBOX_TABLE in metadata.tables:
        return metadata.tables[OUTBOX_TABLE]
    table = Table(
        OUTBOX_TABLE,
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("type", String(200), nullable=False),
        Column("source", String(200), nullable=False),
        Column("subject", String(200)),
        Column("time", DateTime(timezone=True), nullable=False),
        Column("data", LargeBinary, nullable=False),
    )
    # Migrations add the trigger with NOTIFY_DDL; this adds it to tables made by create_all.
    for statement in NOTIFY_DDL:
        ddl = DDL(statement)  # type: ignore[no-untyped-call]
        sa_event.listen(table, "after_create", ddl.execute_if(dialect="postgresql"))
    return table


def processed_table(metadata: MetaData) -> Table:
    """Define the table of processed event ids (consumer-side dedupe) in a service's metadata,
    and beside it the consumer's other table, the parked events (parked_table)."""
    if PROCESSED_TABLE in metadata.tables:
        return metadata.tables[PROCESSED_TABLE]
    parked_table(metadata)
    return Table(
        PROCESSED_TABLE,
        metadata,
        Column("consumer_group", String(200), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


def parked_table(metadata: MetaData) -> Table:
    """Define the table of parked events: a consumer group's events on its retry topic, each
    the failed event of its key or one waiting behind it (shared.consumer, key order)."""
    if PARKED_TABLE in metadata.tables:
        return metadata.tables[PARKED_TABLE]
    return Table(
        PARKED_TABLE,
        metadata,
        Column("consumer_group", String(200), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("topic", String(200), nullable=False),  # the main topic it came from
        Column("event_key", String(200), nullable=False),
        # Its place in its key's partition of that topic: the key's order.
        Column("origin_offset", BigInteger, nullable=False),
        # When a failed event is next tried (epoch ms); none for an event waiting behind one.
        Column("not_before_ms", BigInteger),
        Column("parked_at", Moment, nullable=False),
        Index("ix_kinship_parked_events_key", "consumer_group", "topic", "event_key"),
    )


def shared_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the outbox and processed-events tables to a service's metadata."""
    return outbox_table(metadata), processed_table(metadata)


class Outbox:
    """Adds events to the outbox inside the caller's transaction, validated against the registry.

    Events of one aggregate keep their order when the transactions that add them are serialized
    on that aggregate (the service updates or locks its row), since row ids follow commit order.
    """

    def __init__(self, table: Table, registry: EventRegistry, source: str) -> None:
        self.table = table
        self.registry = registry
        self.source = source

    def add(self, conn: Connection, *events: Event) -> None:
        """Validate and stage events; they are published only if the transaction commits."""
        self.add_many(conn, events)

    def add_many(self, conn: Connection, events: Iterable[Event]) -> None:
        rows = []
        for event in events:
            event_type = self.registry.check_outgoing(event)
            if not event.key:
                raise ValueError(f"{event.type} needs a record key (the aggregate id)")
            rows.append(
                (
                    event.id,
                    event_type.topic,
                    event.key,
                    event.type,
                    event.source or self.source,
                    event.subject,
                    event.time,
                    json_dumps(dict(event.data)),
                )
            )
            if len(rows[-1][7]) > MAX_EVENT_BYTES:
                raise EventTooLarge(event.type, len(rows[-1][7]))
        if not rows:
            return
        if conn.dialect.name == "postgresql":
            # One statement, the rows as one JSON parameter: executemany sends and runs a
            # statement per event, and a hot path (a batch of signatures) adds many at once.
            rows_json = json_param([[*row[:7], row[7].decode()] for row in rows])
            conn.execute(_INSERT_JSON, {"rows": rows_json})
        else:
            named = [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
            conn.execute(insert(self.table), named)


_COLUMNS = ("event_id", "topic", "key", "type", "source", "subject", "time", "data")
# Row order is array order, so ids (and the relay's publishing order) follow the events' order.
_INSERT_JSON = text(
    f"INSERT INTO {OUTBOX_TABLE} ({', '.join(_COLUMNS)})"
    " SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, CAST(r->>6 AS timestamptz),"
    " convert_to(r->>7, 'UTF8')"
    " FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS e(r, n) ORDER BY n"
)
