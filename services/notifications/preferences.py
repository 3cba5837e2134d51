"""Preference changes held until the inbox confirms them.

The preference page is reached through a link in every email, and emails are forwarded: whoever
holds one could turn discreet mode off (the next subject and lock-screen preview name the
cause), rename or re-gender the supporter in every organization's emails, or opt their phone in
to texts. Changes that make a supporter easier to identify or reach wait here until the link
emailed to the address confirms them; changes that make them harder to reach (unsubscribing,
discreet mode on, texts off, email off) apply at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update

from services.notifications import audience, compliance, handlers, links, messages
from services.notifications.bootstrap import Deps
from services.notifications.store import preference_requests, supporters
from shared.outbox import Outbox
from shared.privacy import keyed_hash, phone_hash

LINK_TTL = timedelta(hours=24)
# At most one confirmation emailed to a supporter this often; a change asked for meanwhile
# replaces what the link already sent will confirm (its page shows what that is).
LINK_EVERY = timedelta(hours=1)
NAMES = ("given_name", "pronouns")


def _recent(conn: Connection, supporter_id: str, now: datetime) -> Any:
    """Return the request whose link went out within LINK_EVERY and is still valid, if any."""
    return conn.execute(
        select(preference_requests.c.token_hash, preference_requests.c.changes).where(
            preference_requests.c.supporter_id == supporter_id,
            preference_requests.c.created_at > now - LINK_EVERY,
            preference_requests.c.expires_at > now,
        )
    ).first()


def hold_new_number(
    deps: Deps, conn: Connection, supporter_id: str, organization_id: str, phone: str
) -> None:
    """Hold a number a single opt-in signature gave a known supporter, with the texts it asked
    for, until the address's owner confirms it: anyone can type an address, and texts to the
    number would carry the name, language and discreet mode on file. A request whose link is
    out already (within LINK_EVERY) is left as it is: replacing it would make the link the
    owner holds confirm a number a stranger typed instead of what they asked for.

    The number's keyed hash is kept with it, so that an erasure by that number finds it."""
    if _recent(conn, supporter_id, deps.clock()) is not None:
        return
    changes = {"phone": phone, "phone_hash": phone_hash(deps.settings.hash_key, phone), "sms": True}
    hold(deps, conn, supporter_id, organization_id, changes)


def forget_number(conn: Connection, hashed: str) -> None:
    """Forget the requests holding a number (its keyed hash): an erasure by that number."""
    rows = conn.execute(
        select(preference_requests.c.token_hash, preference_requests.c.changes)
    ).all()  # few: each lives a day
    held = [row.token_hash for row in rows if (row.changes or {}).get("phone_hash") == hashed]
    if held:
        conn.execute(delete(preference_requests).where(preference_requests.c.token_hash.in_(held)))


def hold(
    deps: Deps,
    conn: Connection,
    supporter_id: str,
    organization_id: str,
    changes: Mapping[str, Any],
) -> None:
    """Keep changes until the supporter confirms them; email the link (once an hour at most)."""
    now = deps.clock()
    recent = _recent(conn, supporter_id, now)
    if recent is not None:
        conn.execute(
            update(preference_requests)
            .where(preference_requests.c.token_hash == recent.token_hash)
            .values(changes=dict(changes), organization_id=organization_id)
        )
        return
    conn.execute(
        delete(preference_requests).where(preference_requests.c.supporter_id == supporter_id)
    )
    base = deps.settings.public_base_url
    hashed = links.email_link(
        conn,
        "confirm_preferences",
        supporter_id,
        lambda t: {
            "confirm_url": f"{base}/preferences/{t}/confirm",
            "organization_id": organization_id,
        },
        now,
    )
    conn.execute(
        preference_requests.insert().values(
            token_hash=hashed,
            supporter_id=supporter_id,
            organization_id=organization_id,
            changes=dict(changes),
            created_at=now,
            expires_at=now + LINK_TTL,
        )
    )


def pending(deps: Deps, conn: Connection, token: str) -> Any:
    """Return the unexpired request a confirmation link belongs to, else None."""
    row = conn.execute(
        select(preference_requests).where(
            preference_requests.c.token_hash == links.token_hash(token)
        )
    ).first()
    if row is None or row.expires_at < deps.clock():
        return None
    return row


def confirm(deps: Deps, conn: Connection, row: Any) -> bool:
    """Apply the changes of a pending request (pending()), once; False when its supporter is
    gone."""
    conn.execute(
        delete(preference_requests).where(preference_requests.c.token_hash == row.token_hash)
    )
    person = audience.load_supporters(conn, [row.supporter_id]).get(row.supporter_id)
    if person is None:
        return False
    now = deps.clock()
    changes = dict(row.changes)
    values = {name: changes[name] for name in NAMES if name in changes}
    if changes.get("discreet") is False:
        values["discreet"] = False
    if values:
        conn.execute(
            update(supporters)
            .where(supporters.c.supporter_id == person.supporter_id)
            .values(updated_at=now, **values)
        )
    if changes.get("phone"):
        # A number a signature gave (hold_new_number) becomes the person's, with an explicit
        # opt-in that lifts an old erasure's tombstone as a signature's does (an erasure by
        # the number since it was typed forgot this request: forget_number). A number that
        # texted STOP (or was unsubscribed) stays out: they keep the number they have.
        key = deps.settings.hash_key
        hashed = phone_hash(key, changes["phone"])
        if audience.suppression_reasons(conn, hashed, "sms", row.organization_id) - {"erased"}:
            changes.pop("sms", None)
        else:
            audience.lift_suppression(conn, hashed, "sms", audience.EVERY_ORG, ("erased",))
            audience.set_number(conn, key, person.supporter_id, changes["phone"], now)
            person = audience.load_supporters(conn, [person.supporter_id])[person.supporter_id]
    if changes.get("email"):
        compliance.resubscribe_email(conn, deps.outbox, person, row.organization_id, now)
    if changes.get("sms"):
        set_sms_consent(conn, deps.outbox, person, row.organization_id, True, now)
    return True


def set_sms_consent(
    conn: Connection,
    outbox: Outbox,
    person: audience.Supporter,
    organization_id: str,
    wanted: bool,
    at: datetime,
) -> bool:
    """Give or withdraw the supporter's texts consent for an organization, for the number on
    file; publish the change and welcome a new opt-in with HELP and STOP wording. A number that
    texted STOP keeps its consent as it was (only START from the phone lifts a STOP, and brings
    back what was given before). Return whether it changed."""
    if not person.phone_hash or audience.suppressed_hashes(
        conn, [person.phone_hash], "sms", organization_id
    ):
        return False
    if not wanted:  # a texts-on (or a number) still held for this organization goes too
        compliance.drop_held(conn, person.supporter_id, organization_id, ("sms", "phone"))
    if not audience.set_consent(
        conn, person.supporter_id, organization_id, "sms", wanted, at, person.phone_hash
    ):
        return False
    change = "subscribe" if wanted else "unsubscribe"
    outbox.add(
        conn, compliance.consent_event(person.supporter_id, "sms", organization_id, change, at)
    )
    if not wanted:  # a later opt-in is a new one, and is welcomed again (however soon)
        compliance.forget_welcomes(conn, person.phone_hash, organization_id)
    if wanted:  # a new opt-in gets the welcome with HELP and STOP wording
        org = audience.organization(conn, organization_id)
        handlers.queue_sms_welcome(conn, person.supporter_id, org, {}, at)
    return True


def forget_expired(conn: Connection, now: datetime) -> int:
    """Forget requests never confirmed in time, with the names they held."""
    result = conn.execute(delete(preference_requests).where(preference_requests.c.expires_at < now))
    return int(result.rowcount or 0)


def fingerprint(hash_key: str, row: Any) -> str:
    """Name a request as its confirmation page shows it, its organization with its changes:
    the page posts it back, so what is confirmed is what the person read (hold replaces a
    recent request's changes and organization). Keyed: a page holds a number's last digits,
    and a plain hash of its changes would give the rest away."""
    canonical = json.dumps([row.organization_id, dict(row.changes)], sort_keys=True)
    return keyed_hash(hash_key, "preference-request", canonical)[:32]


def described(changes: Mapping[str, Any], locale: str = "en") -> list[str]:
    """What a request will change, in words (of locale) for its confirmation page."""

    def say(key: str) -> str:
        return messages.text(locale, f"page_{key}")

    lines = []
    for field, key in (("given_name", "name"), ("pronouns", "pronouns")):
        if field in changes:
            lines.append(f"{say(key)}: {changes[field] or say('none')}")
    if changes.get("discreet") is False:
        lines.append(say("discreet_off"))
    if changes.get("email"):
        lines.append(say("email_on"))
    if changes.get("phone"):  # the owner knows their number by its end
        lines.append(f"{say('sms_on')}: \u2022\u2022\u2022 {str(changes['phone'])[-4:]}")
    elif changes.get("sms"):
        lines.append(say("sms_on"))
    return lines
