"""Signatures: once per person, counted exactly, confirmed by link, expired, erased."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from services.petitions import domain, store
from services.petitions.bootstrap import Deps
from services.petitions.usecases import Result, coalition_of, event, now, run_idempotent
from shared.errors import Conflict, FieldError, NotFound
from shared.privacy import email_hash, supporter_id

MESSAGES = {
    "received": "Thank you. Your signature has been received.",
    "confirmation_required": "Thank you. Please confirm your signature with the link we emailed.",
}


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


def sign(
    deps: Deps,
    petition_id: str,
    data: Mapping[str, Any],
    idempotency_key: str | None,
    accept_languages: Sequence[str] = (),
) -> Result:
    """Record a signature, once per person; a repeat gets the same answer and counts nothing."""
    honeypot = bool(data.get("website"))
    person = dict(data["person"])
    if not honeypot:
        person["email"] = domain.clean_email(person["email"])
        if person.get("phone"):
            person["phone"] = domain.e164(person["phone"], person.get("country"))
    source = domain.clean_source((data.get("referrer_data") or {}).get("source"))
    consents = data.get("consents") or {}

    def work(conn: Connection) -> Result:
        # One connection and one transaction per signature: the hot path's round trips count.
        status = store.petition_status(conn, petition_id)
        if status is None or status == domain.DRAFT:
            raise NotFound("No such petition")
        if status != domain.OPEN:
            raise Conflict("This petition is closed", {"petition_id": ["closed"]})
        # What signing needs of a petition cannot change once it is open: read it once.
        petition = deps.open_petitions.get(
            petition_id, lambda: store.signing_view(conn, petition_id)
        )
        response = sign_response(petition_id, petition.double_opt_in)
        if honeypot:
            return response  # a bot filled the hidden field: tell it nothing, keep nothing
        coalition, _ = coalition_of(deps, conn, petition.campaign_id)
        locale = data.get("locale")
        if locale is not None and locale not in petition.locales:
            raise FieldError("locale", f"This petition is in {', '.join(sorted(petition.locales))}")
        if locale is None:
            wanted = [person["language"]] if person.get("language") else []
            locale = domain.resolve_locale(
                [*wanted, *accept_languages], petition.locales, petition.default_locale
            )
        partner_ids = coalition.partner_boxes(consents.get("partners") or {})
        recruiter = coalition.recruiter_for(source)
        _record(
            deps, conn, petition, person, locale, consents, partner_ids, source, recruiter, data
        )
        return response

    return run_idempotent(deps, f"sign:{petition_id}", idempotency_key, dict(data), work)


def _record(
    deps: Deps,
    conn: Connection,
    petition: Any,
    person: dict[str, Any],
    locale: str,
    consents: Mapping[str, Any],
    partner_ids: list[str],
    source: str | None,
    recruiter: str | None,
    data: Mapping[str, Any],
) -> None:
    key = deps.settings.hash_key
    moment = now()
    signature_id = str(uuid.uuid4())
    row = {
        "signature_id": signature_id,
        "petition_id": petition.petition_id,
        "email_hash": email_hash(key, person["email"]),
        "supporter_id": supporter_id(key, person["email"]),
        "status": domain.PENDING if petition.double_opt_in else domain.CONFIRMED,
        "locale": locale,
        "recruiter_organization_id": recruiter,
        "source": source,
        "given_name": person.get("given_name"),
        "family_name": person.get("family_name"),
        "email": person["email"],
        "phone": person.get("phone"),
        "postal_code": person.get("postal_code"),
        "country": person.get("country"),
        "region": person.get("region"),
        "language": person.get("language"),
        "pronouns": person.get("pronouns"),
        "discreet": bool(person.get("discreet")),
        "comment": data.get("comment"),
        "consent_email": bool(consents.get("email")),
        "consent_sms": bool(consents.get("sms")) and bool(person.get("phone")),
        "created_at": moment,
        "confirmed_at": None if petition.double_opt_in else moment,
        "expires_at": (
            moment + timedelta(hours=deps.config.confirm_ttl_hours)
            if petition.double_opt_in
            else None
        ),
    }
    row_id = store.insert_signature(conn, row)
    duplicate = row_id is None
    needs_confirmation = petition.double_opt_in
    if row_id is None:
        # Same person, same petition: nothing changes; notifications says "already signed".
        existing = store.existing_signature(conn, petition.petition_id, row["email_hash"])
        signature_id = existing.signature_id
        needs_confirmation = existing.status == domain.PENDING
    else:
        store.add_partner_consents(conn, petition.petition_id, row_id, partner_ids)
        changes = (
            [("pending", "", 1)] if petition.double_opt_in else _counted(locale, recruiter, source)
        )
        store.bump(conn, petition.petition_id, changes, deps.config.counter_shards)
    token = domain.confirm_token(key, signature_id) if needs_confirmation else None
    deps.outbox.add(
        conn,
        event(
            deps,
            "signature.created",
            row["supporter_id"],
            {
                "signature_id": signature_id,
                "petition_id": petition.petition_id,
                "campaign_id": petition.campaign_id,
                "organization_id": petition.organization_id,
                "supporter_id": row["supporter_id"],
                "duplicate": duplicate,
                "double_opt_in": petition.double_opt_in,
                "confirm_url": deps.confirm_url(token) if token else None,
                "locale": locale,
                "person": {
                    name: person.get(name)
                    for name in (
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
                }
                | {"discreet": bool(person.get("discreet"))},
                "consents": {
                    "email": row["consent_email"],
                    "sms": row["consent_sms"],
                    "partner_organization_ids": partner_ids,
                },
                "attribution": {"source": source, "partner_organization_id": recruiter},
                "at": moment.isoformat(),
            },
        ),
    )


def confirm(deps: Deps, token: str) -> dict[str, Any]:
    """Confirm a double opt-in signature through its emailed link (idempotent)."""
    gone = NotFound("This confirmation link is unknown or has expired")
    signature_id = domain.signature_of_token(deps.settings.hash_key, token)
    if signature_id is None:
        raise gone
    with deps.engine.begin() as conn:
        signature = store.get_signature(conn, signature_id, for_update=True)
        if signature is None or signature.status == domain.ERASED:
            raise gone
        result = {"petition_id": signature.petition_id, "status": "confirmed"}
        if signature.status == domain.CONFIRMED:
            return result
        moment = now()
        if signature.expires_at is not None and _aware(signature.expires_at) < moment:
            raise gone
        petition = store.get_petition(conn, signature.petition_id)
        if petition.status != domain.OPEN:
            raise Conflict("This petition is closed", {"petition_id": ["closed"]})
        if store.confirm_signature(conn, signature.id, moment):
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
            }
            deps.outbox.add(conn, event(deps, "signature.confirmed", signature.supporter_id, data))
        return result


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything here is stored in UTC.
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def expire_unconfirmed(deps: Deps, batch: int = 500) -> int:
    """Delete unconfirmed signatures past their deadline, with their personal data."""
    with deps.engine.begin() as conn:
        rows = store.expired_pending(conn, now(), batch)
        for row in rows:
            if store.delete_signature(conn, row.id):
                store.bump(conn, row.petition_id, [("pending", "", -1)], deps.config.counter_shards)
    return len(rows)


def erase_person(
    deps: Deps, conn: Connection, supporter: str | None, hashed_email: str | None
) -> int:
    """Remove a person's personal data; confirmed signatures stay counted, anonymous."""
    rows = store.signatures_of_person(conn, supporter, hashed_email)
    for row in rows:
        if row.status == domain.PENDING:
            if store.delete_signature(conn, row.id):
                store.bump(conn, row.petition_id, [("pending", "", -1)], deps.config.counter_shards)
        elif row.status == domain.CONFIRMED:
            store.scrub_signature(conn, row.id)
    return len(rows)


def forget_idempotency_keys(deps: Deps) -> int:
    """Drop stored responses older than the idempotency window."""
    with deps.engine.begin() as conn:
        return store.forget_idempotency_keys(
            conn, now() - timedelta(hours=deps.config.idempotency_ttl_hours)
        )
