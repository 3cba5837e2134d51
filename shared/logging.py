"""Structured JSON logging that never prints personal data.

Every record goes through a redaction step: fields whose names denote personal data are
replaced, and email addresses or phone numbers found in any value are masked. Services should
not log personal data in the first place; this is the net beneath them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

PERSONAL_KEYS = frozenset(
    {
        "email",
        "to",
        "phone",
        "from_number",
        "to_number",
        "given_name",
        "family_name",
        "name",
        "first_name",
        "last_name",
        "postal_code",
        "address",
        "comment",
        "pronouns",
        "ip",
        "remote_addr",
        "person",
        "recipient",
        "recipients",
        "body",
        "password",
        "token",
        "api_key",
        "authorization",
        "secret",
    }
)
# Any script: 陳怡君@例え.jp is an address Kinship accepts.
EMAIL = re.compile(r"[^\s@<>\"'`,;:()\[\]]+@[^\s@<>\"'`,;:()\[\]]+\.[^\s@<>\"'`,;:()\[\].]{2,}")
PHONE = re.compile(r"(?<![\w-])\+?\d[\d \-().]{7,}\d(?![\w-])")
REDACTED = "[redacted]"
_STD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}


def redact_value(value: Any) -> Any:
    """Mask emails and phone numbers inside a value; recurse into containers."""
    if isinstance(value, str):
        return PHONE.sub(REDACTED, EMAIL.sub(REDACTED, value))
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple | set):
        return [redact_value(item) for item in value]
    return value


def error_text(exc: BaseException, limit: int = 2000) -> str:
    """What a retry or dead-letter header may say of an error. A database error is named by
    its class, SQLSTATE and constraint: PostgreSQL's message quotes row values ("Key
    (email)=(...) already exists", "Failing row contains (...)"). Anything else is masked as
    a log line is."""
    diag = getattr(exc, "diag", None) or getattr(getattr(exc, "orig", None), "diag", None)
    sqlstate = getattr(diag, "sqlstate", None)
    if sqlstate:
        cause = getattr(exc, "orig", None) or exc
        parts = [type(exc).__name__, f"{type(cause).__name__} (SQLSTATE {sqlstate})"]
        for label in ("constraint_name", "table_name", "column_name"):
            value = getattr(diag, label, None)
            if value:
                parts.append(f"{label.split('_')[0]} {value}")
        return ": ".join(parts[:2]) + ("; " + ", ".join(parts[2:]) if parts[2:] else "")
    return str(redact_value(str(exc)))[:limit]


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: REDACTED if key.lower() in PERSONAL_KEYS else redact_value(value)
        for key, value in data.items()
    }


def _redact(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    return redact_mapping(event_dict)


def _stdlib_extras(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    record = event_dict.get("_record")
    if record is not None:
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_") and key not in event_dict:
                event_dict[key] = value
    return event_dict


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send all logging (stdlib and structlog) to stderr as one JSON object per line."""
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared_processors, _stdlib_extras],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks are rendered first so that what they quote is redacted too.
            structlog.processors.format_exc_info,
            _redact,
            structlog.processors.JSONRenderer(default=str),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The provider SDKs log every request at INFO or DEBUG (URLs, headers, python_http_client's
    # whole body): quiet at INFO, where a fan-out would write lines by the thousand a second.
    for noisy in ("kafka", "urllib3", "werkzeug", "twilio.http_client", "python_http_client"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)
