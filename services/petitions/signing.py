"""Signatures: once per person, counted exactly, confirmed by link, expired, erased."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection

from services.petitions import domain, store
from services.petitions.bootstrap import Deps
from services.petitions.usecases import (
    Result,
    check_idempotency_key,
    coalition_of,
    event,
    now,
    run_idempotent,
    signers_erased,
)
from shared.db import aware
from shared.errors import Conflict, FieldError, NotFound
from shared.ids import uuid7
from shared.locales import best_match
from shared.privacy import clean_email, email_hash, phone_hash, supporter_id

log = logging.getLogger(__name__)
T = TypeVar("T")

MESSAGES = {
    "received": "Thank you. Your signature has been received.",
    "confirmation_required": "Thank you. Please confirm your signature with the link we emailed.",
}


# However often its address is typed again, an unconfirmed signature lives at most this long
# (the confirmation TTL, if longer): notifications forgets it after PENDING_SIGNATURE_TTL_HOURS
# (30 days), and a link confirmed after that counted a signer it would neither thank nor
# apply the consents of; and what someone typed about another person was kept for ever.
PENDING_AT_MOST = timedelta(days=14)


def closed() -> Conflict:
    return Conflict("This petition is closed", {"petition_id": ["closed"]})


def sign_response(petition_id: str, double_opt_in: bool) -> Result:
    """Return the one response every signer of a petition gets, first-time or repeat."""
    status = "confirmation_required" if double_opt_in else "received"
    return 202, {"petition_id": petition_id, "status": status, "message": MESSAGES[status]}


def _counted(locale: str, recruiter: str | None, source: str | None) -> list[tuple[str, str, int]]:
    return [
        ("total", "", 1),
        ("locale", locale, 1),
        ("partner", recruiter or "", 1),
        ("source", source or "", 1),
    ]


@dataclass
class Pending:
    """One validated signature on its way into a (shared) transaction."""

    petition: domain.OpenPetition
    row: dict[str, Any]
    partner_ids: list[str]
    counted: list[tuple[str, str, int]]
    event: dict[str, Any]


def sign(
    deps: Deps,
    petition_id: str,
    data: Mapping[str, Any],
    idempotency_key: str | None,
    accept_languages: Sequence[str] = (),
) -> Result:
    """Record a signature, once per person; a repeat gets the same answer and counts nothing."""
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)  # before the honeypot: the same answer either way
    petition = open_petition(deps, petition_id)
    response = sign_response(petition_id, petition.double_opt_in)
    item = prepare(deps, petition, data, accept_languages)
    if data.get("website"):
        # A bot filled the hidden field: tell it nothing, keep nothing. Checked after the rest
        # of the input, and a closed petition refused as anyone's signature is: an answer that
        # differed with the field filled would tell it which field is the trap.
        with deps.engine.connect() as conn:
            statuses = store.petition_statuses(conn, [petition_id])
        if statuses.get(petition_id) != domain.OPEN:
            raise closed()
        return response
    if idempotency_key is not None:

        def work(conn: Connection) -> Result:
            _raise_first(record(deps, conn, [item]))
            return response

        # The signer's own key: the endpoint is public, and another form sending the same one
        # (an embed's counter), or someone else's address with it, must neither be refused nor
        # learn that the key was used: a different request under it signs as without one.
        scope = f"sign:{petition_id}:{item.row['email_hash']}"
        return _again_if_vanished(
            lambda: run_idempotent(
                deps, scope, idempotency_key, dict(data), work, other_request_runs=True
            )
        )
    deps.group_commit.submit(item, lambda items: commit_batch(deps, items))
    return response


def open_petition(deps: Deps, petition_id: str) -> domain.OpenPetition:
    """Return what signing needs of a petition; NotFound for a draft or an unknown one."""

    def load() -> domain.OpenPetition | None:
        with deps.engine.connect() as conn:
            return store.signing_view(conn, petition_id)

    view = deps.open_petitions.get(petition_id, load)
    if view is None:
        deps.open_petitions.forget(petition_id)  # a draft may open any moment
        raise NotFound("No such petition")
    return view  # type: ignore[no-any-return]


def prepare(
    deps: Deps,
    petition: domain.OpenPetition,
    data: Mapping[str, Any],
    accept_languages: Sequence[str],
) -> Pending:
    """Check a request against the petition and build its row and event (no I/O but caches)."""
    person = dict(data["person"])
    person["email"] = clean_email(person["email"])
    if person.get("phone"):
        person["phone"] = domain.e164(person["phone"], person.get("country"))
    source = domain.clean_source((data.get("referrer_data") or {}).get("source"))
    consents = data.get("consents") or {}
    if consents.get("sms") and not person.get("phone"):
        # Storing it as "no" would leave the supporter believing they will get texts.
        raise FieldError("person.phone", "Give a phone number to get text messages.")
    locale = data.get("locale")
    if locale is not None and locale not in petition.locales:
        raise FieldError("locale", f"This petition is in {', '.join(petition.locales)}")
    if locale is None:
        wanted = [person["language"]] if person.get("language") else []
        locale = best_match([*wanted, *accept_languages], petition.locales, petition.default_locale)
    coalition, _ = coalition_of(deps, None, petition.campaign_id)
    partner_ids = coalition.partner_boxes(consents.get("partners") or {})
    recruiter = coalition.recruiter_for(source)

    key = deps.settings.hash_key
    moment = now()
    doi = petition.double_opt_in
    row = {
        "signature_id": uuid7(),
        "petition_id": petition.petition_id,
        "email_hash": email_hash(key, person["email"]),
        "supporter_id": supporter_id(key, person["email"]),
        "status": domain.PENDING if doi else domain.CONFIRMED,
        "locale": locale,
        "recruiter_organization_id": recruiter,
        "source": source,
        "given_name": person.get("given_name"),
        "family_name": person.get("family_name"),
        "email": person["email"],
        "phone": person.get("phone"),
        "phone_hash": phone_hash(key, person["phone"]) if person.get("phone") else None,
        "postal_code": person.get("postal_code"),
        "country": person.get("country"),
        "region": person.get("region"),
        "language": person.get("language"),
        "pronouns": person.get("pronouns"),
        "discreet": bool(person.get("discreet")),
        "comment": data.get("comment"),
        "consent_email": bool(consents.get("email")),
        "consent_sms": bool(consents.get("sms")),
        "created_at": moment,
        "confirmed_at": None if doi else moment,
        "expires_at": moment + timedelta(hours=deps.config.confirm_ttl_hours) if doi else None,
    }
    event_data = {
        "petition_id": petition.petition_id,
        "campaign_id": petition.campaign_id,
        "organization_id": petition.organization_id,
        "supporter_id": row["supporter_id"],
        "double_opt_in": doi,
        "locale": locale,
        "person": {name: person.get(name) for name in EVENT_PERSON}
        | {"discreet": bool(person.get("discreet"))},
        "consents": {
            "email": row["consent_email"],
            "sms": row["consent_sms"],
            "partner_organization_ids": partner_ids,
        },
        "attribution": {"source": source, "partner_organization_id": recruiter},
        "interests": sorted(set(data.get("interests") or [])),
        "at": moment.isoformat(),
    }
    counted = [("pending", "", 1)] if doi else _counted(locale, recruiter, source)
    return Pending(petition, row, partner_ids, counted, event_data)


EVENT_PERSON = (
    "given_name",
    "family_name",
    "email",
    "phone",
    "postal_code",
    "country",
    "region",
    "language",
    "pronouns",
)


def record(deps: Deps, conn: Connection, items: Sequence[Pending]) -> list[Exception | None]:
    """Record signatures in the caller's transaction; return each one's error (None: done).

    Several requests share one transaction here (see GroupCommit): one status query, one
    multi-row insert, one counter upsert per petition and one outbox insert for all of them.
    """
    petition_ids = {item.petition.petition_id for item in items}
    statuses = store.petition_statuses(conn, petition_ids, for_share=True)
    errors: list[Exception | None] = []
    accepted: list[Pending] = []
    for item in items:
        status = statuses.get(item.petition.petition_id)
        if status == domain.OPEN:
            errors.append(None)
            accepted.append(item)
        else:
            errors.append(closed())
    if not accepted:
        return errors
    # Sorted, so concurrent transactions take the unique-index locks in the same order.
    accepted.sort(key=lambda i: (i.row["petition_id"], i.row["email_hash"]))
    inserted = store.insert_signatures(conn, [item.row for item in accepted])
    first_of: dict[tuple[str, str], Pending] = {}
    repeats: list[Pending] = []
    for item in accepted:
        person_key = (item.row["petition_id"], item.row["email_hash"])
        if person_key in inserted and person_key not in first_of:
            first_of[person_key] = item
        else:
            repeats.append(item)
    known = store.existing_signatures(
        conn, [(i.row["petition_id"], i.row["email_hash"]) for i in repeats]
    )
    deltas: dict[str, dict[tuple[str, str], int]] = {}
    consents: list[tuple[str, int, str]] = []
    renewed: set[tuple[str, str]] = set()
    events = []
    key = deps.settings.hash_key
    for item in accepted:
        person_key = (item.row["petition_id"], item.row["email_hash"])
        new = first_of.get(person_key) is item
        if new:
            signature_id, status = item.row["signature_id"], item.row["status"]
            row_id = inserted[person_key]
            consents += [(item.row["petition_id"], row_id, org) for org in item.partner_ids]
            bucket = deltas.setdefault(item.row["petition_id"], {})
            for dimension, name, delta in item.counted:
                bucket[(dimension, name)] = bucket.get((dimension, name), 0) + delta
        elif person_key not in known:
            # The row it collided with was deleted (expired, erased) since the insert: try the
            # whole batch again, when the insert will find the place free.
            raise _Vanished()
        else:
            # Same person, same petition: nothing changes; notifications says "already signed",
            # or sends the link again, which then lives as long as a new one would.
            signature_id, status = known[person_key]
            if signature_id == item.row["signature_id"]:
                # This very request's row: its batch committed, but the answer was lost (a
                # dropped connection, a failover) and commit_batch tried it again on its own.
                # It is the signature, not a repeat: nothing to announce twice.
                continue
            if status == domain.PENDING:
                renewed.add(person_key)
        token = domain.confirm_token(key, signature_id) if status == domain.PENDING else None
        data = dict(item.event)
        data.update(
            signature_id=signature_id,
            duplicate=not new,
            confirm_url=deps.confirm_url(token) if token else None,
        )
        events.append(event(deps, "signature.created", item.row["supporter_id"], data))
    if renewed:
        ttl = timedelta(hours=deps.config.confirm_ttl_hours)
        until = now() + ttl
        made_after = until - max(ttl, PENDING_AT_MOST)
        if store.renew_pending(conn, sorted(renewed), until, made_after) < len(renewed):
            raise _Vanished()  # expired and deleted since it was read: sign anew
    store.add_partner_consent_rows(conn, consents)
    for petition_id, changes in sorted(deltas.items()):
        store.bump(
            conn,
            petition_id,
            [(d, b, n) for (d, b), n in changes.items()],
            deps.config.counter_shards,
        )
    deps.outbox.add_many(conn, events)
    return errors


def _raise_first(errors: Sequence[Exception | None]) -> None:
    for error in errors:
        if error is not None:
            raise error


class _Vanished(Exception):
    """A signature a repeat collided with was deleted before it could be read."""


def _again_if_vanished(attempt: Callable[[], T]) -> T:
    """Run a transaction's attempt, again (twice at most) when a repeat's row vanished."""
    for _ in range(2):
        try:
            return attempt()
        except _Vanished:
            continue
    return attempt()


def _record_retrying(deps: Deps, items: Sequence[Pending]) -> list[Exception | None]:
    """Record items in one transaction, again when a repeat's row vanished."""

    def attempt() -> list[Exception | None]:
        with deps.engine.begin() as conn:
            return record(deps, conn, items)

    return _again_if_vanished(attempt)


def commit_batch(deps: Deps, items: Sequence[Pending]) -> list[Exception | None]:
    """Record a batch in one transaction; if that fails, each on its own (one bad apple)."""
    try:
        return _record_retrying(deps, items)
    except Exception as exc:
        if len(items) == 1:
            return [exc]
    outcomes: list[Exception | None] = []
    for item in items:
        try:
            outcomes += _record_retrying(deps, [item])
        except Exception as exc:  # noqa: BLE001 - this request's own failure, reported to it
            outcomes.append(exc)
    return outcomes


@dataclass(frozen=True)
class Link:
    """Where a confirmation link stands: pending, confirmed, closed (its petition) or gone
    (unknown, expired or erased), with its signature and petition unless gone."""

    state: str
    signature: Any = None
    petition: Any = None
    partners: Sequence[str] = ()  # names of the partners the signature would be shared with
    lead: str = ""  # name of the petition's organization (whose emails the signature may take)


def _link(deps: Deps, conn: Connection, token: str, moment: datetime, lock: bool) -> Link:
    signature_id = domain.signature_of_token(deps.settings.hash_key, token)
    if signature_id is None:
        return Link("gone")
    signature = store.get_signature(conn, signature_id)
    if signature is None or signature.status == domain.ERASED:
        return Link("gone")
    # Held in share mode when confirming: closing waits for the confirmation, which it counts.
    # The petition first, then the signature, in the order signing takes them.
    petition = store.get_petition(conn, signature.petition_id, for_share=lock)
    if lock:
        signature = store.get_signature(conn, signature_id, for_update=True)
        if signature is None or signature.status == domain.ERASED:
            return Link("gone")
    if signature.status == domain.CONFIRMED:
        # Opened again soon after (a second click, a mail client's preview): "confirmed".
        # Later the link is dead: found in a mail archive or a synced browser history, it must
        # not stay a live proof of what its owner signed.
        confirmed_at = signature.confirmed_at and aware(signature.confirmed_at)
        if confirmed_at and confirmed_at + timedelta(hours=deps.config.confirm_ttl_hours) < moment:
            return Link("gone")
        return Link("confirmed", signature, petition)
    if signature.expires_at is not None and aware(signature.expires_at) < moment:
        return Link("gone")
    if petition.status != domain.OPEN:
        return Link("closed", signature, petition)
    return Link("pending", signature, petition)


def look_up_link(deps: Deps, token: str) -> Link:
    """Say where a confirmation link stands, changing nothing (what opening the link does)."""
    with deps.engine.connect() as conn:
        link = _link(deps, conn, token, now(), lock=False)
        if link.state != "pending":
            return link
        # Whoever typed the address chose these, not necessarily its owner: the page shows
        # them, so the click confirms what it was shown.
        partners = store.partner_names_of_signature(conn, link.signature.petition_id,
                                                    link.signature.id)  # fmt: skip
        lead_id = link.petition.organization_id
        _, lead = store.organization_names(conn, [lead_id]).get(lead_id, ("", lead_id))
        return Link(link.state, link.signature, link.petition, partners, lead)


def confirm(deps: Deps, token: str) -> dict[str, Any]:
    """Confirm a double opt-in signature through its emailed link (idempotent)."""
    moment = now()
    with deps.engine.begin() as conn:
        link = _link(deps, conn, token, moment, lock=True)
        if link.state == "gone":
            raise NotFound("This confirmation link is unknown or has expired")
        if link.state == "closed":
            raise Conflict("This petition is closed", {"petition_id": ["closed"]})
        signature, petition = link.signature, link.petition
        result = {"petition_id": signature.petition_id, "status": "confirmed"}
        if link.state == "confirmed":
            return result
        if store.confirm_signature(conn, signature.id, moment):
            store.drop_boxes_of_former_partners(
                conn, signature.petition_id, signature.id, petition.campaign_id
            )
            changes = [
                ("pending", "", -1),
                *_counted(signature.locale, signature.recruiter_organization_id, signature.source),
            ]
            store.bump(conn, signature.petition_id, changes, deps.config.counter_shards)
            data = {
                "signature_id": signature.signature_id,
                "petition_id": signature.petition_id,
                "campaign_id": petition.campaign_id,
                "supporter_id": signature.supporter_id,
                "at": moment.isoformat(),
                # What this confirmation shares, so notifications need not guess it from its
                # own view of the coalition (campaign events reach it on another topic).
                "partner_organization_ids": store.partner_ids_of_signature(
                    conn, signature.petition_id, signature.id
                ),
            }
            deps.outbox.add(conn, event(deps, "signature.confirmed", signature.supporter_id, data))
        return result


def expire_unconfirmed(deps: Deps, batch: int = 500) -> int:
    """Delete unconfirmed signatures past their deadline, with their personal data.

    Every row first, the counts after, as signing and confirming take them: counting each row
    as it went, expiry held a counter's row while it waited on a signature being confirmed or
    signed again, whose transaction then waited on that counter, and PostgreSQL aborted one.
    """
    moment = now()
    gone: dict[str, int] = {}
    with deps.engine.begin() as conn:
        rows = store.expired_pending(conn, moment, batch)
        for row in sorted(rows, key=lambda r: (r.petition_id, r.email_hash)):
            if store.delete_signature(conn, row.id, status=domain.PENDING, expired_before=moment):
                gone[row.petition_id] = gone.get(row.petition_id, 0) + 1
        for petition_id, count in sorted(gone.items()):
            store.bump(conn, petition_id, [("pending", "", -count)], deps.config.counter_shards)
    return len(rows)


def erase_signer_data(deps: Deps, batch: int = 500) -> int:
    """Erase the signers' personal data of each closed petition whose signer retention ran out
    over domain.ERASE_AFTER_DUE ago (petitions.signer_data_erase_at), a batch of rows a
    transaction; return how many signatures it erased. Confirmed signatures stay counted,
    anonymous, as an erasure leaves them; unconfirmed ones go, as at expiry. Stored responses
    to retried signing requests go too. It waits while a signature.created event older than the
    due time is still in the outbox (the relay or Kafka down): those carry what signers typed,
    and would leave the service after the erasure. The petition is then marked
    (signer_data_erased_at) and never read again."""
    with deps.engine.connect() as conn:
        petitions = [
            petition
            for petition in store.petitions_keeping_signers(conn)
            if signers_erased(petition, at=now() - domain.ERASE_AFTER_DUE)
        ]
        # A petition's signatures were all written before its due time (closing waits for the
        # signers being written), so only events older than its due time hold it; every due
        # time here is over ERASE_AFTER_DUE old, so the latest of them still lets fresh events
        # of open petitions pass, and holds each due petition's (the earliest did not hold a
        # later one's events made after it).
        latest = max((aware(p.signer_data_erase_at) for p in petitions), default=None)
        if latest is not None and store.unrelayed_signatures(conn, made_before=latest):
            log.info("signer erasure waits for the outbox", extra={"petitions": len(petitions)})
            return 0
    due = [petition.petition_id for petition in petitions]
    erased = 0
    for petition_id in due:
        last = 0
        while True:
            with deps.engine.begin() as conn:
                rows = store.signatures_holding_data(conn, petition_id, last, batch)
                # In expiry's order, as expiry deletes them: two workers never wait on each other.
                pending = sorted(
                    (row for row in rows if row.status == domain.PENDING),
                    key=lambda row: row.email_hash or "",
                )
                gone = {
                    row.id
                    for row in pending
                    if store.delete_signature(conn, row.id, status=domain.PENDING)
                }
                # A pending row not deleted was confirmed since it was read: it is scrubbed.
                store.scrub_signatures(conn, [row.id for row in rows if row.id not in gone])
                if gone:
                    store.bump(
                        conn, petition_id, [("pending", "", -len(gone))], deps.config.counter_shards
                    )
            erased += len(rows)
            if len(rows) < batch:
                break
            last = rows[-1].id
        with deps.engine.begin() as conn:
            store.forget_idempotency_scopes(conn, f"sign:{petition_id}:")
            store.update_petition(conn, petition_id, signer_data_erased_at=now())
    return erased


def erase_person(
    deps: Deps,
    conn: Connection,
    supporter: str | None,
    hashed_email: str | None,
    hashed_phone: str | None = None,
) -> int:
    """Remove a person's personal data (each signature made with their address or their
    phone); confirmed signatures stay counted, anonymous."""
    rows = store.signatures_of_person(conn, supporter, hashed_email, hashed_phone)
    # Theirs: signed with their address. A signature matched only by the number was typed
    # under another address: it goes, but that address's choices and other signatures stay.
    theirs = {supporter} | {
        row.supporter_id
        for row in rows
        if row.supporter_id == supporter or (hashed_email and row.email_hash == hashed_email)
    }
    for person in theirs - {None}:
        store.forget_consent_changes(conn, str(person))
    signed: dict[str, set[str]] = {}
    for row in rows:
        signed.setdefault(row.supporter_id, set()).add(row.signature_id)
        if row.email_hash and row.supporter_id in theirs:
            # A retried request's key is kept per signer (the address's keyed hash).
            store.forget_idempotency_scope(conn, f"sign:{row.petition_id}:{row.email_hash}")
    # The events of the signatures read above only: one committed since that read keeps its
    # row, its data and its count, and so its event too (signatures and events stay one for
    # one).
    for person, signature_ids in signed.items():
        store.forget_unrelayed_signatures(conn, person, signature_ids)
    for row in rows:
        if row.status == domain.PENDING and store.delete_signature(
            conn, row.id, status=domain.PENDING
        ):
            store.bump(conn, row.petition_id, [("pending", "", -1)], deps.config.counter_shards)
        elif row.status in (domain.PENDING, domain.CONFIRMED):
            # Confirmed, or confirmed since it was read (the delete found it no longer pending).
            store.scrub_signatures(conn, [row.id])
    return len(rows)


def forget_idempotency_keys(deps: Deps) -> int:
    """Drop stored responses older than the idempotency window."""
    with deps.engine.begin() as conn:
        return store.forget_idempotency_keys(
            conn, now() - timedelta(hours=deps.config.idempotency_ttl_hours)
        )
