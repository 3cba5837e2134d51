"""Links emailed to a supporter that act for them (erase my data, confirm preference changes).

The email carries a random token; the service keeps only its hash, and the ledger row keeps
the link only until the email is sent (delivery.SECRET_LINKS).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from services.notifications import ledger


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def email_link(
    conn: Connection,
    kind: str,
    supporter_id: str,
    params_of: Callable[[str], dict[str, Any]],
    now: datetime,
) -> str:
    """Make a token and queue the email of kind carrying it (params_of(token): the message's
    parameters, its link among them); return the token's hash, the key of the request."""
    token = secrets.token_urlsafe(32)
    hashed = token_hash(token)
    row = ledger.new_row(
        message_key=f"{kind}:{hashed[:32]}",
        recipient_id=supporter_id,
        channel="email",
        kind=kind,
        status="queued",
        params=params_of(token),
        now=now,
    )
    ledger.insert_new(conn, [row])
    return hashed
