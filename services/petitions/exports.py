"""Streamed CSV exports of confirmed signers: constant memory, whatever the petition's size.

Community identity (and pronouns, which can disclose gender identity) never appears here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from services.petitions import domain, store
from services.petitions.bootstrap import Deps
from services.petitions.usecases import coalition_of, now, signers_erased
from shared.auth import Principal
from shared.db import aware
from shared.errors import Gone, NotFound
from shared.events.catalog import SHARE

# supporter_id: the id deletion notices name (person.erased, consent.withdrawn, by webhook):
# whoever imports a CSV into its own records can find the row a notice asks it to delete.
CONTACT = (
    "signature_id",
    "supporter_id",
    "signed_at",
    "given_name",
    "family_name",
    "email",
    "phone",
    "postal_code",
    "country",
    "region",
    "language",
    "locale",
    "source",
    "recruited_by",
    "email_consent",
    "sms_consent",
    "comment",
)
DELIVERY = ("signed_at", "given_name", "family_name", "postal_code", "country", "region", "comment")
PARTNER = (
    "supporter_id",
    "signed_at",
    "given_name",
    "family_name",
    "email",
    "phone",
    "postal_code",
    "country",
    "region",
    "language",
)


def authorize(
    deps: Deps, principal: Principal, petition_id: str, partner_id: str | None, kind: str
) -> dict[str, str]:
    """Check the caller may export, and log that it does (export_log: who took which list,
    when); return organization id -> slug for the recruited_by column: of every organization
    that recruited signers here, partners since gone included (the counts still name them)."""
    with deps.engine.begin() as conn:
        petition = store.get_petition(conn, petition_id)
        if petition is None:
            raise NotFound("No such petition")
        coalition, _ = coalition_of(deps, conn, petition.campaign_id, fresh=True)
        if partner_id is None:
            domain.require_full_export(principal, coalition)
        else:
            domain.require_partner_export(principal, coalition, partner_id)
        _refuse_erased(petition)
        store.log_export(conn, petition_id, kind, partner_id, principal, now())
        recruiters = [org for org in store.counts(conn, petition_id).get("partner", {}) if org]
        known = store.organization_names(conn, recruiters)
    slugs = {org_id: slug for org_id, (slug, _) in known.items()}
    slugs.update((org_id, slug) for org_id, (slug, _) in coalition.organizations.items())
    return slugs


def _maybe_aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


class ExportBrokenOff(RuntimeError):
    """An export still streaming when its petition's signers may start being erased."""


def _refuse_erased(petition: Any) -> None:
    """410 once the petition's signers are erased, or due to be, under its retention: a list
    half erased is no list to deliver."""
    if signers_erased(petition):
        raise Gone(
            "The signers' personal data is erased, or being erased, under the petition's"
            " signer_retention_days; the counts remain"
        )


def export_log(
    deps: Deps, principal: Principal, petition_id: str, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """Return a page of who exported this petition's lists, newest first (its lead
    organization's organizers, and admins: those who may export every signer)."""
    with deps.engine.connect() as conn:
        petition = store.get_petition(conn, petition_id)
        if petition is None:
            raise NotFound("No such petition")
        coalition, _ = coalition_of(deps, conn, petition.campaign_id, fresh=True)
        domain.require_full_export(principal, coalition)
        log = store.export_log
        query = log.select().where(log.c.petition_id == petition_id)
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(
            query.order_by(log.c.export_id.desc()).limit(per_page).offset((page - 1) * per_page)
        ).all()
    return [dict(row._mapping) for row in rows], int(total)


Changes = Mapping[tuple[str, str, str], Mapping[str, datetime]]


def _reachable(row: Any, channel: str, organization_id: str, changes: Changes) -> bool:
    """Whether the signer ticked channel when signing and has not withdrawn it since, from the
    petition's organization or every one (an unsubscribe, a STOP, a bounce, a complaint)."""
    ticked = row.consent_email if channel == "email" else row.consent_sms
    if not ticked:
        return False
    scopes = (organization_id, store.EVERY_ORGANIZATION)
    return not any(
        domain.withdrawn(changes.get((row.supporter_id, scope, channel), {})) for scope in scopes
    )


def _share_withdrawn(row: Any, partner_id: str, changes: Changes) -> bool:
    """Whether the signer withdrew, since giving it with this signature, their consent to share
    their details with the partner (a later signature ticking the box gives it anew)."""
    withdrawn_at = changes.get((row.supporter_id, partner_id, SHARE), {}).get("unsubscribe")
    given_at = row.confirmed_at or row.created_at
    return withdrawn_at is not None and aware(withdrawn_at) >= aware(given_at)


def _cells(
    row: Any, slugs: dict[str, str], organization_id: str, changes: Changes
) -> dict[str, Any]:
    return {
        "signature_id": row.signature_id,
        "supporter_id": row.supporter_id,
        "signed_at": (row.confirmed_at or row.created_at).isoformat(),
        "given_name": row.given_name,
        "family_name": row.family_name,
        "email": row.email,
        "phone": row.phone,
        "postal_code": row.postal_code,
        "country": row.country,
        "region": row.region,
        "language": row.language,
        "locale": row.locale,
        "source": row.source,
        # An organization this service never learnt the slug of is named by its id.
        "recruited_by": slugs.get(row.recruiter_organization_id, row.recruiter_organization_id)
        or "",
        "email_consent": "yes" if _reachable(row, "email", organization_id, changes) else "no",
        "sms_consent": "yes" if _reachable(row, "sms", organization_id, changes) else "no",
        "comment": row.comment,
    }


def csv_lines(
    deps: Deps,
    petition_id: str,
    columns: tuple[str, ...],
    slugs: dict[str, str],
    partner_id: str | None = None,
    batch: int = 1000,
    bom: bool = False,
    since: datetime | None = None,
) -> Iterator[str]:
    """Yield the CSV in chunks of one batch of rows each, after a byte-order mark if asked;
    with since, only the signers counted at or after it.

    The consent columns say whether the signer may be contacted now: ticked when signing, and
    not withdrawn since (store.consent_changes, read once a batch). A partner's export leaves
    out whoever withdrew their consent to share with it since signing."""
    buffer = io.StringIO()
    if bom:
        buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    consents = "email_consent" in columns or "sms_consent" in columns or partner_id is not None
    with deps.engine.connect() as conn:
        petition = store.get_petition(conn, petition_id)
    organization_id = petition.organization_id if petition is not None else ""

    def still_whole() -> None:
        """Break the export off once the petition's rows may be being erased (retention): a
        CSV ending then would look whole with signers missing. Raising inside the streamed
        response makes the server drop the connection before the body's last chunk, which the
        client sees as a failed transfer. Read afresh after each batch is fetched, and after
        the last: a slow client may hold the stream while the worker erases the rest."""
        with deps.engine.connect() as conn:
            current = store.get_petition(conn, petition_id)
        if current is not None and domain.erasure_may_have_started(
            _maybe_aware(current.signer_data_erase_at),
            _maybe_aware(current.signer_data_erased_at),
            now(),
        ):
            raise ExportBrokenOff("The petition's signers are being erased (signer_retention_days)")

    for rows in store.stream_signers(deps.engine.connect, petition_id, partner_id, batch, since):
        still_whole()
        changes: Changes = {}
        if consents:
            with deps.engine.connect() as conn:
                changes = store.consent_changes_of(
                    conn,
                    [r.supporter_id for r in rows if r.supporter_id],
                    partner_id or organization_id,
                )
        for row in rows:
            if partner_id is not None and _share_withdrawn(row, partner_id, changes):
                continue
            cells = _cells(row, slugs, organization_id, changes)
            writer.writerow([domain.csv_safe(cells[name]) for name in columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    still_whole()
    if buffer.tell():  # no signer: the header alone
        yield buffer.getvalue()
