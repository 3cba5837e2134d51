"""Erasure: remove a person's data here, keep only keyed-hash suppressions, publish it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, literal, select, update

from services.notifications import audience, compliance, ledger, links, preferences
from services.notifications.audience import EVERY_ORG
from services.notifications.bootstrap import SOURCE, Deps
from services.notifications.store import (
    captured,
    consents,
    deliveries,
    erasure_requests,
    preference_requests,
    signatures,
    supporter_campaigns,
    supporters,
)
from services.notifications.webhooks import handlers as webhook_handlers
from shared.events import Event
from shared.events.catalog import type_name
from shared.events.envelope import format_time
from shared.privacy import email_hash, phone_hash, supporter_id

ERASE_LINK_TTL = timedelta(hours=24)


def apply_erasure(deps: Deps, conn: Connection, data: Mapping[str, Any]) -> None:
    """Delete a supporter's personal data; tombstone their contacts (idempotent)."""
    now = deps.clock()
    sid = str(data["supporter_id"])
    row = conn.execute(
        select(supporters.c.email_hash, supporters.c.phone_hash).where(
            supporters.c.supporter_id == sid
        )
    ).first()
    hashes = {
        ("email", data.get("email_hash") or (row.email_hash if row else None)),
        ("sms", data.get("phone_hash") or (row.phone_hash if row else None)),
    }
    for channel, contact in hashes:
        if contact:
            audience.suppress(conn, str(contact), channel, EVERY_ORG, "erased", now)
    # A signature made before now and arriving after is void, whichever of these it names.
    audience.record_erasure(conn, [sid, *(str(c) for _, c in hashes if c)], now)
    delivery_ids = select(deliveries.c.delivery_id).where(deliveries.c.recipient_id == sid)
    conn.execute(delete(captured).where(captured.c.delivery_id.in_(delivery_ids)))
    conn.execute(delete(captured).where(captured.c.supporter_id == sid))
    # Ledger rows stay (counts must stay right) but lose anything personal they carried. An
    # alert's rows keep their recipient: a batch delivered again after the erasure must find
    # its rows (one per alert, supporter and channel), or it would count them twice. Messages
    # to the person alone (thanks, confirmations, links) are found again by nobody (a late
    # event about the person is void): their recipient, with the key and a guessed address,
    # would prove what the person signed, and the provider's id finds them at the provider.
    mine = deliveries.c.recipient_id == sid
    conn.execute(
        update(deliveries).where(mine, deliveries.c.alert_id.is_not(None)).values(params=None)
    )
    conn.execute(
        update(deliveries)
        .where(mine, deliveries.c.alert_id.is_(None))
        .values(
            recipient_id=literal(ledger.ERASED) + deliveries.c.delivery_id,
            params=None,
            provider_message_id=None,
        )
    )
    for table in (consents, supporter_campaigns, signatures, erasure_requests, preference_requests):
        conn.execute(delete(table).where(table.c.supporter_id == sid))
    # When its numbers were last welcomed, and by whom: the one named and the one held.
    for number in {str(n) for n in (data.get("phone_hash"), row.phone_hash if row else None) if n}:
        compliance.forget_welcomes(conn, number)
    if data.get("phone_hash"):
        # Unconfirmed signatures typed with the number, under whatever address, and the
        # number held for an address's owner to confirm: what they say about their signer
        # would otherwise wait here until they expire (and a confirmation bring it back).
        conn.execute(
            delete(signatures).where(
                signatures.c.phone_hash == data["phone_hash"], signatures.c.confirmed.is_(False)
            )
        )
        preferences.forget_number(conn, str(data["phone_hash"]))
    conn.execute(delete(supporters).where(supporters.c.supporter_id == sid))


def erase(
    deps: Deps,
    conn: Connection,
    *,
    email: str | None = None,
    phone: str | None = None,
    supporter: str | None = None,
) -> list[str]:
    """Erase everyone matching an email, phone or supporter id; publish person.erased for each."""
    key = deps.settings.hash_key
    contact_email = email_hash(key, email) if email else None
    contact_phone = phone_hash(key, phone) if phone else None
    targets: dict[str, dict[str, Any]] = {}
    query = select(supporters.c.supporter_id, supporters.c.email_hash, supporters.c.phone_hash)
    # Each identifier given, what it matches here; one unknown here may be known elsewhere
    # (consumer lag, a signature.created that never arrived), so it is erased by itself: the
    # other services erase by the same id and keyed hashes.
    given = (
        (supporters.c.email_hash, contact_email,
         {"email_hash": contact_email, "phone_hash": None}, email and supporter_id(key, email)),
        (supporters.c.phone_hash, contact_phone,
         {"email_hash": None, "phone_hash": contact_phone}, contact_phone),
        (supporters.c.supporter_id, supporter,
         {"email_hash": None, "phone_hash": None}, supporter),
    )  # fmt: skip
    for column, value, unknown, unknown_id in given:
        if not value:
            continue
        rows = conn.execute(query.where(column == value)).all()
        for row in rows:
            targets[row.supporter_id] = {"email_hash": row.email_hash, "phone_hash": row.phone_hash}
        if not rows and unknown_id:
            targets.setdefault(str(unknown_id), dict(unknown))
    now = deps.clock()
    for sid, hashes in targets.items():
        data = {"supporter_id": sid, **hashes, "at": format_time(now)}
        if contact_email and not data["email_hash"]:
            data["email_hash"] = contact_email
        if contact_phone and not data["phone_hash"]:
            data["phone_hash"] = contact_phone
        # The organizations whose exports held the person are known only from what this
        # erasure forgets: listed now (GET /webhooks/deletions), or never. Those sent the
        # person by webhook are listed by person.erased's handler, which tells them too.
        orgs = webhook_handlers.export_holders(conn, sid) - webhook_handlers.webhook_holders(
            conn, sid
        )
        webhook_handlers.note_deletions(conn, orgs, sid, "erased", now)
        apply_erasure(deps, conn, data)
        deps.outbox.add(
            conn, Event(type=type_name("person.erased"), key=sid, source=SOURCE, data=data)
        )
    return list(targets)


# At most one erasure link emailed to a supporter this often, however often it is asked for.
ERASE_LINK_EVERY = timedelta(hours=1)


def request_erasure(deps: Deps, conn: Connection, supporter: audience.Supporter) -> bool:
    """Email the supporter a link that confirms erasure (so nobody else can erase them);
    return False when one went within ERASE_LINK_EVERY and nothing was sent.

    The preference page can be reached by whoever holds a forwarded email: asking again and
    again must not flood the person's inbox (each email names why they are on a list)."""
    now = deps.clock()
    recent = conn.execute(
        select(erasure_requests.c.token_hash).where(
            erasure_requests.c.supporter_id == supporter.supporter_id,
            erasure_requests.c.expires_at > now + ERASE_LINK_TTL - ERASE_LINK_EVERY,
        )
    ).first()
    if recent is not None:
        return False
    base = deps.settings.public_base_url
    hashed = links.email_link(
        conn, "erase", supporter.supporter_id, lambda t: {"erase_url": f"{base}/erase/{t}"}, now
    )
    conn.execute(
        erasure_requests.insert().values(
            token_hash=hashed, supporter_id=supporter.supporter_id, expires_at=now + ERASE_LINK_TTL
        )
    )
    return True


def erasure_target(deps: Deps, conn: Connection, token: str) -> str | None:
    """Return the supporter an unexpired erasure link belongs to."""
    row = conn.execute(
        select(erasure_requests).where(erasure_requests.c.token_hash == links.token_hash(token))
    ).first()
    if row is None or row.expires_at < deps.clock():
        return None
    return str(row.supporter_id)
