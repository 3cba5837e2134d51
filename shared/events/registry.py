"""The event-type registry: one Marshmallow schema per type, checked on publish and on receipt."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema

from shared.errors import InvalidEvent
from shared.events.envelope import Event

TYPE_NAME = re.compile(r"^kinship\.[a-z_]+\.[a-z_]+\.v[0-9]+$")


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


class EventRegistry:
    """Maps type names to their contracts."""

    def __init__(self, types: Iterable[EventType] = ()) -> None:
        self._types: dict[str, EventType] = {}
        self._strict: dict[str, Schema] = {}
        self._lenient: dict[str, Schema] = {}
        for event_type in types:
            self.register(event_type)

    def register(self, event_type: EventType) -> EventType:
        if event_type.name in self._types:
            raise ValueError(f"event type {event_type.name} registered twice")
        self._types[event_type.name] = event_type
        # Producers must not send fields the contract lacks; consumers accept additive changes.
        self._strict[event_type.name] = event_type.schema(unknown=RAISE)
        self._lenient[event_type.name] = event_type.schema(unknown=EXCLUDE)
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
        return self._check(event.type, event.data, self._strict)

    def check_incoming(self, event: Event) -> EventType:
        """Validate a received event; unknown extra fields are tolerated."""
        return self._check(event.type, event.data, self._lenient)

    def _check(
        self, name: str, data: Mapping[str, Any], schemas: Mapping[str, Schema]
    ) -> EventType:
        event_type = self.get(name)
        errors = schemas[name].validate(dict(data))
        if errors:
            raise InvalidEvent(f"{name} violates its schema: {errors}")
        return event_type
