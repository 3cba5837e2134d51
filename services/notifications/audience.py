"""The audience projection: organizations, campaigns, supporters, consents and suppressions."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Select,
    and_,
    delete,
    exists,
    false,
    func,
    null,
    or_,
    select,
    true,
    update,
)

from services.notifications.domain import (
    packed_postal,
    postal_key,
    region_code,
    resolve_time_zone,
    to_e164,
)
from services.notifications.store import (
    campaigns,
    consents,
    erasures,
    organizations,
    petitions,
    signatures,
    supporter_campaigns,
    supporters,
    suppressions,
    upsert,
)
from shared.db import one_of
from shared.events import Event
from shared.events.catalog import SHARE
from shared.locales import language_tag, resolve_locale
from shared.privacy import email_hash, keyed_hash, phone_hash

EVERY_ORG = "*"


class Supporter(NamedTuple):
    """What a sender needs to know about one supporter.

    A named tuple: a sender makes one per recipient, and a frozen dataclass's __init__ (a
    setattr per field) cost 1.8 µs against 0.2."""

    supporter_id: str
    email: str | None
    email_hash: str | None
    phone: str | None
    phone_hash: str | None
    given_name: str | None
    family_name: str | None
    pronouns: str | None
    locale: str
    time_zone: str
    discreet: bool
    token: str
    language: str | None  # shared.locales.language_tag: what alerts target and pick content by


_SUPPORTER_COLUMNS = (
    supporters.c.supporter_id,
    supporters.c.email,
    supporters.c.email_hash,
    supporters.c.phone,
    supporters.c.phone_hash,
    supporters.c.given_name,
    supporters.c.family_name,
    supporters.c.pronouns,
    supporters.c.locale,
    supporters.c.time_zone,
    supporters.c.discreet,
    supporters.c.token,
    supporters.c.language,
)


def org_token_tag(hash_key: str, organization_id: str) -> str:
    """Return the opaque tag that stands for an organization in unsubscribe links."""
    return keyed_hash(hash_key, "org-tag", organization_id)[:12]


# -- organizations, campaigns, petitions ---------------------------------------------------------


def upsert_organization(
    conn: Connection, hash_key: str, data: Mapping[str, Any], at: datetime
) -> None:
    """Keep an organization's name, contact and postal address (for footers and milestones)."""
    row = {
        "organization_id": data["organization_id"],
        "name": data["name"],
        "contact_email": data.get("contact_email"),
        "postal_address": data.get("postal_address"),
        "token_tag": org_token_tag(hash_key, data["organization_id"]),
        "updated_at": at,
    }
    changes = {k: v for k, v in row.items() if k not in {"organization_id", "token_tag"}}
    upsert(conn, organizations, row, ["organization_id"], changes)


def upsert_campaign(conn: Connection, data: Mapping[str, Any], at: datetime) -> None:
    partners = list(data.get("partner_organization_ids") or [])
    held = conn.execute(
        select(campaigns.c.partner_organization_ids, campaigns.c.removed_partner_ids).where(
            campaigns.c.campaign_id == data["campaign_id"]
        )
    ).first()
    before, removed = (held[0], held[1]) if held is not None else ([], [])
    row = {
        "campaign_id": data["campaign_id"],
        "lead_organization_id": data["lead_organization_id"],
        "partner_organization_ids": partners,
        "removed_partner_ids": _removed(removed, gone=set(before) - set(partners), back=partners),
        "titles": dict(data.get("titles") or {}),
        "status": data.get("status"),
        "updated_at": at,
    }
    upsert(
        conn, campaigns, row, ["campaign_id"], {k: v for k, v in row.items() if k != "campaign_id"}
    )


def _removed(
    removed: Iterable[str] | None, *, gone: Iterable[str], back: Iterable[str]
) -> list[str] | None:
    """A campaign's partners taken out: those before, and gone now, less those back now. None
    stays None: a campaign projected before migration 0030, whose earlier removals nobody
    recorded, keeps the rule of its partners as known (webhooks.handlers.recipients)."""
    if removed is None:
        return None
    return sorted((set(removed) | set(gone)) - set(back))


def removed_partners(conn: Connection, campaign_id: str) -> set[str] | None:
    """Return the partners taken out of a campaign, as projected from its events; None when
    not tracked (a campaign projected before migration 0030, or not at all)."""
    removed = conn.execute(
        select(campaigns.c.removed_partner_ids).where(campaigns.c.campaign_id == campaign_id)
    ).scalar()
    return None if removed is None else {str(o) for o in removed}


def confirmed_consents(
    conn: Connection, consents: dict[str, Any], data: Mapping[str, Any], pending: Mapping[str, Any]
) -> dict[str, Any]:
    """The consents a confirmed double opt-in signature gives: those ticked, less the partners
    petitions no longer shares it with (left the campaign since: its confirmation page no
    longer named them, and petitions forgot their boxes), as signature.confirmed says; from an
    earlier release's event, less those this projection knows were taken out."""
    ticked = list(consents.get("partner_organization_ids") or [])
    if not ticked:
        return consents
    if data.get("partner_organization_ids") is not None:
        kept = set(data["partner_organization_ids"])
        return {**consents, "partner_organization_ids": [o for o in ticked if o in kept]}
    campaign_id = data.get("campaign_id") or pending.get("campaign_id")
    removed = removed_partners(conn, str(campaign_id)) if campaign_id else None
    if not removed:
        return consents
    return {**consents, "partner_organization_ids": [o for o in ticked if o not in removed]}


def set_campaign_partner(
    conn: Connection, campaign_id: str, organization_id: str, member: bool
) -> None:
    """Add a partner to a campaign's (member) or take it out (not member)."""
    held = conn.execute(
        select(campaigns.c.partner_organization_ids, campaigns.c.removed_partner_ids).where(
            campaigns.c.campaign_id == campaign_id
        )
    ).first()
    if held is None:
        return
    current, removed = held[0], held[1]
    others = [o for o in current if o != organization_id]
    partners = [*others, organization_id] if member else others
    removed = _removed(removed, gone=() if member else [organization_id], back=partners)
    conn.execute(
        update(campaigns)
        .where(campaigns.c.campaign_id == campaign_id)
        .values(partner_organization_ids=partners, removed_partner_ids=removed)
    )


def upsert_petition(conn: Connection, data: Mapping[str, Any]) -> None:
    row = {
        "petition_id": data["petition_id"],
        "campaign_id": data["campaign_id"],
        "organization_id": data["organization_id"],
        "titles": dict(data.get("titles") or {}),
        "default_locale": data["default_locale"],
        "double_opt_in": bool(data["double_opt_in"]),
    }
    upsert(
        conn, petitions, row, ["petition_id"], {k: v for k, v in row.items() if k != "petition_id"}
    )


# -- supporters ----------------------------------------------------------------------------------


def _country(person: Mapping[str, Any]) -> str | None:
    return (person.get("country") or "").upper()[:2] or None


def person_phone(person: Mapping[str, Any]) -> str | None:
    """Return a signature's phone number in E.164 (its country helps read a national one)."""
    return to_e164(person.get("phone"), _country(person))


# How a person is addressed: who can type their address must not change it (SELF_NAMING).
SELF_NAMING = ("given_name", "family_name", "pronouns")
# Where a person is and the language they read: nor these. A signature "from" New York moved a
# Honolulu supporter's quiet hours, and texts came at 03:00 their time; filling a blank postcode
# narrows a country's span of zones just as well. Only a confirmed signature moves them.
PLACE = ("country", "region", "postal_code", "time_zone")
LANGUAGE = ("locale", "language")


def project_supporter(
    conn: Connection, hash_key: str, data: Mapping[str, Any], at: datetime, *, verified: bool
) -> str | None:
    """Create or refresh a supporter from a signature (not the campaign it joins: join_campaign);
    return the number it gave that was kept back (see below), if any.

    verified: whether the signer showed they hold the address (a confirmed double opt-in
    signature). An unverified one fills a known supporter's blank name and pronouns but never
    replaces them: anyone who knows an address could otherwise have every later email greet
    its owner by a name they no longer use, or misgender them. The person changes theirs on
    the preference page, which every email links to and the thank-you quotes them on. Nor
    does it give a known supporter another number (the owner confirms it: handlers), another
    place or time zone (PLACE), or another language (LANGUAGE). A signature that names no
    language (the petition's language stands in) never replaces a known one: a supporter who
    chose Korean on the preference page kept getting English after signing an English
    petition."""
    person = data["person"]
    sid = str(data["supporter_id"])
    country = _country(person)
    phone = person_phone(person)
    values: dict[str, Any] = {
        "email": person["email"],
        "email_hash": email_hash(hash_key, person["email"]),
        "given_name": person.get("given_name"),
        "family_name": person.get("family_name"),
        "pronouns": person.get("pronouns"),
        # The language the person asked for, when it is one we write; else the petition's
        # language they signed in (a Korean speaker signing an English petition reads Korean).
        "locale": resolve_locale(person.get("language"), "") or resolve_locale(data.get("locale")),
        # The language itself, which alerts target and pick their content by (a Spanish
        # speaker reads Kinship's own messages in English, an alert's Spanish text in Spanish).
        "language": language_tag(person.get("language")) or language_tag(data.get("locale")),
        "country": country,
        # As alerts target it ("US-CA") when it can be read so; else as typed.
        "region": region_code(country, person.get("region")) or person.get("region"),
        "postal_code": postal_key(person.get("postal_code")),
        "discreet": bool(person.get("discreet", False)),
        "updated_at": at,
    }
    if phone:
        values["phone"] = phone
        values["phone_hash"] = phone_hash(hash_key, phone)
    existing = conn.execute(
        select(
            supporters.c.phone,
            supporters.c.interests,
            supporters.c.discreet,
            supporters.c.country,
            supporters.c.postal_code,
            *(supporters.c[name] for name in SELF_NAMING),
            *(supporters.c[name] for name in LANGUAGE),
            exists().where(supporter_campaigns.c.supporter_id == sid).label("joined"),
            supporters.c.language_chosen_at,
        ).where(supporters.c.supporter_id == sid)
    ).first()
    # A supporter recorded only to be sent a double opt-in link (handlers) is known through
    # what someone typed and nobody confirmed: this signature is the first that counts, and
    # sets everything, as for someone new. Else whoever typed the address first would have
    # fixed its owner's name, place and language.
    known = existing if existing is not None and existing.joined else None
    kept_back = None
    if phone and known is not None and not verified and phone != known.phone:
        # Nor their number: texts to it would carry the name, language and discreet mode on
        # file to whoever typed it. The owner confirms it (preferences.hold_new_number).
        kept_back, phone = phone, None
        del values["phone"], values["phone_hash"]
    interests = sorted(set(data.get("interests") or []) | set(known.interests if known else []))
    values["interests"] = interests
    # From everything known, not only this signature: one without a postcode must not move
    # a Perth supporter to the country's default zone (Sydney), and texts to 05:00.
    postal_code = person.get("postal_code")
    if known is not None and not postal_code and country in (None, "", known.country):
        postal_code = known.postal_code
    values["time_zone"] = resolve_time_zone(
        phone or (known.phone if known else None),
        country or (known.country if known else None),
        postal_code,
    )
    # A form left unticked is not a choice to be named: only the preference page turns it off.
    discreet = bool(existing is not None and existing.discreet) or values["discreet"]
    if existing is None:
        conn.execute(
            supporters.insert().values(
                supporter_id=sid, token=secrets.token_urlsafe(24), created_at=at, **values
            )
        )
    elif known is None:
        # Everything the unconfirmed signature said goes, blanks included; discretion asked
        # for stays (honoured at once, handlers).
        fresh = {**values, "phone": phone, "phone_hash": values.get("phone_hash")}
        fresh["discreet"] = discreet
        if existing.language_chosen_at is not None and not language_tag(person.get("language")):
            # Chosen on the preference page (linked from the link's email), which applies a
            # language at once: the owner chose it, and a form naming none does not undo it.
            for name in LANGUAGE:
                fresh.pop(name, None)
        conn.execute(update(supporters).where(supporters.c.supporter_id == sid).values(**fresh))
    else:
        # A later signature refreshes what the person typed, but never blanks a known field,
        # and never turns discreet mode off: a form left unticked is not a choice to be named
        # (only the preference page turns it off).
        keep = {k: v for k, v in values.items() if v is not None}
        keep["discreet"] = discreet
        if not verified:
            for name in SELF_NAMING:
                if getattr(known, name) is not None:
                    keep.pop(name, None)
            for name in (*PLACE, *LANGUAGE):
                keep.pop(name, None)
        elif not language_tag(person.get("language")):
            for name in LANGUAGE:
                if getattr(known, name) is not None:
                    keep.pop(name, None)
        conn.execute(update(supporters).where(supporters.c.supporter_id == sid).values(**keep))
    return kept_back


def set_number(conn: Connection, hash_key: str, supporter_id: str, phone: str, at: datetime) -> str:
    """Make phone (E.164) the supporter's number, their time zone read again with it; return
    its keyed hash."""
    row = conn.execute(
        select(supporters.c.country, supporters.c.postal_code).where(
            supporters.c.supporter_id == supporter_id
        )
    ).one()
    hashed = phone_hash(hash_key, phone)
    conn.execute(
        update(supporters)
        .where(supporters.c.supporter_id == supporter_id)
        .values(
            phone=phone,
            phone_hash=hashed,
            time_zone=resolve_time_zone(phone, row.country, row.postal_code),
            updated_at=at,
        )
    )
    return hashed


def forget_unconfirmed(conn: Connection, older_than: datetime) -> int:
    """Forget double opt-in signatures never confirmed since older_than, with what they said
    about the person, and the supporters recorded only to be sent their links (no campaign,
    no consent, no signature left); return how many supporters went."""
    conn.execute(
        delete(signatures).where(
            signatures.c.confirmed.is_(False), signatures.c.created_at < older_than
        )
    )
    sid = supporters.c.supporter_id
    orphans = conn.execute(
        delete(supporters).where(
            supporters.c.created_at < older_than,
            ~exists().where(supporter_campaigns.c.supporter_id == sid),
            ~exists().where(consents.c.supporter_id == sid),
            ~exists().where(signatures.c.supporter_id == sid),
        )
    )
    return int(orphans.rowcount or 0)


def join_campaign(conn: Connection, data: Mapping[str, Any], at: datetime) -> None:
    """Add a signature's supporter to its campaign's audience, with who recruited them."""
    sid = str(data["supporter_id"])
    attribution = data.get("attribution") or {}
    upsert(
        conn,
        supporter_campaigns,
        {
            "campaign_id": data["campaign_id"],
            "supporter_id": sid,
            "partner_organization_id": attribution.get("partner_organization_id"),
            "source": attribution.get("source"),
            "joined_at": at,
        },
        ["campaign_id", "supporter_id"],
    )


def grant_consents(
    conn: Connection,
    supporter_id: str,
    organization_id: str,
    given: Mapping[str, Any],
    phone_hash: str | None,
    at: datetime,
) -> set[str]:
    """Record the boxes a supporter ticked (never untick by omission); return new grants.

    phone_hash: the keyed hash of the number the signature gave (texts need one); an SMS
    consent holds for that number only, so ticking it again with a new number is a new grant.
    """
    wanted: list[tuple[str, str]] = []
    if given.get("email"):
        wanted.append((organization_id, "email"))
    if given.get("sms") and phone_hash:
        wanted.append((organization_id, "sms"))
    for partner in given.get("partner_organization_ids") or []:
        wanted.append((partner, SHARE))
    new: set[str] = set()
    for org, channel in wanted:
        if set_consent(conn, supporter_id, org, channel, True, at, phone_hash) and (
            org == organization_id
        ):
            new.add(channel)
    return new


def shared_with(conn: Connection, supporter_id: str) -> list[str]:
    """Return the organizations a supporter lets us share their contact details with."""
    return sorted(
        conn.execute(
            select(consents.c.organization_id).where(
                consents.c.supporter_id == supporter_id,
                consents.c.channel == SHARE,
                consents.c.granted == true(),
            )
        ).scalars()
    )


def set_consent(
    conn: Connection,
    supporter_id: str,
    organization_id: str,
    channel: str,
    granted: bool,
    at: datetime,
    phone_hash: str | None = None,
) -> bool:
    """Set one consent; return True when it changed. An SMS consent is given for one number
    (phone_hash): given again for another, it moves to that one, and that is a change."""
    contact = phone_hash if channel == "sms" else None
    current = conn.execute(
        select(consents.c.granted, consents.c.contact_hash).where(
            consents.c.supporter_id == supporter_id,
            consents.c.organization_id == organization_id,
            consents.c.channel == channel,
        )
    ).first()
    if current is None and not granted:
        return False  # no row means never given: withdrawing it changes nothing
    if current is not None and bool(current.granted) == granted:
        if not granted or current.contact_hash == contact:
            return False
    values = {"granted": granted, "changed_at": at}
    if granted:
        values["contact_hash"] = contact
    # Read above for the common case; decided here, on the row as committed: of two
    # unsubscribes at once (a mail client's one-click POST and the footer's button), only one
    # changes it, and only one consent.changed goes out.
    changed = (
        or_(consents.c.granted.is_(False), consents.c.contact_hash.is_distinct_from(contact))
        if granted
        else consents.c.granted.is_(True)
    )
    return upsert(
        conn,
        consents,
        {
            "supporter_id": supporter_id,
            "organization_id": organization_id,
            "channel": channel,
            "contact_hash": contact,
            **values,
        },
        ["supporter_id", "organization_id", "channel"],
        values,
        where=changed,
    )


def load_supporters(conn: Connection, ids: Iterable[str]) -> dict[str, Supporter]:
    """Return the supporters among ids that still exist (erased ones are gone)."""
    id_list = list(ids)
    if not id_list:
        return {}
    # .all() fetches the rows in one call; iterating a result fetches them one call a row.
    rows = conn.execute(
        select(*_SUPPORTER_COLUMNS).where(one_of(conn, supporters.c.supporter_id, id_list))
    ).all()
    return {row[0]: Supporter._make(row) for row in rows}


def batch_recipients(
    conn: Connection, ids: Iterable[str], organization_id: str, channel: str
) -> tuple[dict[str, Supporter], set[str]]:
    """Return a batch's supporters that still exist, and which of them the organization may
    reach on channel now: consent given, and their address not suppressed for that channel by
    the organization or everywhere.

    One statement for what was three (supporters, consents, suppressions): a dispatch batch's
    ids went to PostgreSQL twice and its contact hashes once more, each a thousand long.
    """
    id_list = list(ids)
    if not id_list:
        return {}, set()
    contact_hash = supporters.c.email_hash if channel == "email" else supporters.c.phone_hash
    consenting = exists().where(
        consents.c.supporter_id == supporters.c.supporter_id,
        *_consent_given(organization_id, channel),
    )
    blocked = exists().where(
        suppressions.c.contact_hash == contact_hash, *_suppressed(channel, organization_id)
    )
    allowed = and_(consenting, ~blocked).label("allowed")
    rows = conn.execute(
        select(*_SUPPORTER_COLUMNS, allowed).where(one_of(conn, supporters.c.supporter_id, id_list))
    ).all()
    people = {row[0]: Supporter._make(row[:-1]) for row in rows}
    return people, {row[0] for row in rows if row[-1]}


def supporter_by_token(conn: Connection, token: str) -> Supporter | None:
    row = conn.execute(select(*_SUPPORTER_COLUMNS).where(supporters.c.token == token)).first()
    return Supporter._make(row) if row else None


def _consent_given(organization_id: str, channel: str) -> tuple[Any, ...]:
    """The conditions on a consent row (beside its supporter's) that say the organization may
    reach the supporter: for texts, at the number the consent was given with."""
    given = (
        consents.c.organization_id == organization_id,
        consents.c.channel == channel,
        consents.c.granted == true(),
    )
    if channel == "sms":
        return (*given, consents.c.contact_hash == supporters.c.phone_hash)
    return given


def consented_ids(
    conn: Connection, ids: Iterable[str], organization_id: str, channel: str
) -> set[str]:
    """Return which of ids currently consent to channel from the organization."""
    id_list = list(ids)
    if not id_list:
        return set()
    rows = conn.execute(
        select(consents.c.supporter_id)
        .join(supporters, supporters.c.supporter_id == consents.c.supporter_id)
        .where(
            one_of(conn, consents.c.supporter_id, id_list),
            *_consent_given(organization_id, channel),
        )
    )
    return set(rows.scalars().all())


# -- suppressions --------------------------------------------------------------------------------


def _suppressed(channel: str, organization_id: str | None) -> tuple[Any, ...]:
    """The conditions on a suppression row that bar a contact from the organization's channel:
    suppressed there, or everywhere."""
    scopes = [EVERY_ORG] if organization_id is None else [EVERY_ORG, organization_id]
    return suppressions.c.channel == channel, suppressions.c.scope.in_(scopes)


# Suppressions that mean a message cannot arrive, not that the person does not want it.
UNDELIVERABLE = ("bounce", "dropped")


def suppressed_hashes(
    conn: Connection,
    hashes: Iterable[str | None],
    channel: str,
    organization_id: str | None,
    reasons: Iterable[str] | None = None,
) -> set[str]:
    """Return which contact hashes are suppressed for channel (everywhere or for the org),
    counting only suppressions for one of `reasons` when given."""
    wanted = [h for h in hashes if h]
    if not wanted:
        return set()
    conditions = list(_suppressed(channel, organization_id))
    if reasons is not None:
        conditions.append(suppressions.c.reason.in_(list(reasons)))
    rows = conn.execute(
        select(suppressions.c.contact_hash).where(
            one_of(conn, suppressions.c.contact_hash, wanted), *conditions
        )
    )
    return set(rows.scalars().all())


def suppression_reasons(
    conn: Connection, contact_hash: str, channel: str, organization_id: str | None
) -> set[str]:
    """Return why a contact is suppressed for channel (everywhere or for the org), if it is."""
    rows = conn.execute(
        select(suppressions.c.reason).where(
            suppressions.c.contact_hash == contact_hash, *_suppressed(channel, organization_id)
        )
    )
    return set(rows.scalars().all())


def suppress(
    conn: Connection, contact_hash: str, channel: str, scope: str, reason: str, at: datetime
) -> bool:
    """Add a suppression (idempotent); return True when it is new.

    One is held per contact, channel and scope. An erasure's is the weakest (a fresh opt-in
    lifts it, even a single opt-in anyone can type): a STOP, a complaint, a bounce or an
    unsubscribe that comes after it, for a message still in flight, takes its place, or a later
    signature would lift the erasure's and contact them again."""
    held = conn.execute(
        select(suppressions.c.reason).where(
            suppressions.c.contact_hash == contact_hash,
            suppressions.c.channel == channel,
            suppressions.c.scope == scope,
        )
    ).first()
    if held and (held.reason != "erased" or reason == "erased"):
        return False
    # Decided on the row as committed: of two STOPs at once, one suppresses and says so.
    return upsert(
        conn,
        suppressions,
        {
            "contact_hash": contact_hash,
            "channel": channel,
            "scope": scope,
            "reason": reason,
            "created_at": at,
        },
        ["contact_hash", "channel", "scope"],
        {"reason": reason, "created_at": at} if reason != "erased" else None,
        where=suppressions.c.reason == "erased",
    )


def number_locale(conn: Connection, contact_hash: str) -> str:
    """Return the language of a supporter who holds the number (English for a stranger)."""
    found = conn.execute(
        select(supporters.c.locale)
        .where(supporters.c.phone_hash == contact_hash)
        .order_by(supporters.c.updated_at.desc())
        .limit(1)
    ).scalar()
    return str(found or "en")


def record_erasure(conn: Connection, marks: Iterable[str], at: datetime) -> None:
    """Note when a person was erased, under each of their marks: the keyed hashes of their
    address and number, and their supporter id (the latest erasure of each counts)."""
    for mark in dict.fromkeys(marks):
        upsert(conn, erasures, {"contact_hash": mark, "erased_at": at}, ["contact_hash"])


def erased(conn: Connection, marks: Sequence[str]) -> bool:
    """Return whether a person was ever erased under one of these marks."""
    found = conn.execute(select(erasures.c.contact_hash).where(erasures.c.contact_hash.in_(marks)))
    return found.first() is not None


def signed_before_erasure(hash_key: str, conn: Connection, event: Event) -> bool:
    """Return whether a signature was made before its signer was erased, by address, number
    or supporter id (it arrived late: consumer lag, a retried event, an outbox row not yet
    relayed). It is void: it would bring back what the erasure removed."""
    person = event.data["person"]
    marks = [email_hash(hash_key, str(person["email"])), str(event.data["supporter_id"])]
    phone = person_phone(person)
    if phone:
        marks.append(phone_hash(hash_key, phone))
    erased_at = conn.execute(
        select(func.max(erasures.c.erased_at)).where(erasures.c.contact_hash.in_(marks))
    ).scalar()
    return erased_at is not None and erased_at > event.happened_at


def lift_suppression(
    conn: Connection, contact_hash: str, channel: str, scope: str, reasons: Iterable[str]
) -> bool:
    """Remove a suppression only if it has one of the liftable reasons; return True if removed."""
    result = conn.execute(
        delete(suppressions).where(
            suppressions.c.contact_hash == contact_hash,
            suppressions.c.channel == channel,
            suppressions.c.scope == scope,
            suppressions.c.reason.in_(list(reasons)),
        )
    )
    return bool(result.rowcount)


# -- alert audiences -----------------------------------------------------------------------------


def audience_query(
    campaign_id: str, organization_id: str, audience: Mapping[str, Any], after: str | None
) -> Select[Any]:
    """Select (supporter_id, email consent, sms consent, interests) of an alert's audience,
    ordered by supporter id, from the first id after `after`.

    Interests come back only when the audience filters on them (NULL otherwise): decoding a
    JSON column per row was a fifth of the expander's CPU on alerts that never look at it.
    """
    ce = consents.alias("ce")
    cs = consents.alias("cs")
    sc = supporter_campaigns
    s = supporters
    email_ok = and_(
        ce.c.supporter_id == sc.c.supporter_id,
        ce.c.organization_id == organization_id,
        ce.c.channel == "email",
        ce.c.granted == true(),
    )
    sms_ok = and_(
        cs.c.supporter_id == sc.c.supporter_id,
        cs.c.organization_id == organization_id,
        cs.c.channel == "sms",
        cs.c.granted == true(),
        cs.c.contact_hash == s.c.phone_hash,  # the number the consent was given with
    )
    query = (
        select(
            sc.c.supporter_id,
            ce.c.granted.label("email_ok"),
            cs.c.granted.label("sms_ok"),
            s.c.interests if audience.get("interests") else null().label("interests"),
        )
        .select_from(
            sc.join(s, s.c.supporter_id == sc.c.supporter_id)
            .outerjoin(ce, email_ok)
            .outerjoin(cs, sms_ok)
        )
        .where(sc.c.campaign_id == campaign_id)
        .where(or_(ce.c.granted == true(), cs.c.granted == true()))
        .order_by(sc.c.supporter_id)
    )
    if after is not None:
        query = query.where(sc.c.supporter_id > after)
    if audience.get("locales"):
        tags = {tag for tag in map(target_language, audience["locales"]) if tag}
        query = query.where(
            or_(false(), *[or_(s.c.language == t, s.c.language.startswith(t + "-")) for t in tags])
        )
    if audience.get("countries"):
        query = query.where(s.c.country.in_([c.upper() for c in audience["countries"]]))
    if audience.get("regions"):
        query = query.where(s.c.region.in_(list(audience["regions"])))
    if audience.get("postal_prefixes"):
        # Compared without spaces or hyphens (kept as typed, for the time zone's reading).
        packed = func.replace(func.replace(s.c.postal_code, " ", ""), "-", "")
        prefixes = {packed_postal(p) for p in audience["postal_prefixes"]} - {""}
        query = query.where(or_(false(), *[packed.startswith(p) for p in sorted(prefixes)]))
    if audience.get("partner_organization_ids"):
        query = query.where(
            sc.c.partner_organization_id.in_(list(audience["partner_organization_ids"]))
        )
    return query


def estimate(
    conn: Connection, campaign_id: str, organization_id: str, audience: Mapping[str, Any]
) -> dict[str, int]:
    """Count whom an alert of the organization to this audience would reach now, by channel:
    consent given and the contact not suppressed, as the send-time checks read them (quiet
    hours only delay a text; a discreet supporter without a discreet text is counted). Read as
    the expander reads it, streamed: constant memory whatever the campaign's size."""
    found = audience_query(campaign_id, organization_id, audience, None).order_by(None).subquery()
    s = supporters
    email_blocked = exists().where(
        suppressions.c.contact_hash == s.c.email_hash, *_suppressed("email", organization_id)
    )
    sms_blocked = exists().where(
        suppressions.c.contact_hash == s.c.phone_hash, *_suppressed("sms", organization_id)
    )
    query = select(
        found.c.email_ok, found.c.sms_ok, found.c.interests,
        email_blocked.label("email_blocked"), sms_blocked.label("sms_blocked"),
    ).join_from(found, s, s.c.supporter_id == found.c.supporter_id)  # fmt: skip
    wanted = interest_filter(audience)
    counts = {"email": 0, "sms": 0, "either": 0}
    rows = conn.execution_options(stream_results=True, yield_per=2000).execute(query)
    for email_ok, sms_ok, interests, no_email, no_sms in rows:
        if not wanted(interests):
            continue
        email, sms = bool(email_ok) and not no_email, bool(sms_ok) and not no_sms
        counts["email"] += email
        counts["sms"] += sms
        counts["either"] += email or sms
    return counts


def target_language(requested: str) -> str | None:
    """The tag an alert's locale targets supporters by: a bare language means all of it
    ("zh": Simplified and Traditional readers alike, though "zh" alone reads as zh-Hans)."""
    bare = requested.strip().replace("_", "-")
    if bare and "-" not in bare:
        # As supporters' languages are kept: fil as tl. Bare zh stays, for every script.
        return bare.lower() if bare.lower() == "zh" else language_tag(bare.lower())
    return language_tag(requested)


def interest_filter(audience: Mapping[str, Any]) -> Callable[[Iterable[str] | None], bool]:
    """Return a test of a supporter's interests: true when the audience names no interests or
    the supporter shares one. Made once per alert: the expander asks it of every supporter."""
    wanted = frozenset(audience.get("interests") or ())
    if not wanted:
        return lambda interests: True
    return lambda interests: not wanted.isdisjoint(interests or ())


def organization(conn: Connection, organization_id: str) -> Any:
    return conn.execute(
        select(organizations).where(organizations.c.organization_id == organization_id)
    ).first()


def organization_by_tag(conn: Connection, tag: str) -> Any:
    return conn.execute(select(organizations).where(organizations.c.token_tag == tag)).first()


def campaign(conn: Connection, campaign_id: str) -> Any:
    return conn.execute(select(campaigns).where(campaigns.c.campaign_id == campaign_id)).first()


def petition(conn: Connection, petition_id: str) -> Any:
    return conn.execute(select(petitions).where(petitions.c.petition_id == petition_id)).first()
