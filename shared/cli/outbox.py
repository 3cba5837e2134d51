"""What `kinship outbox` shows: captured messages with recipients, their names and pronouns,
and their links' tokens masked unless asked (--show)."""

from __future__ import annotations

import os
import re
import unicodedata
from typing import Any

# A link's token is a key to its holder's preferences, confirmation or erasure.
_TOKEN_LINK = re.compile(r"(/(?:unsubscribe|preferences|confirmations|erase)/)[^\s\"'<>)]+")


def mask_email(address: str) -> str:
    """Return an address with most of it hidden: 'm***@e***.org'."""
    local, _, domain = address.partition("@")
    if not domain:
        return mask_phone(address)
    host, _, tld = domain.rpartition(".")
    shown_host = f"{host[:1]}***" if host else ""
    return f"{local[:1]}***@{shown_host}.{tld}" if host else f"{local[:1]}***@{tld}"


def mask_phone(number: str) -> str:
    """Return a number with all but its last two digits hidden: '+1•••••••67'."""
    digits = number.lstrip("+")
    prefix = "+" if number.startswith("+") else ""
    return prefix + "•" * max(len(digits) - 2, 0) + digits[-2:]


def mask_links(body: str) -> str:
    """Return a message body with its personal links' tokens hidden."""
    return _TOKEN_LINK.sub(r"\1…", body)


# Scripts written without spaces between words: a name runs straight into what follows
# ("지우님", "美玲さん"), so it is matched wherever it stands.
_UNSPACED = ("CJK", "HANGUL", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN")


def _edge(ch: str) -> str:
    """The boundary a name needs on the side of its edge character ch."""
    return "" if unicodedata.name(ch, "").startswith(_UNSPACED) else r"\w"


def mask_personal(text: str, values: list[str]) -> str:
    """Return text with each of a recipient's names and pronouns shown as '‹…›' (as a whole
    word, in scripts that space their words): a greeting or a subject quotes them, and
    pronouns can out a trans supporter."""
    for value in (v.strip() for v in values):
        if not value:
            continue
        before, after = _edge(value[0]), _edge(value[-1])
        pattern = re.escape(value)
        if before:
            pattern = rf"(?<!\w){pattern}"
        if after:
            pattern = rf"{pattern}(?!\w)"
        text = re.sub(pattern, "‹…›", text)
    return text


def mask(channel: str, address: str) -> str:
    return mask_email(address) if channel == "email" else mask_phone(address)


def captured_messages(
    alert_id: str | None = None,
    supporter_id: str | None = None,
    channel: str | None = None,
    limit: int = 50,
    show: bool = False,
) -> list[dict[str, Any]]:
    """Return captured messages from the notifications database, newest first."""
    from services.notifications.capture import list_captured
    from shared.config import Settings
    from shared.db import make_engine

    url = Settings.from_env("notifications").database_url
    if url.startswith("sqlite:///") and not os.path.exists(url.removeprefix("sqlite:///")):
        # Opening it would create an empty database file; there is simply nothing yet.
        raise FileNotFoundError(url)
    engine = make_engine(url)
    try:
        rows = list_captured(engine, alert_id, supporter_id, channel, limit)
    finally:
        engine.dispose()
    return [summarize(row, show) for row in rows]


def summarize(row: dict[str, Any], show: bool) -> dict[str, Any]:
    """Return the fields a person reading the outbox needs."""
    channel = str(row["channel"])
    address = str(row["to_address"])
    headers = row.get("headers") or {}
    subject, body = str(row.get("subject") or ""), str(row.get("body") or "")
    personal = list(row.get("personal") or ())
    return {
        "id": row["id"],
        "at": row["created_at"],
        "channel": channel,
        "to": address if show else mask(channel, address),
        "kind": "alert" if row.get("alert_id") else "transactional",
        "alert_id": row.get("alert_id"),
        "supporter_id": row.get("supporter_id"),
        "subject": subject if show else mask_personal(subject, personal),
        "body": body if show else mask_personal(mask_links(body), personal),
        "list_unsubscribe": bool(headers.get("List-Unsubscribe")),
    }


def format_message(row: dict[str, Any]) -> str:
    """Return one message as a short block of text."""
    at = row["at"]
    when = at.strftime("%Y-%m-%d %H:%M:%S") if hasattr(at, "strftime") else str(at)
    head = f"#{row['id']}  {when}  {row['channel']:<5} {row['kind']:<13} to {row['to']}"
    if row["alert_id"]:
        head += f"  alert {row['alert_id']}"
    if row["channel"] == "email":
        line = f"    subject: {row['subject'] or ''}"
        if row["list_unsubscribe"]:
            line += "   [List-Unsubscribe]"
    else:
        line = f"    text: {' '.join(row['body'].split())[:160]}"
    return f"{head}\n{line}"
