"""Consent changes: unsubscribe links, SMS keywords, provider receipts; each one published."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, or_, select, update

from services.notifications import audience, ledger
from services.notifications.audience import EVERY_ORG, Supporter
from services.notifications.bootstrap import SOURCE
from services.notifications.store import (
    alerts,
    deliveries,
    early_outcomes,
    inbound_sms,
    insert_ignore,
    preference_requests,
    sms_welcomes,
    supporters,
    upsert,
)
from shared.events import Event
from shared.events.catalog import SHARE, type_name
from shared.events.envelope import format_time
from shared.outbox import Outbox
from shared.privacy import email_hash, keyed_digest, keyed_hash, phone_hash, supporter_id

UNSUBSCRIBE_REASONS = ("unsubscribe",)  # what a supporter may undo from the preference page
ONE_CLICK = "List-Unsubscribe=One-Click"


# -- links ---------------------------------------------------------------------------------------

LIST_TOKEN_MAX = 200
LIST_MAC_CHARS = 22  # base64url characters: 132 bits of HMAC-SHA256


def list_token(key: str, supporter_token: str, org_tag: str) -> str:
    """Return the opaque token of one supporter's list with one organization.

    The MAC binds the supporter's secret to the organization's tag: the tag is no secret (it is
    in every footer the organization sends), so without it anyone holding one organization's
    link of a supporter could open her list with any other organization.
    """
    if not supporter_token or not org_tag or "." in supporter_token + org_tag:
        raise ValueError("a list token's parts must be non-empty and hold no dot")
    return f"{supporter_token}.{org_tag}.{_list_mac(key, supporter_token, org_tag)}"


def parse_list_token(key: str, token: str) -> tuple[str, str] | None:
    """Return (supporter token, organization tag) of a genuine list token, else None."""
    parts = token.split(".")
    if len(token) > LIST_TOKEN_MAX or len(parts) != 3 or not all(parts) or not token.isascii():
        return None
    supporter_part, org_tag, mac = parts
    if not hmac.compare_digest(mac, _list_mac(key, supporter_part, org_tag)):
        return None
    return supporter_part, org_tag


def _list_mac(key: str, supporter_token: str, org_tag: str) -> str:
    digest = keyed_digest(key, "list-token", f"{supporter_token}.{org_tag}")
    return base64.urlsafe_b64encode(digest).decode()[:LIST_MAC_CHARS]


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url}/unsubscribe/{token}"


def preferences_url(base_url: str, token: str) -> str:
    return f"{base_url}/preferences/{token}"


# RFC 8058's half of a bulk email's unsubscribe headers: the same on every message, so a bulk
# request carries it once (SendGrid merges a request's headers into each personalization's).
ONE_CLICK_HEADERS = {"List-Unsubscribe-Post": ONE_CLICK}


def list_unsubscribe_header(url: str) -> dict[str, str]:
    """Return RFC 2369's half, one recipient's own: where to unsubscribe."""
    return {"List-Unsubscribe": f"<{url}>"}


# -- events --------------------------------------------------------------------------------------


def consent_event(
    supporter: str, channel: str, organization_id: str | None, change: str, at: datetime
) -> Event:
    return Event(
        type=type_name("consent.changed"),
        key=supporter,
        source=SOURCE,
        data={
            "supporter_id": supporter,
            "channel": channel,
            "organization_id": organization_id,
            "change": change,
            "at": format_time(at),
        },
    )


def delivery_event(
    kind: str, row: Any, at: datetime, error_code: str | None = None
) -> Event | None:
    """Return delivery.<kind> for a supporter's row (organizers' mail, and a message to someone
    erased since, name no supporter)."""
    if not ledger.names_a_supporter(str(row.recipient_id)):
        return None
    return Event(
        type=type_name(f"delivery.{kind}"),
        key=row.recipient_id,
        source=SOURCE,
        data={
            "delivery_id": row.delivery_id,
            "supporter_id": row.recipient_id,
            "channel": row.channel,
            "alert_id": row.alert_id,
            "provider_message_id": row.provider_message_id,
            "error_code": error_code,
            "at": format_time(at),
        },
    )


# -- email ---------------------------------------------------------------------------------------


def unsubscribe_email(
    conn: Connection, outbox: Outbox, supporter: Supporter, organization_id: str, at: datetime
) -> bool:
    """Stop email from one organization to a supporter (idempotent); return True if it changed."""
    changed = audience.set_consent(
        conn, supporter.supporter_id, organization_id, "email", False, at
    )
    if supporter.email_hash:
        changed |= audience.suppress(
            conn, supporter.email_hash, "email", organization_id, "unsubscribe", at
        )
    if changed:
        outbox.add(
            conn, consent_event(supporter.supporter_id, "email", organization_id, "unsubscribe", at)
        )
    drop_held(conn, supporter.supporter_id, organization_id, ("email",))
    return changed


def drop_held(
    conn: Connection, supporter_id: str, organization_id: str, keys: tuple[str, ...]
) -> None:
    """A choice to be reached less, made now, outweighs one to be reached more still waiting
    for its emailed link (preferences.py): drop keys from the supporter's held changes for the
    organization, so that an old link cannot undo a later unsubscribe."""
    rows = conn.execute(
        select(preference_requests.c.token_hash, preference_requests.c.changes).where(
            preference_requests.c.supporter_id == supporter_id,
            preference_requests.c.organization_id == organization_id,
        )
    ).all()
    for row in rows:
        kept = {k: v for k, v in dict(row.changes).items() if k not in keys}
        if kept == dict(row.changes):
            continue
        mine = preference_requests.c.token_hash == row.token_hash
        if set(kept) - {"phone_hash"}:
            conn.execute(update(preference_requests).where(mine).values(changes=kept))
        else:
            conn.execute(delete(preference_requests).where(mine))


def withdraw_shares(conn: Connection, outbox: Outbox, supporter: Supporter, at: datetime) -> int:
    """Stop sharing a supporter's contact details with every partner organization they ticked;
    return how many were withdrawn. Each one's consent.changed tells petitions (the partner's
    export) and the partner's webhooks (delete what you were given)."""
    partners = audience.shared_with(conn, supporter.supporter_id)
    for partner in partners:
        audience.set_consent(conn, supporter.supporter_id, partner, SHARE, False, at)
        outbox.add(conn, consent_event(supporter.supporter_id, SHARE, partner, "unsubscribe", at))
    return len(partners)


def resubscribe_email(
    conn: Connection, outbox: Outbox, supporter: Supporter, organization_id: str, at: datetime
) -> bool:
    """Undo one's own unsubscribe (never a bounce or complaint); return True if it changed."""
    changed = audience.set_consent(conn, supporter.supporter_id, organization_id, "email", True, at)
    if supporter.email_hash:
        changed |= audience.lift_suppression(
            conn, supporter.email_hash, "email", organization_id, UNSUBSCRIBE_REASONS
        )
    if changed:
        outbox.add(
            conn, consent_event(supporter.supporter_id, "email", organization_id, "subscribe", at)
        )
    return changed


def suppress_email_everywhere(
    conn: Connection,
    outbox: Outbox,
    hash_key: str,
    address: str | None,
    contact_hash: str | None,
    reason: str,
    change: str,
    at: datetime,
) -> bool:
    """Suppress an address for every organization (hard bounce, complaint); publish it."""
    contact_hash = contact_hash or (email_hash(hash_key, address) if address else None)
    if not contact_hash:
        return False
    if not audience.suppress(conn, contact_hash, "email", EVERY_ORG, reason, at):
        return False
    owners = list(
        conn.execute(
            select(supporters.c.supporter_id).where(supporters.c.email_hash == contact_hash)
        ).scalars()
    )
    if not owners and address and not audience.erased(conn, [contact_hash]):
        # Petitions may know them by now (this service's projection lags); not someone erased,
        # whose rows there the event would bring back.
        owners = [supporter_id(hash_key, address)]
    for owner in owners:
        outbox.add(conn, consent_event(owner, "email", None, change, at))
    return True


# -- SMS -----------------------------------------------------------------------------------------


def _phone_owners(conn: Connection, contact_hash: str) -> list[str]:
    return list(
        conn.execute(
            select(supporters.c.supporter_id).where(supporters.c.phone_hash == contact_hash)
        ).scalars()
    )


def first_inbound(conn: Connection, hash_key: str, message_sid: str, at: datetime) -> bool:
    """Record an inbound text's MessageSid; return False when it was recorded before (a
    replayed request: Twilio's signature covers no time)."""
    sid_hash = keyed_hash(hash_key, "twilio-inbound", message_sid)
    added = insert_ignore(conn, inbound_sms, [{"sid_hash": sid_hash, "received_at": at}])
    return conn.execute(added.returning(inbound_sms.c.sid_hash)).first() is not None


def forget_welcomes(conn: Connection, number: str, organization_id: str | None = None) -> None:
    """Forget when a number was last welcomed (by an organization, or by any): after an
    opt-out, the next opt-in is a new one and gets its welcome (handlers.queue_sms_welcome)."""
    query = delete(sms_welcomes).where(sms_welcomes.c.phone_hash == number)
    if organization_id is not None:
        query = query.where(sms_welcomes.c.organization_id == organization_id)
    conn.execute(query)


def sms_stop(conn: Connection, outbox: Outbox, contact_hash: str, at: datetime) -> bool:
    """Suppress a number for every organization (STOP and its synonyms, Twilio 21610)."""
    if not audience.suppress(conn, contact_hash, "sms", EVERY_ORG, "stop", at):
        return False
    forget_welcomes(conn, contact_hash)
    for owner in _phone_owners(conn, contact_hash):
        outbox.add(conn, consent_event(owner, "sms", None, "stop", at))
    return True


def sms_start(conn: Connection, outbox: Outbox, contact_hash: str, at: datetime) -> bool:
    """Lift a STOP (START, YES, UNSTOP); consents given before STOP apply again."""
    if not audience.lift_suppression(conn, contact_hash, "sms", EVERY_ORG, ("stop",)):
        return False
    for owner in _phone_owners(conn, contact_hash):
        outbox.add(conn, consent_event(owner, "sms", None, "start", at))
    return True


# -- receipts ------------------------------------------------------------------------------------


def _demote_sent(conn: Connection, row: Any, error_code: str, at: datetime) -> bool:
    """Mark a sent (or delivered) row failed after the fact, keeping the counts adding up."""
    moved = ledger.transition(
        conn,
        [row.delivery_id],
        "failed",
        at,
        from_status=("sent", "delivered"),
        error_code=error_code,
    )
    if moved:
        was_delivered = row.status == "delivered"
        ledger.bump(conn, row.alert_id, sent=-1, failed=1, delivered=-1 if was_delivered else 0)
    return bool(moved)


# A row the provider may hold but the sender has not yet recorded as sent (`deferred`: put off
# to the morning after an attempt whose fate was unknown).
NOT_YET_SENT = ("queued", "sending", "deferred")
# How long a provider's early word waits for its row to be recorded as sent.
HELD_FOR = timedelta(days=7)


def _hold(
    conn: Connection,
    row: Any,
    outcome: str,
    error_code: str | None,
    at: datetime,
    provider_message_id: str | None,
) -> bool:
    """Keep a provider's word on a row the sender has not settled yet; return whether held.

    Twilio can call back before the sender's transaction records that it took the message.
    Applied then, "delivered" found nothing to move and "undelivered" nothing to fail: the row
    became `sent` afterwards and the message counted as sent for good. A held failure is not
    replaced by a "delivered" (one statement, so two callbacks at once cannot race).
    """
    if row.status not in NOT_YET_SENT:
        return False
    values = {
        "outcome": outcome,
        "error_code": error_code,
        "provider_message_id": provider_message_id,
        "received_at": at,
    }
    upsert(conn, early_outcomes, {"delivery_id": row.delivery_id, **values}, ["delivery_id"],
           values, where=early_outcomes.c.outcome != "failed")  # fmt: skip
    return True


def held_outcomes_due(conn: Connection, now: datetime, limit: int = 500) -> list[Any]:
    """Return held outcomes whose rows are settled now, have gone, or waited past HELD_FOR."""
    return list(
        conn.execute(
            select(early_outcomes)
            .select_from(
                early_outcomes.outerjoin(
                    deliveries, deliveries.c.delivery_id == early_outcomes.c.delivery_id
                )
            )
            .where(
                or_(
                    deliveries.c.status.is_(None),
                    deliveries.c.status.not_in(NOT_YET_SENT),
                    early_outcomes.c.received_at < now - HELD_FOR,
                )
            )
            .order_by(early_outcomes.c.delivery_id)
            .limit(limit)
        ).all()
    )


def apply_held_outcome(conn: Connection, outbox: Outbox, held: Any, now: datetime) -> None:
    """Apply one held outcome to its row if that is sent now (and by the send the provider
    spoke of, when both ids are known: a row sent again after an attempt whose fate was unknown
    is another message); forget it either way, unless the row is still unsettled."""
    row = ledger.by_id(conn, held.delivery_id)
    if row is not None and row.status in NOT_YET_SENT and held.received_at >= now - HELD_FOR:
        return  # taken back to be sent again since it was read: the next look
    if (
        row is not None
        and row.status not in NOT_YET_SENT
        and _same_send(row, held.provider_message_id)
    ):
        if held.outcome == "delivered":
            mark_delivered(conn, outbox, row, held.received_at)
        else:
            mark_failed_after_send(conn, outbox, row, held.error_code, held.received_at)
    conn.execute(delete(early_outcomes).where(early_outcomes.c.delivery_id == held.delivery_id))


def _same_send(row: Any, provider_message_id: str | None) -> bool:
    """Whether a provider's word (on provider_message_id) is about the send the row records:
    a row sent again after an attempt whose fate was unknown is another message, and the
    first one's callback must not change it. SendGrid's sg_message_id is the request's
    X-Message-Id and a suffix; a word or a row without an id is taken as the row's."""
    return not (
        provider_message_id
        and row.provider_message_id
        and not str(provider_message_id).startswith(str(row.provider_message_id))
    )


def mark_delivered(
    conn: Connection, outbox: Outbox, row: Any, at: datetime, provider_message_id: str | None = None
) -> bool:
    if _hold(conn, row, "delivered", None, at, provider_message_id):
        return False
    if not _same_send(row, provider_message_id):
        return False
    moved = ledger.transition(conn, [row.delivery_id], "delivered", at, from_status=("sent",))
    if moved:
        ledger.bump(conn, row.alert_id, delivered=1)
        if row.alert_id is None:
            event = delivery_event("delivered", row, at)
            if event is not None:
                outbox.add(conn, event)
    return bool(moved)


def mark_failed_after_send(
    conn: Connection,
    outbox: Outbox,
    row: Any,
    error_code: str,
    at: datetime,
    provider_message_id: str | None = None,
) -> bool:
    if _hold(conn, row, "failed", error_code, at, provider_message_id):
        return False
    if not _same_send(row, provider_message_id):
        return False
    moved = _demote_sent(conn, row, error_code, at)
    if moved:
        event = delivery_event("failed", row, at, error_code)
        if event is not None:
            outbox.add(conn, event)
    return moved


def alert_organization(conn: Connection, alert_id: str | None) -> str | None:
    if alert_id is None:
        return None
    value = conn.execute(
        select(alerts.c.organization_id).where(alerts.c.alert_id == alert_id)
    ).scalar()
    return str(value) if value is not None else None


SENDGRID_SUPPRESSING = {
    "bounce": ("bounce", "bounce"),
    "dropped": ("dropped", "bounce"),
    "spamreport": ("complaint", "complaint"),
}


# SendGrid's reasons for dropping a message that are about the address itself (its glossary
# of drops), each suppressed for what it is (reason, change); others ("Spam Content",
# "Invalid SMTPAPI header", ...) are about the message. An address on the account's
# unsubscribe list is an unsubscribe (its owner can take it back), not a dead address.
ADDRESS_DROPS = {
    "Bounced Address": ("dropped", "bounce"),
    "Invalid": ("dropped", "bounce"),
    "Spam Reporting Address": ("complaint", "complaint"),
    "Unsubscribed Address": ("unsubscribe", "unsubscribe"),
}


def apply_sendgrid_event(
    conn: Connection, outbox: Outbox, hash_key: str, event: Mapping[str, Any], at: datetime
) -> None:
    """Apply one verified SendGrid Event Webhook event."""
    kind = str(event.get("event") or "")
    notification_id = event.get("notification_id")
    row = ledger.by_id(conn, str(notification_id)) if notification_id else None
    address = event.get("email")
    sent_as = str(event.get("sg_message_id") or "") or None
    if kind == "delivered":
        if row is not None:
            mark_delivered(conn, outbox, row, at, sent_as)
        return
    if kind == "bounce" and str(event.get("type") or "bounce") == "blocked":
        # A block is a temporary refusal by the receiving server, not a dead address.
        if row is not None:
            mark_failed_after_send(conn, outbox, row, "blocked", at, sent_as)
        return
    if kind == "dropped" and str(event.get("reason") or "") not in ADDRESS_DROPS:
        # Dropped for the message (its content caught by the spam checker, a bad header), not
        # for the address: suppressing every recipient would cut a whole audience off for good.
        if row is not None:
            mark_failed_after_send(conn, outbox, row, "dropped", at, sent_as)
        return
    if kind in SENDGRID_SUPPRESSING:
        reason, change = SENDGRID_SUPPRESSING[kind]
        if kind == "dropped":
            reason, change = ADDRESS_DROPS[str(event.get("reason"))]
        if row is not None:
            mark_failed_after_send(conn, outbox, row, reason, at, sent_as)
        suppress_email_everywhere(
            conn, outbox, hash_key, str(address) if address else None, None, reason, change, at
        )
        return
    if kind in {"unsubscribe", "group_unsubscribe"}:
        org = alert_organization(conn, row.alert_id) if row is not None else None
        if org is None and row is not None:
            org = (row.params or {}).get("organization_id")
        contact = email_hash(hash_key, str(address)) if address else None
        owners = (
            [row.recipient_id]
            if row is not None and ledger.names_a_supporter(str(row.recipient_id))
            else []
        )
        if not owners and contact:
            owners = list(
                conn.execute(
                    select(supporters.c.supporter_id).where(supporters.c.email_hash == contact)
                ).scalars()
            )
        people = audience.load_supporters(conn, owners)
        if org is None:
            # Unsubscribed from everything at SendGrid: honour it for every organization, and
            # say so once (SendGrid posts an event again until it is answered).
            if contact and audience.suppress(conn, contact, "email", EVERY_ORG, "unsubscribe", at):
                for owner in owners:
                    outbox.add(conn, consent_event(owner, "email", None, "unsubscribe", at))
            return
        for person in people.values():
            unsubscribe_email(conn, outbox, person, org, at)
        if not people and contact:
            audience.suppress(conn, contact, "email", org, "unsubscribe", at)


TWILIO_FAILED = {"failed", "undelivered"}


def apply_twilio_status(
    conn: Connection,
    outbox: Outbox,
    hash_key: str,
    delivery_id: str,
    form: Mapping[str, str],
    at: datetime,
) -> None:
    """Apply one verified Twilio status callback to its ledger row."""
    row = ledger.by_id(conn, delivery_id)
    if row is None:
        return
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    error_code = form.get("ErrorCode") or None
    sent_as = form.get("MessageSid") or None
    if status == "delivered":
        mark_delivered(conn, outbox, row, at, sent_as)
    elif status in TWILIO_FAILED:
        mark_failed_after_send(conn, outbox, row, error_code or status, at, sent_as)
        if error_code == "21610":
            # The number texted opted out, which may no longer be the one on file (changed
            # since): that one never sent STOP.
            texted = form.get("To")
            number_hash = (
                phone_hash(hash_key, texted)
                if texted
                else conn.execute(
                    select(supporters.c.phone_hash).where(
                        supporters.c.supporter_id == row.recipient_id
                    )
                ).scalar()
            )
            if number_hash:
                sms_stop(conn, outbox, str(number_hash), at)
