"""Read what the capture senders stored: the query behind `kinship outbox`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, or_, select

from services.notifications.store import captured, deliveries, signatures, supporters

_PERSONAL = ("given_name", "family_name", "pronouns")


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
        rows = [dict(row._mapping) for row in conn.execute(query)]
        _add_personal_values(conn, rows)
    return rows


def _add_personal_values(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Give each row `personal`: the names and pronouns its recipient gave (held, or typed with
    a signature still unconfirmed), which the message may quote, so a reader can mask them."""
    by_delivery = [
        r["delivery_id"] for r in rows if not r.get("supporter_id") and r.get("delivery_id")
    ]
    owners: dict[str, str] = {}
    if by_delivery:
        owners = dict(
            conn.execute(
                select(deliveries.c.delivery_id, deliveries.c.recipient_id).where(
                    deliveries.c.delivery_id.in_(by_delivery)
                )
            ).all()
        )
    for row in rows:
        row["recipient_id"] = row.get("supporter_id") or owners.get(str(row.get("delivery_id")))
    ids = sorted({str(r["recipient_id"]) for r in rows if r["recipient_id"]})
    values: dict[str, set[str]] = {sid: set() for sid in ids}
    if ids:
        held = select(supporters.c.supporter_id, *(supporters.c[n] for n in _PERSONAL))
        for found in conn.execute(held.where(supporters.c.supporter_id.in_(ids))):
            values[found.supporter_id].update(str(v) for v in found[1:] if v)
        typed = select(signatures.c.supporter_id, signatures.c.pending).where(
            signatures.c.supporter_id.in_(ids), signatures.c.pending.is_not(None)
        )
        for found in conn.execute(typed):
            person = (found.pending or {}).get("person") or {}
            values[found.supporter_id].update(str(person[n]) for n in _PERSONAL if person.get(n))
    for row in rows:
        kept = {v.strip() for v in values.get(str(row["recipient_id"]), ()) if v.strip()}
        row["personal"] = sorted(kept, key=len, reverse=True)
