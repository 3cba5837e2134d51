"""Event handlers: one message per event per subscribed endpoint, in the consumer's transaction.

Handlers never call an endpoint: they write `pending` messages, which the dispatcher delivers
after the transaction commits. So a slow or dead endpoint never holds a Kafka partition.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.notifications.audience import (
    confirmed_consents,
    person_phone,
    removed_partners,
    signed_before_erasure,
)
from services.notifications.store import (
    campaigns,
    consents,
    petitions,
    signatures,
    supporter_campaigns,
    supporters,
)
from services.notifications.webhooks import domain
from services.notifications.webhooks.store import (
    attempts,
    deletions,
    endpoints,
    messages,
    removed_endpoints,
    shares,
)
from shared.events import Event
from shared.events.catalog import SHARE, type_name
from shared.events.envelope import format_time

Handler = Callable[[Event, Connection], None]


def message_id(endpoint_id: str, event_id: str) -> str:
    """Return the stable webhook-id of one event for one endpoint (same on every redelivery)."""
    return "msg_" + hashlib.sha256(f"{endpoint_id}:{event_id}".encode()).hexdigest()[:32]


def encode(body: dict[str, Any]) -> str:
    """Serialize a body once; the exact string is what gets signed on every attempt."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def campaign_members(conn: Connection, campaign_id: str) -> set[str]:
    """Return the lead and partner organizations of a campaign, as projected from its events."""
    row = conn.execute(
        select(campaigns.c.lead_organization_id, campaigns.c.partner_organization_ids).where(
            campaigns.c.campaign_id == campaign_id
        )
    ).first()
    if row is None:
        return set()
    return {str(row.lead_organization_id), *(str(o) for o in row.partner_organization_ids or [])}


def recipients(conn: Connection, short: str, data: dict[str, Any]) -> set[str]:
    """Return the organizations an event concerns."""
    if short in ("signature.created", "signature.confirmed"):
        orgs = domain.signature_recipients(data)
        if orgs <= {str(data["organization_id"])}:
            return orgs  # the petition's own organization alone: no partner to check
        # Until this transaction ends: a removal handled meanwhile by another consumer then
        # withdraws what this writes for the partner, or is seen here.
        hold_partners(conn, str(data["campaign_id"]))
        removed = removed_partners(conn, str(data["campaign_id"]))
        if short == "signature.confirmed" and data.get("partner_organization_ids") is not None:
            # Petitions said whom this confirmation shares with (confirmed_consents applied
            # it); attribution aside, the partners it names are partners then.
            return orgs
        # A partner removed since the signature was made (a double opt-in confirmed after,
        # an event read late) is sent nothing of it: the lead took it out of the coalition.
        # One not yet known to have joined is sent it: petitions offered its box, and the
        # join may simply not be read yet (campaign events come on another topic).
        if removed is not None:
            return orgs - removed
        members = campaign_members(conn, str(data["campaign_id"]))
        if members:
            orgs &= members  # untracked: the members as known
        return orgs
    if short.startswith("campaign."):
        orgs = campaign_members(conn, str(data["campaign_id"]))
        orgs.update(str(o) for o in data.get("partner_organization_ids") or [])
        for key in ("lead_organization_id", "organization_id"):
            if data.get(key):
                orgs.add(str(data[key]))
        return orgs
    orgs = campaign_members(conn, str(data["campaign_id"]))
    if data.get("organization_id"):
        orgs.add(str(data["organization_id"]))
    else:
        owner = conn.execute(
            select(petitions.c.organization_id).where(
                petitions.c.petition_id == data.get("petition_id")
            )
        ).scalar()
        if owner:
            orgs.add(str(owner))
    return orgs


def confirmed_signature(conn: Connection, data: dict[str, Any]) -> dict[str, Any] | None:
    """Return a confirmed double opt-in signature as `payload_data` reads it, or None.

    The event names the signature only: its organization, the boxes ticked and the contact
    details come from the projection's pending signature (what this signature said, not what
    other signatures told us: a partner gets only what the signer gave with its box ticked),
    so this runs before confirming clears it. None when the signature is unknown here (not
    double opt-in) or its signer was erased meanwhile.
    """
    sig = conn.execute(
        select(signatures).where(signatures.c.signature_id == data["signature_id"])
    ).first()
    if sig is None:
        return None
    person = conn.execute(
        select(supporters).where(supporters.c.supporter_id == sig.supporter_id)
    ).first()
    if person is None:
        return None
    typed = (sig.pending or {}).get("person")
    if typed is not None:
        contact = {name: typed.get(name) for name in SHARED_PERSON}
        contact["phone"] = person_phone(typed)
        locale = (sig.pending or {}).get("locale") or person.locale
    else:  # confirmed before 0014 kept what signatures said: only the supporter row is left
        contact = {name: getattr(person, name) for name in SHARED_PERSON}
        locale = person.locale
    return {
        **data,
        "supporter_id": sig.supporter_id,
        "organization_id": sig.organization_id,
        "locale": locale,
        "consents": confirmed_consents(conn, dict(sig.consents), data, sig.pending or {}),
        "person": contact,
    }


SHARED_PERSON = ("given_name", "family_name", "email", "phone", "postal_code", "country")


def enqueue(
    conn: Connection,
    short: str,
    event_id: str,
    event_time: datetime,
    data: dict[str, Any],
    organizations: Iterable[str],
    now: datetime,
    *,
    only_endpoints: Collection[str] | None = None,
    trigger: str = "scheduled",
) -> int:
    """Write one pending message per enabled endpoint of the organizations that wants the type.

    An endpoint disabled automatically (gone, failing too long) gets its message as `failed`,
    which `recover` resends once it is enabled again; one its owner turned off gets none.
    An erasure is the exception: it waits, pending, on any endpoint until that is enabled
    again (a paused endpoint's owner still holds the person's details).
    """
    orgs = sorted(set(organizations))
    if not orgs:
        return 0
    held = short in domain.HELD
    query = select(
        endpoints.c.endpoint_id,
        endpoints.c.organization_id,
        endpoints.c.event_types,
        endpoints.c.enabled,
    ).where(endpoints.c.organization_id.in_(orgs))
    if not held:
        query = query.where(
            or_(
                endpoints.c.enabled.is_(True),
                endpoints.c.disabled_reason.in_(domain.AUTO_DISABLED),
            )
        )
    if only_endpoints is not None:
        query = query.where(endpoints.c.endpoint_id.in_(sorted(only_endpoints)))
    rows = []
    shared: dict[tuple[str, str], dict[str, Any]] = {}
    # One payload and one body per organization: every endpoint of it gets the same bytes.
    bodies: dict[str, tuple[str, str | None]] = {}
    for ep in conn.execute(query):
        if short not in domain.UNFILTERED and not domain.wants(ep.event_types or [], short):
            continue
        if ep.organization_id not in bodies:
            payload = (
                data
                if short == domain.TEST_EVENT_TYPE
                else domain.payload_data(short, data, ep.organization_id)
            )
            person_of = payload.get("supporter_id") if "person" in payload else None
            encoded = encode(domain.body(short, format_time(event_time), payload))
            bodies[ep.organization_id] = (encoded, person_of)
        encoded, person_of = bodies[ep.organization_id]
        live = ep.enabled or held
        if person_of is not None:
            shared[(person_of, ep.organization_id)] = {
                "supporter_id": person_of,
                "organization_id": ep.organization_id,
                "shared_at": now,
            }
        rows.append(
            {
                "message_id": message_id(ep.endpoint_id, event_id),
                "endpoint_id": ep.endpoint_id,
                "organization_id": ep.organization_id,
                "event_id": event_id,
                "event_type": short,
                "body": encoded,
                "supporter_id": person_of,
                "campaign_id": data.get("campaign_id") if person_of is not None else None,
                "status": "pending" if live else "failed",
                "attempts": 0,
                "next_attempt_at": now if live else None,
                "trigger": trigger,
                "event_time": event_time,
                "created_at": now,
                "finished_at": None if live else now,
            }
        )
    if rows:
        # executemany of one cached statement: a multi-row VALUES would be compiled every time.
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(insert(messages).on_conflict_do_nothing(), rows)
        if shared:
            conn.execute(insert(shares).on_conflict_do_nothing(), list(shared.values()))
    return len(rows)


def erasure_endpoints(conn: Connection, orgs: Collection[str], told: Collection[str]) -> set[str]:
    """Return the endpoints to tell of an erasure: those that were sent the person's details,
    and every endpoint of an organization whose such endpoints have all been deleted since."""
    if not orgs:
        return set()
    existing = conn.execute(
        select(endpoints.c.endpoint_id, endpoints.c.organization_id).where(
            endpoints.c.organization_id.in_(sorted(orgs))
        )
    ).all()
    reached = {row.organization_id for row in existing if row.endpoint_id in told}
    return {
        row.endpoint_id
        for row in existing
        if row.endpoint_id in told or row.organization_id not in reached
    }


# The space of the advisory locks on a campaign's partners (the other number: the campaign).
PARTNERS_LOCK_SPACE = 0x57485041  # "WHPA"


def hold_partners(conn: Connection, campaign_id: str, exclusive: bool = False) -> None:
    """Hold a campaign's partners until the transaction ends (PostgreSQL): shared by those
    writing signers' messages for them, exclusive for a removal. The removal waits for the
    signers being written, then withdraws them; one written after it sees the removal. An
    advisory lock, not the campaign's row: held for a whole consumer batch, a row lock held
    up every update of the campaign, and share locks taken one after another starved them."""
    if conn.dialect.name != "postgresql":
        return  # SQLite: one writer at a time already
    lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute(
        text(f"SELECT {lock}(CAST(:space AS integer), hashtext(:campaign))"),
        {"space": PARTNERS_LOCK_SPACE, "campaign": campaign_id},
    )


def withdraw_undelivered(conn: Connection, campaign_id: str, organization_id: str) -> int:
    """Drop the messages carrying a campaign's signers' details not yet delivered to an
    organization taken out of it (waiting for a retry, in flight, or failed, which a recovery
    would send); return how many. Those delivered stay in its log, and are not replayed."""
    undelivered = (
        delete(messages)
        .where(
            messages.c.organization_id == organization_id,
            messages.c.campaign_id == campaign_id,
            messages.c.supporter_id.is_not(None),
            messages.c.status != "succeeded",
        )
        .returning(messages.c.message_id)
    )
    # One statement however many (a dead endpoint's month of failures): a list of their ids
    # as parameters could pass the driver's 65,535, failing the event for ever.
    ids = list(conn.execute(undelivered).scalars())
    for start in range(0, len(ids), 1000):
        conn.execute(delete(attempts).where(attempts.c.message_id.in_(ids[start : start + 1000])))
    return len(ids)


def delete_messages(conn: Connection, ids: Sequence[str]) -> None:
    """Delete messages and their attempt log. Messages first: a dispatcher recording a chunk
    of them holds their rows, so this waits for its attempts, and deletes them next."""
    if ids:
        conn.execute(delete(messages).where(messages.c.message_id.in_(ids)))
        conn.execute(delete(attempts).where(attempts.c.message_id.in_(ids)))


def finish_removing(
    engine: Engine,
    endpoint_id: str,
    stop: threading.Event | None = None,
    forget_removed_before: datetime | None = None,
) -> None:
    """Delete a deleted endpoint's messages and attempts a batch at a time. Its record
    (wh_removed_endpoints) goes too once it was removed before forget_removed_before: a
    consumer batch that read the endpoint before its deletion may still commit messages for
    it (the purge looks again later, and forgets it once no batch can be that old)."""
    delete_messages_in_batches(engine, messages.c.endpoint_id == endpoint_id, stop=stop)
    left = select(attempts.c.attempt_id).where(attempts.c.endpoint_id == endpoint_id).limit(1000)
    while stop is None or not stop.is_set():
        with engine.begin() as conn:
            if conn.execute(delete(attempts).where(attempts.c.attempt_id.in_(left))).rowcount:
                continue
            if forget_removed_before is not None:
                conn.execute(
                    delete(removed_endpoints).where(
                        removed_endpoints.c.endpoint_id == endpoint_id,
                        removed_endpoints.c.removed_at < forget_removed_before,
                    )
                )
            return


def delete_messages_in_batches(
    engine: Engine, where: Any, batch: int = 1000, stop: threading.Event | None = None
) -> int:
    """Delete the messages `where` selects, and their attempts, a batch per transaction;
    return how many. A dead endpoint's backlog can be hundreds of thousands of messages: in
    one transaction, the dispatcher's recording of every endpoint's deliveries, which locks
    the rows of the chunks it records, waited for all of it."""
    deleted = 0
    while stop is None or not stop.is_set():
        with engine.begin() as conn:
            ids = list(
                conn.execute(select(messages.c.message_id).where(where).limit(batch)).scalars()
            )
            delete_messages(conn, ids)
        if not ids:
            break
        deleted += len(ids)
    return deleted


def scrub(
    conn: Connection, supporter_id: str, organization_id: str | None = None, mark: str = "erased"
) -> int:
    """Remove a person's details from every stored message (replays send none), or from those
    of one organization; the body says why (`"erased": true`, `"withdrawn": true`).

    Partners' responses to those messages go too: many echo the payload they were sent, and
    the attempts API shows them.
    """
    query = select(messages.c.message_id, messages.c.body).where(
        messages.c.supporter_id == supporter_id
    )
    if organization_id is not None:
        query = query.where(messages.c.organization_id == organization_id)
    rows = conn.execute(query).all()
    for row in rows:
        body = json.loads(row.body)
        data = body.get("data") or {}
        data.pop("person", None)
        data.pop("supporter_id", None)
        data[mark] = True
        conn.execute(
            update(messages)
            .where(messages.c.message_id == row.message_id)
            .values(body=encode(body), supporter_id=None)
        )
    if rows:  # after the messages: a dispatcher recording them meanwhile is waited for
        conn.execute(
            update(attempts)
            .where(attempts.c.message_id.in_([row.message_id for row in rows]))
            .values(response_excerpt=None)
        )
    return len(rows)


def note_deletions(
    conn: Connection, orgs: Iterable[str], supporter_id: str, reason: str, at: datetime
) -> None:
    """List a deletion for each organization (GET /deletions), webhook or not.

    Partners sync the list by `deletion_id` (`after=`), so ids must become visible in their
    order: a row numbered while an earlier-numbered one was still uncommitted would let a
    reader pass the earlier one for good (an erasure forgotten). On PostgreSQL the writers of
    the list take turns, each holding its lock until it commits (readers are not held up);
    SQLite has one writer at a time already.
    """
    rows = [
        {"organization_id": org, "supporter_id": supporter_id, "reason": reason, "at": at}
        for org in sorted(set(orgs))
    ]
    if rows:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"LOCK TABLE {deletions.name} IN SHARE ROW EXCLUSIVE MODE"))
        conn.execute(deletions.insert(), rows)


def holders(conn: Connection, supporter_id: str) -> set[str]:
    """Return the organizations that may hold a person's details outside Kinship: the lead of
    each campaign they joined (its contact export), each partner they ticked "share my details"
    for (its export), each that was sent them by webhook. Read before the projection forgets
    them (the erasure handlers run in that order)."""
    return export_holders(conn, supporter_id) | webhook_holders(conn, supporter_id)


def export_holders(conn: Connection, supporter_id: str) -> set[str]:
    """The organizations whose exports held the person, as the projection knows them: gone
    with it, so an erasure made here lists them before it forgets them (erasure.erase)."""
    leads = (
        select(campaigns.c.lead_organization_id)
        .join(supporter_campaigns, supporter_campaigns.c.campaign_id == campaigns.c.campaign_id)
        .where(supporter_campaigns.c.supporter_id == supporter_id)
    )
    shared = select(consents.c.organization_id).where(
        consents.c.supporter_id == supporter_id, consents.c.channel == SHARE
    )
    return _organizations(conn, leads, shared)


def webhook_holders(conn: Connection, supporter_id: str) -> set[str]:
    """The organizations sent the person's details by webhook: kept until the erasure's
    handler, which lists them."""
    sent = select(shares.c.organization_id).where(shares.c.supporter_id == supporter_id)
    told = select(messages.c.organization_id).where(messages.c.supporter_id == supporter_id)
    return _organizations(conn, sent, told)


def _organizations(conn: Connection, *queries: Any) -> set[str]:
    return {str(org) for query in queries for org in conn.execute(query).scalars() if org}


def handlers(clock: Callable[[], datetime], hash_key: str) -> dict[str, list[Handler]]:
    """Return the webhook handlers of every event type partners may subscribe to, and erasure."""

    def handle(event: Event, conn: Connection) -> None:
        short = domain.short_type(event.type)
        data = dict(event.data)
        if short == "signature.confirmed":
            found = confirmed_signature(conn, data)
            if found is None:
                return  # not a double opt-in signature known here, or its signer was erased
            data = found
        elif short == "signature.created" and signed_before_erasure(hash_key, conn, event):
            return  # the projection refused it too
        enqueue(conn, short, event.id, event.time, data, recipients(conn, short, data), clock())

    def erased(event: Event, conn: Connection) -> None:
        # The endpoints that were sent this person's details are told to delete them, whatever
        # their filter: a partner keeps what we shared only as long as the person lets us.
        sid = str(event.data["supporter_id"])
        note_deletions(conn, holders(conn, sid), sid, "erased", event.time)
        told = conn.execute(
            select(messages.c.endpoint_id, messages.c.organization_id)
            .where(messages.c.supporter_id == sid)
            .distinct()
        ).all()
        orgs = {row.organization_id for row in told}
        orgs.update(
            conn.execute(select(shares.c.organization_id).where(shares.c.supporter_id == sid))
            .scalars()
            .all()
        )
        scrub(conn, sid)
        conn.execute(delete(shares).where(shares.c.supporter_id == sid))
        data = {"supporter_id": sid, "at": format_time(event.time)}
        enqueue(
            conn, "person.erased", event.id, event.time, data, orgs, clock(),
            only_endpoints=erasure_endpoints(conn, orgs, {row.endpoint_id for row in told}),
        )  # fmt: skip

    def share_withdrawn(event: Event, conn: Connection) -> None:
        # The partner was sent the person's details because they ticked its box; they have
        # unticked it: its endpoints that got the details are told to delete them, and our
        # stored copies for it lose them.
        data = event.data
        if data.get("channel") != SHARE or data.get("change") != "unsubscribe":
            return
        sid, org = str(data["supporter_id"]), str(data.get("organization_id") or "")
        if org:  # its export held them, webhook or not
            note_deletions(conn, [org], sid, "withdrawn", event.time)
        told = set(
            conn.execute(
                select(messages.c.endpoint_id)
                .where(messages.c.supporter_id == sid, messages.c.organization_id == org)
                .distinct()
            ).scalars()
        )
        known = conn.execute(
            select(shares.c.supporter_id).where(
                shares.c.supporter_id == sid, shares.c.organization_id == org
            )
        ).first()
        if not told and known is None:
            return  # never sent them anything
        scrub(conn, sid, org, mark="withdrawn")
        conn.execute(
            delete(shares).where(shares.c.supporter_id == sid, shares.c.organization_id == org)
        )
        enqueue(
            conn, "consent.withdrawn", event.id, event.time,
            {"supporter_id": sid, "at": format_time(event.time)}, {org}, clock(),
            only_endpoints=erasure_endpoints(conn, {org}, told),
        )  # fmt: skip

    def partner_out(event: Event, conn: Connection) -> None:
        # Taken out of the coalition (or gone on its own): the signers' details waiting for
        # it are no longer its to receive. It is told of the removal as before.
        data = event.data
        hold_partners(conn, str(data["campaign_id"]), exclusive=True)
        withdraw_undelivered(conn, str(data["campaign_id"]), str(data["organization_id"]))
        handle(event, conn)

    table: dict[str, list[Handler]] = {type_name(short): [handle] for short in domain.EVENT_TYPES}
    table[type_name("campaign.partner_removed")] = [partner_out]
    table[type_name("person.erased")] = [erased]
    table[type_name("consent.changed")] = [share_withdrawn]
    return table
