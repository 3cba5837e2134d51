"""Events: the CloudEvents envelope, the type registry and the catalog of Kinship's types."""

from shared.events.envelope import Event, decode
from shared.events.registry import EventRegistry, EventType, UnknownEventType

__all__ = ["Event", "EventRegistry", "EventType", "UnknownEventType", "decode"]
