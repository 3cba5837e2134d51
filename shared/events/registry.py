"""The event-type registry: one Marshmallow schema per type, checked on publish and on receipt."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, missing

from shared.errors import InvalidEvent
from shared.events.envelope import Event

TYPE_NAME = re.compile(r"^kinship\.[a-z_]+\.[a-z_]+\.v[0-9]+\Z")


Check = Callable[[Any], bool]
# Field classes whose values a JSON document can only carry as exactly this Python type.
_PLAIN = {fields.String: str, fields.Integer: int, fields.Boolean: bool}


def _passes(validators: tuple[Callable[[Any], Any], ...], value: Any) -> bool:
    try:
        return all(validator(value) is not False for validator in validators)
    except ValidationError:
        return False


def _field_check(field: fields.Field[Any]) -> Check:
    """Return a cheap test that passes only values the field itself accepts."""
    allow_none = field.allow_none
    validators = tuple(field.validators)
    plain = _PLAIN.get(type(field))
    if plain is not None:

        def check_plain(value: Any) -> bool:
            if value is None:
                return allow_none
            return type(value) is plain and _passes(validators, value)

        return check_plain
    if type(field) is fields.List:
        inner = _field_check(field.inner)
        inner_plain = _PLAIN.get(type(field.inner))
        if inner_plain is not None and not field.inner.validators:
            # Items of one plain type, nothing else to check on each (a dispatch batch's
            # thousand ids): their types in one pass, 0.6 ms a batch less than a call each.
            only: frozenset[type] = frozenset({inner_plain})
            if field.inner.allow_none:
                only |= {type(None)}

            def check_list_of_plain(value: Any) -> bool:
                if value is None:
                    return allow_none
                return (
                    type(value) is list
                    and only.issuperset(map(type, value))
                    and _passes(validators, value)
                )

            return check_list_of_plain

        def check_list(value: Any) -> bool:
            if value is None:
                return allow_none
            return (
                type(value) is list
                and all(inner(item) for item in value)
                and _passes(validators, value)
            )

        return check_list
    if type(field) is fields.Nested and not field.many and field.unknown is None:
        nested = field.schema
        inner_schema = _schema_check(nested, nested.unknown)
        if inner_schema is not None:

            def check_nested(value: Any) -> bool:
                if value is None:
                    return allow_none
                return inner_schema(value) and _passes(validators, value)

            return check_nested

    def check_field(value: Any) -> bool:
        # The field's own deserialization (dates, emails, ...): exact, without the schema's cost.
        try:
            field.deserialize(value)
        except ValidationError:
            return False
        return True

    return check_field


def _schema_check(schema: Schema, unknown: str) -> Check | None:
    """Compile a fast acceptance test for a schema, or None if only a full load can judge it.

    The test accepts a subset of what the schema accepts: values of exactly the plain type,
    passing the fields' own validators, nothing missing that is required, no unknown key where
    the schema raises on them. Whatever it does not accept goes through Marshmallow, which then
    decides and names the fields. Schemas with hooks or schema-level validators are never
    fast-checked.
    """
    hooks = getattr(schema, "_hooks", None)  # Marshmallow's registry of a schema's hooks
    if hooks is None or any(hooks.values()):
        return None
    checks = [
        (field.data_key or name, field.required, _field_check(field))
        for name, field in schema.load_fields.items()
    ]
    known = frozenset(key for key, _, _ in checks)
    closed = unknown == RAISE

    def check(data: Any) -> bool:
        if type(data) is not dict or (closed and not known.issuperset(data)):
            return False
        for key, required, field_check in checks:
            value = data.get(key, missing)
            if value is missing:
                if required:
                    return False
            elif not field_check(value):
                return False
        return True

    return check


class UnknownEventType(InvalidEvent):
    """The event's type is not in the registry."""


@dataclass(frozen=True)
class EventType:
    """A versioned event type: its name, the topic it travels on and its schema."""

    name: str
    topic: str
    schema: type[Schema]
    description: str = ""

    def __post_init__(self) -> None:
        if not TYPE_NAME.match(self.name):
            raise ValueError(f"event type {self.name!r} is not kinship.<entity>.<verb>.v<major>")


def tolerant(schema: Schema) -> Schema:
    """Make a schema and every schema nested in it ignore fields they do not know, in place.

    A schema's `unknown` does not reach the schemas nested in it: a consumer built with EXCLUDE
    still refused a field added inside `person` or an alert's `content`, and dead-lettered the
    event, during every rolling deploy of an additive change."""
    schema.unknown = EXCLUDE
    pending: list[fields.Field[Any]] = list(schema.fields.values())
    while pending:
        field = pending.pop()
        if isinstance(field, fields.Nested):
            tolerant(field.schema)
        elif isinstance(field, fields.List):
            pending.append(field.inner)
        elif isinstance(field, fields.Dict) and field.value_field is not None:
            pending.append(field.value_field)
    return schema


class EventRegistry:
    """Maps type names to their contracts."""

    def __init__(self, types: Iterable[EventType] = ()) -> None:
        self._types: dict[str, EventType] = {}
        self._strict: dict[str, Schema] = {}
        self._lenient: dict[str, Schema] = {}
        # Cheap acceptance tests compiled from the same schemas (see _schema_check).
        self._fast: dict[tuple[str, bool], Check | None] = {}
        for event_type in types:
            self.register(event_type)

    def register(self, event_type: EventType) -> EventType:
        if event_type.name in self._types:
            raise ValueError(f"event type {event_type.name} registered twice")
        self._types[event_type.name] = event_type
        # Producers must not send fields the contract lacks; consumers accept additive changes.
        self._strict[event_type.name] = strict = event_type.schema(unknown=RAISE)
        self._lenient[event_type.name] = lenient = tolerant(event_type.schema())
        self._fast[event_type.name, True] = _schema_check(strict, RAISE)
        self._fast[event_type.name, False] = _schema_check(lenient, EXCLUDE)
        return event_type

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Any:
        return iter(self._types.values())

    def get(self, name: str) -> EventType:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownEventType(f"unknown event type {name!r}") from None

    def check_outgoing(self, event: Event) -> EventType:
        """Validate an event about to be published; raise InvalidEvent naming the fields."""
        return self._check(event.type, event.data, strict=True)

    def check_incoming(self, event: Event) -> EventType:
        """Validate a received event; unknown extra fields are tolerated."""
        return self._check(event.type, event.data, strict=False)

    def accepts_fast(self, name: str, data: Any, *, strict: bool) -> bool:
        """Whether the cheap test alone accepts the data (a full load may still accept it)."""
        fast = self._fast.get((name, strict))
        return fast is not None and fast(data)

    def _check(self, name: str, data: Mapping[str, Any], *, strict: bool) -> EventType:
        event_type = self.get(name)
        if self.accepts_fast(name, data, strict=strict):
            return event_type
        schema = (self._strict if strict else self._lenient)[name]
        errors = schema.validate(dict(data))
        if errors:
            raise InvalidEvent(f"{name} violates its schema: {errors}")
        return event_type
