"""The transactional outbox: events are rows written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
)

from shared.db import BigId
from shared.events.envelope import Event, json_dumps
from shared.events.registry import EventRegistry

OUTBOX_TABLE = "kinship_outbox"
PROCESSED_TABLE = "kinship_processed_events"


def outbox_table(metadata: MetaData) -> Table:
    """Define the outbox table in a service's metadata (once)."""
    if OUTBOX_TABLE in metadata.tables:
        return metadata.tables[OUTBOX_TABLE]
    return Table(
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


def processed_table(metadata: MetaData) -> Table:
    """Define the table of processed event ids (consumer-side dedupe) in a service's metadata."""
    if PROCESSED_TABLE in metadata.tables:
        return metadata.tables[PROCESSED_TABLE]
    return Table(
        PROCESSED_TABLE,
        metadata,
        Column("consumer_group", String(200), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
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
                {
                    "event_id": event.id,
                    "topic": event_type.topic,
                    "key": event.key,
                    "type": event.type,
                    "source": event.source or self.source,
                    "subject": event.subject,
                    "time": event.time,
                    "data": json_dumps(dict(event.data)),
                }
            )
        if rows:
            conn.execute(insert(self.table), rows)
