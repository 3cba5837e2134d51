"""Standard Webhooks signing with the `standardwebhooks` library (no hand-written HMAC)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook

from shared.events.envelope import format_time, parse_time

SECRET_PREFIX = "whsec_"
# Old secrets kept signing at most: a burst of rotations must not make every delivery carry a
# signature per rotation.
MAX_OLD_SECRETS = 4


def new_secret() -> str:
    """Return a fresh signing secret: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def live_secrets(old: Sequence[Mapping[str, str]] | None, now: datetime) -> list[str]:
    """Return the rotated-out secrets ({"secret", "expires_at"}) still signing at now."""
    return [o["secret"] for o in old or () if parse_time(o["expires_at"]) > now]


def rotated_out(
    old: Sequence[Mapping[str, str]] | None, secret: str, now: datetime, until: datetime
) -> list[dict[str, str]]:
    """Return the old secrets after secret is rotated out at now, to sign until `until`: those
    still live, oldest first, and this one, at most MAX_OLD_SECRETS (the newest)."""
    kept = [dict(o) for o in old or () if parse_time(o["expires_at"]) > now]
    kept.append({"secret": secret, "expires_at": format_time(until)})
    return kept[-MAX_OLD_SECRETS:]


def signature_header(
    secrets_: Iterable[str], message_id: str, timestamp: datetime, body: str
) -> str:
    """Return the webhook-signature value: one v1 signature per live secret, space-separated."""
    return " ".join(Webhook(s).sign(message_id, timestamp, body) for s in secrets_)


def headers(
    secrets_: Iterable[str], message_id: str, timestamp: datetime, body: str
) -> dict[str, str]:
    """Return the three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature_header(secrets_, message_id, timestamp, body),
    }
