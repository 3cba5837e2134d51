"""Ports for sending email and SMS, with the outcomes every adapter reports the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import NamedTuple, Protocol

NO_FIELDS: Mapping[str, str] = MappingProxyType({})


def substitute(template: str, substitutions: Mapping[str, str]) -> str:
    """Replace each substitution tag in a text by its value, as SendGrid does for a
    personalization (the capture sender, and tests reading what the fake received)."""
    for tag, value in substitutions.items():
        template = template.replace(tag, value)
    return template


class Recipient(NamedTuple):
    """One personalization of a bulk email.

    A named tuple: an alert makes one per recipient, and a frozen dataclass's __init__ (a
    setattr per field) cost several times as much."""

    email: str
    name: str | None
    custom_args: Mapping[str, str]
    headers: Mapping[str, str] = NO_FIELDS
    substitutions: Mapping[str, str] = NO_FIELDS
    subject: str | None = None
    # The sender's name for this recipient alone (a discreet supporter's names no cause).
    from_name: str | None = None


@dataclass(frozen=True)
class EmailBatch:
    """One provider request: shared content, up to 1,000 recipients."""

    from_email: str
    from_name: str
    subject: str
    text: str
    html: str
    recipients: list[Recipient]
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    # Headers of every message in the request; a recipient's own add to them or override them.
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sms:
    """One text message."""

    to: str
    body: str
    status_callback: str | None = None
    custom_args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    """The provider accepted the request."""

    provider_message_id: str | None


# What providers answer when they refuse the account rather than the message.
CREDENTIALS_STATUSES = frozenset({401, 403})


def retry_after_seconds(raw: str | None, now: datetime | None = None) -> float | None:
    """Read a Retry-After header: seconds, or an HTTP date (RFC 9110), as seconds from now."""
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by the RFC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class SendError(Exception):
    """A provider refused or did not answer."""


class TransientSendError(SendError):
    """Try again later (429, 5xx, transport). ambiguous: the request may have been accepted."""

    def __init__(self, message: str, retry_after: float | None = None, ambiguous: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class CredentialsRefused(SendError):
    """The provider refused our credentials or sender (401/403): nothing is wrong with the
    message, and every send fails until an operator fixes the key. Sending pauses; no delivery
    is failed."""


class PermanentSendError(SendError):
    """Never retry. bad_indices names the refused recipients of a batch when the provider says;
    opt_out means the recipient has unsubscribed at the provider (Twilio 21610)."""

    def __init__(
        self,
        message: str,
        code: str,
        bad_indices: list[int] | None = None,
        opt_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.bad_indices = bad_indices or []
        self.opt_out = opt_out


class EmailSender(Protocol):
    def send_batch(self, batch: EmailBatch) -> Accepted:
        """Send one request (blocks); raise TransientSendError or PermanentSendError."""


class SmsSender(Protocol):
    def send(self, sms: Sms) -> Accepted:
        """Send one message (blocks); raise TransientSendError or PermanentSendError."""
