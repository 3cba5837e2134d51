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
