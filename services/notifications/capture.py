"""Read what the capture senders stored: the query behind `kinship outbox`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, or_, select

from services.notifications.store import captured, deliveries


def list_captured(
    engine: Engine,
    alert_id: str | None = None,
    supporter_id: str | None = None,
    channel: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Return captured messages, newest first, optionally for one alert, supporter or channel."""
    query = select(captured).order_by(captured.c.id.desc()).limit(limit)
    if alert_id is not None:
        query = query.where(captured.c.alert_id == alert_id)
    if supporter_id is not None:
        # Captured rows name their ledger row; the ledger names the supporter.
        theirs = select(deliveries.c.delivery_id).where(deliveries.c.recipient_id == supporter_id)
        query = query.where(
            or_(captured.c.supporter_id == supporter_id, captured.c.delivery_id.in_(theirs))
        )
    if channel is not None:
        query = query.where(captured.c.channel == channel)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
