"""Exceptions shared by every service: how a failure should be handled, not where it came from."""

from __future__ import annotations


class KinshipError(Exception):
    """Base of Kinship's own exceptions."""


class InvalidEvent(KinshipError):
    """An event that can never be processed (bad JSON, unknown type, schema violation).

    Never retried: the consumer sends it to the dead-letter topic and moves on.
    """


class RetryableError(KinshipError):
    """A transient failure (transport, 429, 5xx): retry the event later with backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DomainError(KinshipError):
    """A rule said no; the HTTP edge turns it into the one JSON error shape."""

    status = 400

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class FieldError(DomainError):
    """One input field is wrong (422 naming the field)."""

    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", {field: [message]})


class Unauthenticated(DomainError):
    status = 401


class PermissionDenied(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Gone(DomainError):
    """What was asked for existed and was removed for good (410)."""

    status = 410
