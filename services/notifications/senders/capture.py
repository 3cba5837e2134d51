"""The capture senders: store messages in the database instead of sending (the local run)."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, insert

from services.notifications.senders import Accepted, EmailBatch, Sms, substitute
from services.notifications.store import captured
from shared.events.envelope import utcnow


class CaptureEmailSender:
    """Stores each recipient's rendered email in nf_captured."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def send_batch(self, batch: EmailBatch) -> Accepted:
        now = utcnow()
        rows = []
        for r in batch.recipients:
            args = {**batch.custom_args, **r.custom_args}  # merged as SendGrid merges them
            rows.append(
                {
                    "channel": "email",
                    "to_address": r.email,
                    "subject": substitute(r.subject or batch.subject, r.substitutions),
                    "body": substitute(batch.text, r.substitutions),
                    "html": substitute(batch.html, r.substitutions),
                    "headers": {**batch.headers, **r.headers},  # merged, as SendGrid does
                    "custom_args": args,
                    "alert_id": args.get("alert_id"),
                    "supporter_id": args.get("supporter_id"),
                    "delivery_id": args.get("notification_id"),
                    "created_at": now,
                }
            )
        with self.engine.begin() as conn:
            if rows:
                conn.execute(insert(captured), rows)
        return Accepted(f"capture-{uuid.uuid4().hex[:16]}")


class CaptureSmsSender:
    """Stores each text message in nf_captured."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def send(self, sms: Sms) -> Accepted:
        with self.engine.begin() as conn:
            conn.execute(
                insert(captured).values(
                    channel="sms",
                    to_address=sms.to,
                    subject=None,
                    body=sms.body,
                    html=None,
                    headers={},
                    custom_args=sms.custom_args,
                    alert_id=sms.custom_args.get("alert_id"),
                    supporter_id=sms.custom_args.get("supporter_id"),
                    delivery_id=sms.custom_args.get("notification_id"),
                    created_at=utcnow(),
                )
            )
        return Accepted(f"capture-{uuid.uuid4().hex[:16]}")
