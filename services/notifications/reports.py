"""An alert's delivery report: its counts by channel, and why messages failed or were held back.

The alert's counters (`nf_alerts`, fanout.alert_counts) add up every channel and say nothing of
causes; an organizer who sees 40 failed wants to know whether 30 numbers were landlines or the
provider kept refusing. This reads the alert's own ledger rows when asked (one pass over them
through the ledger's unique index) and changes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, func, select

from services.notifications.store import deliveries

# What each code the ledger keeps means to whoever sent the alert. Codes are the provider's
# (Twilio error codes, SendGrid event names) or the sender's own.
MEANINGS = {
    # The sender's own
    "invalid_address": "the provider refused the address or number as malformed",
    "no_content": "the alert has no content for this channel",
    "no_discreet_text": "the person asked for discreet texts, and the alert has no discreet text",
    "no_contact": "the organization has no contact address",
    "retries_exhausted": "the provider kept refusing (rate limits, errors, timeouts) past the "
    "last retry",
    "error": "an unexpected error while sending; the service's log has its kind",
    "batch_error": "its batch kept failing and was given up (dead-lettered); the service's "
    "log has why",
    "no_consent": "the consent to text this person at this number was withdrawn before their "
    "turn came",
    "suppressed": "unsubscribed, STOP, bounced or complained before their turn came",
    "erased": "the person asked to be erased before their turn came",
    "cancelled": "the alert was cancelled before their turn came",
    "held_back": "no consent standing, or suppressed, when their batch was sent",
    # SendGrid's Event Webhook
    "bounce": "the receiving server refused the address (a hard bounce); it is suppressed",
    "dropped": "SendGrid did not send to an address it knows to be bad; it is suppressed",
    "complaint": "the recipient marked the message as spam; they are suppressed",
    "unsubscribe": "the address is on the account's unsubscribe list at SendGrid",
    "blocked": "the receiving server blocked the message (its content or the sender's "
    "reputation); the address stays",
    # Twilio's error codes
    "21211": "not a valid phone number",
    "21408": "the Twilio account may not text this number's country",
    "21610": "the number replied STOP to the sending number; it is suppressed",
    "21612": "Twilio cannot route a text to this number",
    "21614": "not a mobile number",
    "30003": "the phone was unreachable (switched off or out of coverage)",
    "30004": "the recipient blocks messages",
    "30005": "the number is unknown or no longer in use",
    "30006": "a landline, or a carrier that takes no texts",
    "30007": "the carrier filtered the message as spam",
    "30008": "the carrier failed for a reason it did not give",
    "30032": "the sending toll-free number is not verified",
    "30034": "the sending number is not registered for texting in the US (A2P 10DLC)",
    "undelivered": "the carrier did not deliver the text and gave no code",
    "failed": "Twilio could not send the text and gave no code",
}
COUNTED = ("queued", "sending", "deferred", "sent", "delivered", "failed", "suppressed")
EXPLAINED = ("failed", "suppressed")


def meaning_of(reason: str) -> str | None:
    """Return a reason in plain words; a bare HTTP status is a request the provider refused
    (SendGrid's, or Twilio's when it gave no code of its own)."""
    if reason in MEANINGS:
        return MEANINGS[reason]
    if len(reason) == 3 and reason.isdigit():
        return f"the provider refused the request (HTTP {reason})"
    return None


def reason_of(error_code: str | None) -> str:
    """Return the reason a code stands for: its head before any detail ("retries_exhausted:
    twilio 503" is "retries_exhausted"); a row held back at claim time keeps no code."""
    if not error_code:
        return "held_back"
    return error_code.split(":", 1)[0]


def alert_report(conn: Connection, alert_id: str) -> dict[str, Any]:
    """Return an alert's counts by channel and its failed and suppressed rows by reason."""
    rows = conn.execute(
        select(
            deliveries.c.channel,
            deliveries.c.status,
            deliveries.c.error_code,
            func.count().label("n"),
        )
        .where(deliveries.c.message_key == alert_id, deliveries.c.alert_id == alert_id)
        .group_by(deliveries.c.channel, deliveries.c.status, deliveries.c.error_code)
    ).all()
    channels: dict[str, Counter[str]] = {}
    reasons: Counter[tuple[str, str, str]] = Counter()
    for channel, status, error_code, n in rows:
        counts = channels.setdefault(str(channel), Counter())
        counts[str(status)] += int(n)
        if status in EXPLAINED:
            reasons[(str(channel), str(status), reason_of(error_code))] += int(n)
    return {
        "alert_id": alert_id,
        "channels": [
            {
                "channel": channel,
                "total": sum(counts.values()),
                **{status: counts[status] for status in COUNTED},
            }
            for channel, counts in sorted(channels.items())
        ],
        "reasons": [
            {
                "channel": channel,
                "status": status,
                "reason": reason,
                "count": count,
                "meaning": meaning_of(reason),
            }
            for (channel, status, reason), count in sorted(
                reasons.items(), key=lambda item: (item[0][0], item[0][1], -item[1], item[0][2])
            )
        ],
    }
