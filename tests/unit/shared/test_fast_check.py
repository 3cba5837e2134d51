"""The registry's fast acceptance test never accepts what the Marshmallow schema would refuse."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from marshmallow import Schema, fields, validate

from shared.events.catalog import CATALOG
from shared.events.registry import EventRegistry, tolerant

JUNK: list[Any] = [
    None,
    "",
    "x",
    "a" * 65,
    "not an email",
    "2026-13-45T99:00:00Z",
    0,
    -1,
    1.5,
    True,
    False,
    [],
    ["x", 1],
    {},
    {"unexpected": 1},
    "draft",
    "email",
    "12",
]


def plausible(field: fields.Field[Any], rng: random.Random, mutate: float = 0.0) -> Any:
    """A value the field probably accepts (the test also mutates it into junk)."""
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            return rng.choice(list(validator.choices))
        if isinstance(validator, validate.Length) and validator.equal:
            return "f" * validator.equal
    if isinstance(field, fields.Email):
        return "mei@example.org"
    if isinstance(field, fields.DateTime):
        return datetime.now(UTC).isoformat()
    if isinstance(field, fields.Boolean):
        return rng.random() < 0.5
    if isinstance(field, fields.Integer):
        return rng.randint(-5, 10_000)
    if isinstance(field, fields.List):
        return [plausible(field.inner, rng, mutate) for _ in range(rng.randint(0, 3))]
    if isinstance(field, fields.Nested):
        return document(field.schema, rng, mutate)
    if isinstance(field, fields.Dict):
        values = field.value_field
        if values is None:
            return {"en": "Hello", "ja": "こんにちは"}
        return {"en": plausible(values, rng, mutate), "ja": plausible(values, rng, mutate)}
    return rng.choice(["p-1", "Mei", "en", "ja", "zh-Hant"])


def document(schema: Schema, rng: random.Random, mutate: float = 0.0) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, field in schema.load_fields.items():
        key = field.data_key or name
        roll = rng.random()
        if roll < mutate / 3:
            continue  # missing
        if roll < mutate:
            data[key] = rng.choice(JUNK)
        else:
            data[key] = plausible(field, rng, mutate)
    if rng.random() < mutate:
        data["extra_field"] = "surprise"
    return data


@pytest.mark.parametrize("event_type", list(CATALOG), ids=lambda t: t.name)
@pytest.mark.parametrize("strict", [True, False], ids=["outgoing", "incoming"])
def test_fast_acceptance_is_a_subset_of_the_schema(event_type: Any, strict: bool) -> None:
    registry = EventRegistry([event_type])
    # What the registry itself checks against: consumers ignore unknown fields at every depth.
    schema = event_type.schema(unknown="raise") if strict else tolerant(event_type.schema())
    rng = random.Random(event_type.name)
    accepted_fast = rejected_fast = 0
    for i in range(300):
        data = document(schema, rng, mutate=0.0 if i < 30 else 0.3)
        if registry.accepts_fast(event_type.name, data, strict=strict):
            accepted_fast += 1
            assert schema.validate(data) == {}, data
        else:
            rejected_fast += 1
    # The cheap path must actually serve well-formed events, or it is only overhead.
    assert accepted_fast >= 30
    assert rejected_fast > 0


class _Lists(Schema):
    ids = fields.List(fields.String(), required=True, validate=validate.Length(max=3))
    maybe = fields.List(fields.String(allow_none=True))
    counts = fields.List(fields.Integer())


@pytest.mark.parametrize(
    ("data", "fast"),
    [
        ({"ids": ["a", "b"]}, True),
        ({"ids": []}, True),
        ({"ids": ["a", "b", "c", "d"]}, False),  # the list's own validator
        ({"ids": ["a", None]}, False),
        ({"ids": ["a", 1]}, False),
        ({"ids": ("a",)}, False),
        ({"ids": ["a"], "maybe": ["x", None]}, True),
        ({"ids": ["a"], "maybe": [None, 2]}, False),
        ({"ids": ["a"], "counts": [1, 2]}, True),
        ({"ids": ["a"], "counts": [1, True]}, False),
        ({"ids": ["a"], "counts": [1, 2.0]}, False),  # Marshmallow decides: it takes 2.0
    ],
)
def test_lists_of_plain_items_pass_fast_only_when_the_schema_takes_them(
    data: dict[str, Any], fast: bool
) -> None:
    from shared.events.registry import EventType

    event_type = EventType("kinship.test_list.checked.v1", "t", _Lists)
    assert EventRegistry([event_type]).accepts_fast(event_type.name, data, strict=True) is fast
    if fast:
        assert _Lists().validate(data) == {}


@pytest.mark.parametrize("bad", ["x" * 65, "a\x00b", "", "tab\there"])
def test_a_dispatch_batch_naming_an_id_the_ledger_cannot_store_is_refused(bad: str) -> None:
    """Refused as invalid, it goes to the dead-letter topic; accepted, it failed the ledger's
    insert on every try and held its partition for ever."""
    from shared.errors import InvalidEvent
    from shared.events import Event
    from shared.events.catalog import type_name

    data = {
        "batch_id": "alert-1:1", "alert_id": "alert-1", "campaign_id": "camp-1",
        "organization_id": "org-1", "channel": "email", "seq": 1,
        "at": "2026-11-28T12:00:00Z", "supporter_ids": ["sup-1", bad],
    }  # fmt: skip
    batch = Event(type=type_name("email_batch.queued"), key="alert-1:1", data=data, source="t")
    with pytest.raises(InvalidEvent, match="supporter_ids"):
        CATALOG.check_incoming(batch)
    CATALOG.check_incoming(Event(batch.type, batch.key, {**data, "supporter_ids": ["sup-1"]}, "t"))
