"""Email through SendGrid's v3 Mail Send API with the official SDK."""

from __future__ import annotations

import re
import urllib.error
from typing import Any

import orjson
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from services.notifications.senders import (
    CREDENTIALS_STATUSES,
    Accepted,
    CredentialsRefused,
    EmailBatch,
    PermanentSendError,
    TransientSendError,
    retry_after_seconds,
)

_BAD_ADDRESS = re.compile(r"^personalizations\.(\d+)\.(to|cc|bcc)")
# The SDK's HTTP client encodes a body with the standard library's json unless the content type
# says otherwise, in which case it sends the string given. orjson writes a 1,000-recipient body
# ten times faster: the stdlib encoder was a seventh of an email sender's CPU.
_JSON_UTF8 = {"Content-Type": "application/json; charset=utf-8"}


class _Payload(bytes):
    """A request body that formats as its size.

    The SDK's HTTP client formats every body into a debug message, logged or not
    (`'PAYLOAD: {data}'.format(...)` in python_http_client): the repr of a 1,000-recipient
    body was 7 % of an email sender's CPU. With debug logging on, it would also have written
    every recipient's address into the log."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes of JSON>"

    def __str__(self) -> str:
        return repr(self)

    def __format__(self, spec: str) -> str:
        return repr(self)


class _JsonText(str):
    """The JSON text handed to the SDK, which encodes it to send: to the bytes already made."""

    payload: _Payload

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        if encoding.lower().replace("-", "").replace("_", "") == "utf8":
            return self.payload
        return str(self).encode(encoding, errors)


def json_body(body: dict[str, Any]) -> str:
    """Return a mail/send body for the SDK: JSON text that encodes to a _Payload."""
    raw = orjson.dumps(body)
    text = _JsonText(raw.decode())
    text.payload = _Payload(raw)
    return text


def _retry_after(exc: HTTPError) -> float | None:
    headers = getattr(exc, "headers", None)
    return retry_after_seconds(headers.get("Retry-After") if headers is not None else None)


# Kinship's mail is never tracked, whatever the account's defaults: click tracking would
# route each unsubscribe, preference, confirmation and erasure link (its token) through
# SendGrid's redirects and store it there, and an open-tracking pixel tells when and where a
# person read about a cause they may keep to themselves. SendGrid's own unsubscribe link
# (subscription tracking) would put an address on the account's global unsubscribe list, so
# one organization's unsubscribe would drop every organization's mail (Kinship's own
# unsubscribe links and List-Unsubscribe are per organization).
NO_TRACKING = {
    "click_tracking": {"enable": False, "enable_text": False},
    "open_tracking": {"enable": False},
    "ganalytics": {"enable": False},
    "subscription_tracking": {"enable": False},
}


def display_name(name: str | None) -> str:
    """A supporter's name as a recipient's display name: SendGrid refuses a `to.name` holding
    "," or ";" (and a line break would break the header), so a name typed "Nguyen, An" must
    not cost its owner their email. Such characters become spaces."""
    if not name or (name.isprintable() and "," not in name and ";" not in name):
        return name or ""  # nearly every name, at a C-level scan
    kept = "".join(" " if c in ",;" or not c.isprintable() else c for c in name)
    return " ".join(kept.split())


def mail_body(batch: EmailBatch) -> dict[str, Any]:
    """Return the v3 mail/send JSON body of a batch."""
    personalizations = []
    for recipient in batch.recipients:
        to: dict[str, str] = {"email": recipient.email}
        name = display_name(recipient.name)
        if name:
            to["name"] = name
        item: dict[str, Any] = {"to": [to], "custom_args": recipient.custom_args}
        if recipient.headers:
            item["headers"] = recipient.headers
        if recipient.substitutions:
            item["substitutions"] = recipient.substitutions
        if recipient.subject:
            item["subject"] = recipient.subject
        if recipient.from_name:
            item["from"] = {"email": batch.from_email, "name": recipient.from_name}
        personalizations.append(item)
    body: dict[str, Any] = {
        "personalizations": personalizations,
        "from": {"email": batch.from_email, "name": batch.from_name},
        "subject": batch.subject,
        "content": [
            {"type": "text/plain", "value": batch.text},
            {"type": "text/html", "value": batch.html},
        ],
    }
    if batch.custom_args:
        body["custom_args"] = batch.custom_args
    if batch.headers:
        body["headers"] = dict(batch.headers)
    if batch.categories:
        body["categories"] = batch.categories
    body["tracking_settings"] = NO_TRACKING
    return body


class SendGridSender:
    """Posts one mail/send request per batch; maps SDK errors to transient or permanent."""

    def __init__(self, client: SendGridAPIClient) -> None:
        self.client = client

    @classmethod
    def build(cls, api_key: str, host: str, timeout: float = 30.0) -> SendGridSender:
        client = SendGridAPIClient(api_key=api_key, host=host)
        client.client.timeout = timeout  # the SDK has no timeout of its own
        return cls(client)

    def send_batch(self, batch: EmailBatch) -> Accepted:
        try:
            body = json_body(mail_body(batch))
            response = self.client.client.mail.send.post(
                request_body=body, request_headers=_JSON_UTF8
            )
        except HTTPError as exc:
            status = int(getattr(exc, "status_code", 0) or 0)
            if status == 429 or status >= 500:
                raise TransientSendError(f"sendgrid {status}", _retry_after(exc)) from None
            if status in CREDENTIALS_STATUSES:  # a revoked key, an unverified sender
                raise CredentialsRefused(f"sendgrid {status}") from None
            raise self._permanent(exc, status) from None
        except urllib.error.URLError as exc:
            # urllib wraps what failed while connecting and sending: refused, unreachable, a
            # name that does not resolve, a connect timeout, a reset before the body was all
            # sent. The provider never had the whole request: an outage, waited out as a 5xx.
            raise TransientSendError(f"sendgrid unreachable: {type(exc.reason).__name__}") from None
        except TimeoutError as exc:
            raise TransientSendError(f"sendgrid timeout: {exc}", ambiguous=True) from None
        except (ConnectionError, OSError) as exc:
            # Reset or closed while the answer was awaited: the request may have been read.
            raise TransientSendError(
                f"sendgrid transport: {type(exc).__name__}", ambiguous=True
            ) from None
        headers = getattr(response, "headers", None)
        message_id = headers.get("X-Message-Id") if headers is not None else None
        return Accepted(message_id)

    @staticmethod
    def _permanent(exc: HTTPError, status: int) -> PermanentSendError:
        bad: set[int] = set()
        try:
            errors = exc.to_dict.get("errors", [])
        except Exception:  # noqa: BLE001 - an unreadable error body is still a refusal
            errors = []
        for error in errors:
            match = _BAD_ADDRESS.match(str(error.get("field") or ""))
            if match:
                bad.add(int(match.group(1)))
        return PermanentSendError(f"sendgrid {status}", str(status), sorted(bad))
