"""Event handlers: keep the audience projection current and queue transactional messages.

Handlers run inside the consumer's batch transaction; they never call a provider. They write
ledger rows in `queued`, which the queue poller sends once the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, select, update

from services.notifications import audience, compliance, erasure, ledger, messages, preferences
from services.notifications.bootstrap import Deps
from services.notifications.domain import shared_values
from services.notifications.store import alerts, signatures, sms_welcomes, supporters, upsert
from services.notifications.webhooks.handlers import handlers as webhook_handlers
from shared.auth import projection_handlers
from shared.events import Event
from shared.events.catalog import type_name
from shared.events.envelope import format_time, parse_time
from shared.locales import resolve_locale
from shared.privacy import email_hash, phone_hash

Handler = Callable[[Event, Connection], None]
# At most one SMS welcome to a number from an organization this often (queue_sms_welcome).
WELCOME_EVERY = timedelta(days=1)


def queue(
    conn: Connection,
    *,
    message_key: str,
    recipient_id: str,
    channel: str,
    kind: str,
    params: dict[str, Any],
    now: Any,
) -> None:
    """Queue one transactional message (once per key, recipient and channel)."""
    row = ledger.new_row(
        message_key=message_key,
        recipient_id=recipient_id,
        channel=channel,
        kind=kind,
        status="queued",
        params=params,
        now=now,
    )
    ledger.insert_new(conn, [row])


def handle_signature_created(deps: Deps, event: Event, conn: Connection) -> None:
    """Project the signer and queue their thank-you, confirmation or "already signed" email."""
    data = event.data
    now = deps.clock()
    if audience.signed_before_erasure(deps.settings.hash_key, conn, event):
        # Made before the person was erased, delivered after (consumer lag, a retried event,
        # an outbox row not yet relayed): it must not bring them back, thank them or tell
        # partners about them. Partners hear only of signers held here (webhooks.handlers).
        return
    sid = str(data["supporter_id"])
    org = str(data["organization_id"])
    params = {
        "petition_id": data["petition_id"],
        "organization_id": org,
        "locale": data.get("locale"),
    }
    if (data.get("person") or {}).get("discreet"):
        # Asking for discretion is honoured at once, even before the signature is confirmed
        # or when it changes nothing else: what it costs is only a neutral subject and sender.
        params["discreet"] = True
    if data["duplicate"]:
        # A repeat may be typed by anyone: it changes nothing we hold, it only tells the owner.
        # A signature still waiting for its confirmation gets its link again (the first email
        # may be lost); a counted one, "you had already signed". At most one such email a
        # petition and a day, however often the address is typed: each one names the cause,
        # and a flood of them to a shared or work inbox could out the person.
        known = conn.execute(
            select(supporters.c.supporter_id).where(supporters.c.supporter_id == sid)
        ).first()
        day = f"{data['petition_id']}:{event.time.date().isoformat()}"
        if known is not None and data.get("confirm_url"):
            queue(
                conn, message_key=f"confirm-again:{day}", recipient_id=sid, channel="email",
                kind="confirm", params={**params, "confirm_url": data["confirm_url"]}, now=now,
            )  # fmt: skip
        elif known is not None:
            queue(
                conn, message_key=f"already:{day}", recipient_id=sid, channel="email",
                kind="already_signed", params=params, now=now,
            )  # fmt: skip
        return
    consents = dict(data["consents"])
    if data["double_opt_in"]:
        # Anyone can type an address into a form: until its link is clicked, the signature
        # changes nothing about the person (name, phone, campaigns, an erasure's tombstone). A
        # person we do not know yet is recorded, to be sent the link, and joins nothing.
        known = conn.execute(
            select(supporters.c.supporter_id).where(supporters.c.supporter_id == sid)
        ).first()
        if known is None:
            audience.project_supporter(conn, deps.settings.hash_key, data, now, verified=False)
        upsert(
            conn,
            signatures,
            {
                "signature_id": data["signature_id"],
                "supporter_id": sid,
                "petition_id": data["petition_id"],
                "organization_id": org,
                "consents": consents,
                "confirmed": False,
                "pending": {key: data.get(key) for key in PENDING_FIELDS},
                "phone_hash": _phone_hash(deps, data["person"]),
                "created_at": now,
            },
            ["signature_id"],
        )
        queue(
            conn, message_key=f"confirm:{data['signature_id']}", recipient_id=sid,
            channel="email", kind="confirm",
            params={**params, "confirm_url": data.get("confirm_url")}, now=now,
        )  # fmt: skip
        return
    kept_back = _project(deps, conn, data, now, verified=False)
    if kept_back is not None:
        # Anyone can type a known address with their own number: it becomes the person's,
        # with the texts it asks for, once the address's owner confirms it (project_supporter
        # keeps the one on file meanwhile, and the box ticked grants nothing to it).
        if consents.get("sms"):
            preferences.hold_new_number(deps, conn, sid, org, kept_back)
        consents["sms"] = False
    _welcome(deps, conn, sid, org, consents, str(data["signature_id"]), params, event.time)


def _phone_hash(deps: Deps, person: Mapping[str, Any]) -> str | None:
    phone = audience.person_phone(person)
    return phone_hash(deps.settings.hash_key, phone) if phone else None


# What a signature says about its signer, kept with an unconfirmed one until it is confirmed.
PENDING_FIELDS = ("supporter_id", "campaign_id", "person", "attribution", "interests", "locale")


def _project(
    deps: Deps, conn: Connection, data: Mapping[str, Any], now: datetime, *, verified: bool
) -> str | None:
    """Apply what a (confirmed or single opt-in) signature says about its signer; verified:
    confirmed through the emailed link. Return the number it gave that was kept back
    (audience.project_supporter)."""
    kept_back = audience.project_supporter(
        conn, deps.settings.hash_key, data, now, verified=verified
    )
    audience.join_campaign(conn, data, now)
    consents = dict(data.get("consents") or {})
    if kept_back is not None:
        consents["sms"] = False  # asked for a number kept back: granted once it is confirmed
    if consents.get("email") or consents.get("sms"):
        # A fresh, explicit opt-in lifts an erasure tombstone (never a bounce, STOP or complaint).
        contact = email_hash(deps.settings.hash_key, data["person"]["email"])
        audience.lift_suppression(conn, contact, "email", audience.EVERY_ORG, ("erased",))
        number = _phone_hash(deps, data["person"])
        if consents.get("sms") and number:
            audience.lift_suppression(conn, number, "sms", audience.EVERY_ORG, ("erased",))
        if verified and consents.get("email") and data.get("organization_id"):
            # Confirmed through the link, the person asks for this organization's email
            # again: their own unsubscribe from it is lifted (never on a single opt-in, which
            # anyone who knows the address could type to undo it).
            audience.lift_suppression(
                conn, contact, "email", str(data["organization_id"]), ("unsubscribe",)
            )
    return kept_back


def _welcome(
    deps: Deps,
    conn: Connection,
    sid: str,
    org: str,
    consents: dict[str, Any],
    signature_id: str,
    params: dict[str, Any],
    opted_in_at: datetime,
) -> None:
    """Apply a counted signature's consents and thank its signer; opted_in_at: when they
    signed (or confirmed), from which a welcome text is fresh (delivery.WELCOME_FRESH)."""
    now = deps.clock()
    held = conn.execute(
        select(supporters.c.phone_hash, supporters.c.email_hash).where(
            supporters.c.supporter_id == sid
        )
    ).first()
    phone, contact = (held.phone_hash, held.email_hash) if held is not None else (None, None)
    if consents.get("email") and audience.suppressed_hashes(conn, [contact], "email", org):
        # Ticked, but their unsubscribe (or a bounce, a complaint) holds: a single opt-in
        # signature, which anyone who knows the address can make, does not lift it, so it
        # grants nothing and publishes no opt-in (petitions' export would mark them
        # reachable). A confirmed signature lifts the unsubscribe first (_project), and then
        # grants and publishes.
        consents = {**consents, "email": False}
    new = audience.grant_consents(conn, sid, org, consents, phone, now)
    for channel in sorted(new):  # every consent change is published, opt-ins included
        deps.outbox.add(conn, compliance.consent_event(sid, channel, org, "subscribe", now))
    queue(
        conn, message_key=f"thanks:{signature_id}", recipient_id=sid, channel="email",
        kind="thank_you", params=params, now=now,
    )  # fmt: skip
    if "sms" in new:  # a new opt-in: the first, or one after an unsubscribe or an erasure
        queue_sms_welcome(
            conn, sid, audience.organization(conn, org),
            {**params, "opted_in_at": format_time(opted_in_at)}, now, signature_id,
        )  # fmt: skip


def queue_sms_welcome(
    conn: Connection,
    sid: str,
    org: Any,
    params: dict[str, Any],
    now: datetime,
    occasion: str | None = None,
) -> None:
    """Queue the SMS welcome (with HELP and STOP wording) for a new opt-in to org's texts;
    occasion names the opt-in (a signature id; the moment when none). At most one a day to a
    number from an organization (WELCOME_EVERY): a new supporter's number is taken as typed,
    and signatures under fresh addresses giving one number would each text it, at any hour."""
    org_id = org.organization_id if org is not None else params.get("organization_id")
    number = conn.execute(
        select(supporters.c.phone_hash).where(supporters.c.supporter_id == sid)
    ).scalar()
    if number and org_id:
        row = {"phone_hash": number, "organization_id": org_id, "welcomed_at": now}
        stale = sms_welcomes.c.welcomed_at < now - WELCOME_EVERY
        if not upsert(conn, sms_welcomes, row, ["phone_hash", "organization_id"], row, stale):
            return  # welcomed from this organization within the day: not again
    queue(
        conn, message_key=f"sms_welcome:{org_id}:{occasion or now.isoformat()}", recipient_id=sid,
        channel="sms", kind="sms_welcome",
        params={"organization_id": org_id, **params, "org": org.name if org else None}, now=now,
    )  # fmt: skip


def handle_signature_confirmed(deps: Deps, event: Event, conn: Connection) -> None:
    """Apply a double opt-in signature's consents and thank the signer."""
    data = event.data
    row = conn.execute(
        select(signatures).where(signatures.c.signature_id == data["signature_id"])
    ).first()
    if row is None or row.confirmed:
        return
    conn.execute(
        update(signatures)
        .where(signatures.c.signature_id == row.signature_id)
        .values(confirmed=True, pending=None, phone_hash=None)
    )
    consents = audience.confirmed_consents(conn, dict(row.consents), data, row.pending or {})
    if row.pending is not None:  # (rows from before 0014 were applied when they arrived)
        pending = {**row.pending, "consents": consents, "organization_id": row.organization_id}
        _project(deps, conn, pending, deps.clock(), verified=True)
    params = {"petition_id": row.petition_id, "organization_id": row.organization_id}
    _welcome(
        deps, conn, row.supporter_id, row.organization_id, consents,
        row.signature_id, params, event.time,
    )  # fmt: skip


def handle_milestone(deps: Deps, event: Event, conn: Connection) -> None:
    """Tell the petition's organizers it passed a milestone."""
    data = event.data
    petition = audience.petition(conn, str(data["petition_id"]))
    if petition is None:
        return
    queue(
        conn,
        message_key=f"milestone:{data['petition_id']}:{data['milestone']}",
        recipient_id=ledger.ORGANIZATION + petition.organization_id,
        channel="email",
        kind="milestone",
        params={
            "petition_id": data["petition_id"],
            "milestone": data["milestone"],
            "total": data["total"],
            "next_goal": data["next_goal"],
            # The organizers' language, as their petition's: a Vietnamese group's own petition
            # is not announced to it in English.
            "locale": resolve_locale(petition.default_locale, "en"),
        },
        now=deps.clock(),
    )


def handle_alert_test(deps: Deps, event: Event, conn: Connection) -> None:
    """Queue an alert's email, marked as a test, to the lead organization's contact address
    (looked up when it goes, as for every message to an organization). Its links lead to a
    preview page: the test names no supporter."""
    data = event.data
    sender, locale = data["sender"], str(data["locale"])
    name, address = str(sender["name"]), str(sender.get("postal_address") or "")
    campaign = audience.campaign(conn, str(data["campaign_id"]))
    titles = dict(campaign.titles or {}) if campaign else {}
    shared = shared_values(name, address, titles, locale, str(data["default_locale"]))
    preview = f"{deps.settings.public_base_url}/preview"
    discreet = bool(data.get("discreet"))
    person = SimpleNamespace(
        given_name=data.get("given_name") or "",
        family_name=data.get("family_name") or "",
        discreet=discreet,
    )
    rendered = messages.alert_test_email(
        data["content"], locale, shared, messages.Footer(name, address, preview, preview), person,
        discreet,
    )  # fmt: skip
    queue(
        conn,
        message_key=f"alert_test:{data['request_id']}",
        recipient_id=ledger.ORGANIZATION + str(data["organization_id"]),
        channel="email",
        kind="alert_test",
        params={
            "subject": rendered.subject,
            "text": rendered.text,
            "html": rendered.html,
            "locale": locale,
            # A discreet supporter's alerts come from the service's neutral name (delivery).
            "from_name": deps.config.from_name if discreet else name,
        },
        now=deps.clock(),
    )


def handle_alert_published(deps: Deps, event: Event, conn: Connection) -> None:
    """Record an alert for the expander (it starts at send_at, or now)."""
    data = event.data
    send_at = data.get("send_at")
    sender = data.get("sender") or {}
    upsert(
        conn,
        alerts,
        {
            "alert_id": data["alert_id"],
            "campaign_id": data["campaign_id"],
            "organization_id": data["organization_id"],
            "sender_name": sender.get("name"),
            "postal_address": sender.get("postal_address"),
            "channels": list(data["channels"]),
            "default_locale": data["default_locale"],
            "content": dict(data.get("content") or {}),
            "audience": dict(data.get("audience") or {}),
            "send_at": parse_time(send_at) if isinstance(send_at, str) else None,
            "status": "expanding",
            "checkpoint": None,
            "batches": 0,
            "total": 0,
            "sent": 0,
            "delivered": 0,
            "failed": 0,
            "suppressed": 0,
            "deferred": 0,
            "ambiguous": 0,
            "dead_batches": 0,
            "version": 1,
            "published_version": 0,
            "created_at": deps.clock(),
        },
        ["alert_id"],
    )


def handle_alert_cancelled(deps: Deps, event: Event, conn: Connection) -> None:
    """Stop an alert that has not finished; rows already sent stay sent.

    A cancellation can arrive before its alert: an alert.published whose handler failed is
    retried later, after the events behind it (docs/architecture.md, known limits). Then it
    leaves a cancelled row, which the late alert.published finds and leaves alone (it only
    inserts), so a cancelled alert is never sent. The row names no organization and reports no
    progress (version 0)."""
    data = event.data
    if data.get("reason") and data.get("organization_id"):
        # The scheduler cancelled it when due (it no longer passed the checks): tell the lead.
        queue(
            conn, message_key=f"not_sent:{data['alert_id']}",
            recipient_id=ledger.ORGANIZATION + data["organization_id"], channel="email",
            kind="alert_not_sent",
            params={
                "alert_name": data.get("name"), "reason": data["reason"],
                "locale": resolve_locale(data.get("default_locale"), "en"),
            },
            now=deps.clock(),
        )  # fmt: skip
    moved = conn.execute(
        update(alerts)
        .where(alerts.c.alert_id == data["alert_id"], alerts.c.status != "done")
        .values(status="cancelled", version=alerts.c.version + 1)
    ).rowcount
    if not moved:
        upsert(
            conn,
            alerts,
            {
                "alert_id": data["alert_id"],
                "campaign_id": data["campaign_id"],
                "organization_id": "",
                "channels": [],
                "default_locale": "en",
                "content": {},
                "audience": {},
                "status": "cancelled",
                "version": 0,
                "published_version": 0,
                "created_at": deps.clock(),
            },
            ["alert_id"],
        )


def handlers(deps: Deps) -> dict[str, list[Handler]]:
    """Return the consumer's handlers, bound to deps."""

    def bind(fn: Callable[[Deps, Event, Connection], None]) -> Handler:
        return lambda event, conn: fn(deps, event, conn)

    def org(event: Event, conn: Connection) -> None:
        audience.upsert_organization(conn, deps.settings.hash_key, event.data, event.happened_at)

    def campaign(event: Event, conn: Connection) -> None:
        audience.upsert_campaign(conn, event.data, event.happened_at)

    def partner(event: Event, conn: Connection) -> None:
        audience.set_campaign_partner(
            conn, str(event.data["campaign_id"]), str(event.data["organization_id"]),
            member=event.type == type_name("campaign.partner_joined"),
        )  # fmt: skip

    def petition(event: Event, conn: Connection) -> None:
        audience.upsert_petition(conn, event.data)

    def erased(event: Event, conn: Connection) -> None:
        erasure.apply_erasure(deps, conn, event.data)

    table: dict[str, list[Handler]] = {
        type_name("organization.created"): [org],
        type_name("organization.updated"): [org],
        type_name("campaign.created"): [campaign],
        type_name("campaign.launched"): [campaign],
        type_name("campaign.updated"): [campaign],  # titles fill {{campaign_title}}
        type_name("campaign.closed"): [campaign],
        type_name("campaign.partner_joined"): [partner],
        type_name("campaign.partner_removed"): [partner],
        type_name("petition.published"): [petition],
        type_name("petition.updated"): [petition],  # new titles for the emails
        type_name("signature.created"): [bind(handle_signature_created)],
        type_name("signature.confirmed"): [bind(handle_signature_confirmed)],
        type_name("petition.milestone_reached"): [bind(handle_milestone)],
        type_name("alert.published"): [bind(handle_alert_published)],
        type_name("alert.test_requested"): [bind(handle_alert_test)],
        type_name("alert.cancelled"): [bind(handle_alert_cancelled)],
        type_name("person.erased"): [erased],
    }
    from services.notifications.store import api_keys

    table.update(projection_handlers(api_keys))
    # Partner webhooks run after the projection handlers, so they see the updated campaign;
    # but before a confirmation's, which clears what the signature said (the partner's share),
    # and an erasure's, which forgets the campaigns and shares that say who holds the person.
    first = (type_name("signature.confirmed"), type_name("person.erased"))
    for name, fns in webhook_handlers(lambda: deps.clock(), deps.settings.hash_key).items():
        table[name] = (
            [*fns, *table.get(name, [])] if name in first else [*table.get(name, []), *fns]
        )
    return table
