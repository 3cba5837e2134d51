"""The outbox refuses an event the broker would refuse, before its transaction commits."""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields
from sqlalchemy import MetaData, create_engine, func, select

from shared.events import Event, EventRegistry, EventType
from shared.outbox import MAX_EVENT_BYTES, EventTooLarge, Outbox, outbox_table

NOTE = "kinship.test_note.created.v1"


class NoteSchema(Schema):
    text = fields.String(required=True)


def test_an_event_over_the_size_limit_is_refused_and_nothing_is_staged() -> None:
    metadata = MetaData()
    table = outbox_table(metadata)
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    outbox = Outbox(table, EventRegistry([EventType(NOTE, "kinship.test", NoteSchema)]), "/t")

    def note(size: int) -> Event:
        # The JSON value is {"text":"..."}: 11 bytes around the text.
        return Event(type=NOTE, key="n1", data={"text": "x" * (size - 11)}, source="/t")

    with engine.begin() as conn:
        outbox.add(conn, note(MAX_EVENT_BYTES))
    with pytest.raises(EventTooLarge, match=f"{MAX_EVENT_BYTES + 1} bytes") as refused:
        with engine.begin() as conn:
            outbox.add_many(conn, [note(100), note(MAX_EVENT_BYTES + 1)])
    assert isinstance(refused.value, ValueError) and refused.value.size == MAX_EVENT_BYTES + 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 1


class _Acked:
    is_done = True
    exception = None

    @staticmethod
    def failed() -> bool:
        return False


class _Producer:
    """Acknowledges every record at once, and keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, topic: str, *, key: bytes, value: bytes, headers: object) -> _Acked:
        self.sent.append(value)
        return _Acked()

    def flush(self, timeout: float | None = None) -> None:
        pass


def test_the_relay_takes_a_batch_up_to_its_byte_limit_in_order() -> None:
    """A relay holds its batch whole: rows are cut after the one reaching max_batch_bytes, and
    a row over the limit on its own still goes (alone)."""
    from shared.relay import OutboxRelay

    metadata = MetaData()
    table = outbox_table(metadata)
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    outbox = Outbox(table, EventRegistry([EventType(NOTE, "kinship.test", NoteSchema)]), "/t")
    sizes = [400] * 3 + [2500] + [400] * 3  # each value is {"text":"..."}: 11 bytes around it
    with engine.begin() as conn:
        outbox.add_many(conn, [
            Event(type=NOTE, key="n1", data={"text": str(i) * (size - 11)}, source="/t")
            for i, size in enumerate(sizes)
        ])  # fmt: skip
    producer = _Producer()
    relay = OutboxRelay(engine, table, lambda: producer, batch_size=100, max_batch_bytes=1000)
    batches = []
    with engine.connect() as conn:
        while published := relay.publish_batch(conn):
            batches.append(published)
    assert batches == [3, 1, 3]  # 400+400+400 reaches 1,000; 2,500 alone; the rest
    assert [len(value) for value in producer.sent] == sizes
    assert [value[9:10] for value in producer.sent] == [str(i).encode() for i in range(7)]
