"""The petitions service's tables and the queries on them (PostgreSQL and SQLite)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.petitions.domain import (
    CLOSED,
    CONFIRMED,
    DRAFT,
    ERASED,
    OPEN,
    PENDING,
    Coalition,
    OpenPetition,
)
from shared.auth import Principal, api_keys_table
from shared.db import BigId, Moment, aware, json_param, raw
from shared.events.catalog import type_name
from shared.outbox import shared_tables

metadata = MetaData()
outbox, processed = shared_tables(metadata)
api_keys = api_keys_table(metadata)

# -- projections of the campaigns service (filled from kinship.campaigns events) -----------------

organizations = Table(
    "organizations",
    metadata,
    Column("organization_id", String(64), primary_key=True),
    Column("slug", String(100), nullable=False),
    Column("name", String(200), nullable=False),
    Column("source_code", String(64)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("lead_organization_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

campaign_partners = Table(
    "campaign_partners",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("organization_id", String(64), primary_key=True),
)

# -- this service's own aggregates -------------------------------------------------------------

petitions = Table(
    "petitions",
    metadata,
    Column("petition_id", String(64), primary_key=True),
    Column("campaign_id", String(64), nullable=False, index=True),
    Column("organization_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("default_locale", String(35), nullable=False),
    # {locale: {"title", "summary", "text"}}: every variant shares the one counter.
    Column("texts", JSON, nullable=False),
    Column("targets", JSON, nullable=False),
    Column("goal", Integer, nullable=False),
    Column("double_opt_in", Boolean, nullable=False),
    # False: the public read shows neither the total nor the goal (migration 0008).
    Column("public_total", Boolean, nullable=False, server_default=true()),
    # Days after closing when the signers' personal data is erased (never sooner than an hour
    # after); NULL keeps it until each signer asks. signer_data_erase_at: when that falls due
    # (set on closing, or by a change after it); signer_data_erased_at: when it was done
    # (migration 0009).
    Column("signer_retention_days", Integer),
    Column("signer_data_erase_at", DateTime(timezone=True)),
    Column("signer_data_erased_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
)

signatures = Table(
    "signatures",
    metadata,
    # The row id orders exports (keyset pagination) and never leaves the service.
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("signature_id", String(64), nullable=False, unique=True),
    Column("petition_id", String(64), nullable=False),
    # Keyed hash of the normalized address: one signature per person. NULL once erased.
    Column("email_hash", String(64)),
    Column("supporter_id", String(64), index=True),
    Column("status", String(16), nullable=False),
    Column("locale", String(35), nullable=False),
    Column("recruiter_organization_id", String(64)),
    Column("source", String(64)),
    Column("given_name", String(100)),
    Column("family_name", String(100)),
    Column("email", String(320)),
    Column("phone", String(20)),
    # Keyed hash of the phone (E.164): an erasure by phone finds the signatures it was typed on.
    Column("phone_hash", String(64)),
    Column("postal_code", String(20)),
    Column("country", String(2)),
    Column("region", String(100)),
    Column("language", String(35)),
    Column("pronouns", String(40)),
    Column("discreet", Boolean, nullable=False, default=False),
    Column("comment", Text),
    Column("consent_email", Boolean, nullable=False),
    Column("consent_sms", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    UniqueConstraint("petition_id", "email_hash", name="uq_signatures_petition_email"),
    Index("ix_signatures_petition_row", "petition_id", "id"),
    Index("ix_signatures_expires_at", "expires_at"),
    # An export since a time (a partner's sync) reads only who counted since (migration 0010).
    Index("ix_signatures_petition_confirmed", "petition_id", "confirmed_at"),
    # Only erasure reads it, and most signers give no phone: an index of those who do.
    Index(
        "ix_signatures_phone_hash",
        "phone_hash",
        postgresql_where=text("phone_hash IS NOT NULL"),
        sqlite_where=text("phone_hash IS NOT NULL"),
    ),
)

partner_consents = Table(
    "signature_partner_consents",
    metadata,
    Column("petition_id", String(64), primary_key=True),
    Column("organization_id", String(64), primary_key=True),
    Column("signature_row", BigId, primary_key=True),
    # Expiry and erasure delete a signature's boxes by its row (migration 0006).
    Index("ix_signature_partner_consents_row", "signature_row"),
)

# What notifications says of each supporter's consents since they signed (consent.changed):
# the latest time of each change, per organization ("" for every organization) and channel.
# The contact export's consent columns follow it, so a list imported into another tool never
# marks as reachable someone who unsubscribed, texted STOP or complained.
consent_changes = Table(
    "consent_changes",
    metadata,
    Column("supporter_id", String(64), primary_key=True),
    Column("organization_id", String(64), primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("change", String(16), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

counters = Table(
    "petition_counters",
    metadata,
    Column("petition_id", String(64), primary_key=True),
    # total | pending | locale | partner | source
    Column("dimension", String(16), primary_key=True),
    Column("bucket", String(64), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
)

# Who exported which list, when: the lists of a coalition whose supporters a leaked list could
# out. Kept for good; it names keys and organizations, never a signer.
export_log = Table(
    "export_log",
    metadata,
    Column("export_id", BigId, primary_key=True, autoincrement=True),
    Column("petition_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # contact | delivery | partner
    Column("partner_organization_id", String(64)),
    Column("organization_id", String(64), nullable=False),  # the caller's
    Column("key_id", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("at", Moment(), nullable=False),
    Index("ix_export_log_petition", "petition_id", "export_id"),
)


def log_export(
    conn: Connection,
    petition_id: str,
    kind: str,
    partner_id: str | None,
    principal: Principal,
    at: datetime,
) -> None:
    conn.execute(
        export_log.insert().values(
            petition_id=petition_id, kind=kind, partner_organization_id=partner_id,
            organization_id=principal.organization_id, key_id=principal.key_id,
            role=principal.role, at=at,
        )
    )  # fmt: skip


idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

# Personal data held on a signature: what erasure removes and what never leaves but in exports.
PERSONAL_COLUMNS = (
    "given_name",
    "family_name",
    "email",
    "phone",
    "phone_hash",
    "postal_code",
    "region",
    "pronouns",
    "comment",
)


def _insert(conn: Connection, table: Table) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def upsert(conn: Connection, table: Table, row: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Insert a row or update its non-key columns."""
    statement = _insert(conn, table).values(**row)
    changes = {name: statement.excluded[name] for name in row if name not in keys}
    if changes:
        statement = statement.on_conflict_do_update(index_elements=list(keys), set_=changes)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(statement)


# -- coalition projection ----------------------------------------------------------------------


def save_organization(conn: Connection, data: Mapping[str, Any], at: datetime) -> None:
    upsert(
        conn,
        organizations,
        {
            "organization_id": data["organization_id"],
            "slug": data["slug"],
            "name": data["name"],
            "source_code": data.get("source_code"),
            "updated_at": at,
        },
        ["organization_id"],
    )


def save_campaign(
    conn: Connection, campaign_id: str, lead: str, status: str | None, at: datetime
) -> None:
    row = {"campaign_id": campaign_id, "lead_organization_id": lead, "updated_at": at}
    if status:
        row["status"] = status
    existing = conn.execute(
        select(campaigns.c.status).where(campaigns.c.campaign_id == campaign_id)
    ).first()
    if existing is None:
        row.setdefault("status", "draft")
    upsert(conn, campaigns, row, ["campaign_id"])


def add_partners(conn: Connection, campaign_id: str, organization_ids: Iterable[str]) -> None:
    for org_id in organization_ids:
        upsert(
            conn,
            campaign_partners,
            {"campaign_id": campaign_id, "organization_id": org_id},
            ["campaign_id", "organization_id"],
        )


def remove_partner(conn: Connection, campaign_id: str, organization_id: str) -> None:
    conn.execute(
        delete(campaign_partners).where(
            campaign_partners.c.campaign_id == campaign_id,
            campaign_partners.c.organization_id == organization_id,
        )
    )


def coalition(
    conn: Connection, campaign_id: str, *, lock: bool = False
) -> tuple[Coalition, str] | None:
    """Return a campaign's organizations and its status, or None if unknown here; lock: hold
    the campaign's row (FOR SHARE, PostgreSQL) until the caller's transaction ends, so that its
    status cannot change meanwhile."""
    query = select(campaigns).where(campaigns.c.campaign_id == campaign_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    row = conn.execute(query).first()
    if row is None:
        return None
    partner_ids = frozenset(
        conn.execute(
            select(campaign_partners.c.organization_id).where(
                campaign_partners.c.campaign_id == campaign_id
            )
        ).scalars()
    ) - {row.lead_organization_id}
    members = partner_ids | {row.lead_organization_id}
    orgs = {
        r.organization_id: (r.slug, r.source_code)
        for r in conn.execute(
            select(organizations).where(organizations.c.organization_id.in_(members))
        )
    }
    return Coalition(campaign_id, row.lead_organization_id, partner_ids, orgs), row.status


def organization_names(conn: Connection, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Return organization id -> (slug, name) for the given ids."""
    rows = conn.execute(
        select(organizations.c.organization_id, organizations.c.slug, organizations.c.name).where(
            organizations.c.organization_id.in_(list(ids))
        )
    )
    return {r.organization_id: (r.slug, r.name) for r in rows}


# -- petitions ---------------------------------------------------------------------------------


_PETITION_BY_ID = select(petitions).where(petitions.c.petition_id == bindparam("petition_id"))


def get_petition(
    conn: Connection, petition_id: str, *, for_update: bool = False, for_share: bool = False
) -> Any:
    """Return a petition's row; for_share: held against closing until the transaction ends."""
    query = _PETITION_BY_ID
    if (for_update or for_share) and conn.dialect.name == "postgresql":
        query = query.with_for_update(read=not for_update)
    return conn.execute(query, {"petition_id": petition_id}).first()


def petition_statuses(
    conn: Connection, petition_ids: Iterable[str], *, for_share: bool = False
) -> dict[str, str]:
    """Return petition id -> status for the given petitions (usually one).

    for_share: for a transaction that counts signatures in them. The rows are held in share
    mode until it ends, so closing (which updates them) waits for the signatures being written
    and counts them in the total it announces; signers hold the lock together."""
    ids = sorted(petition_ids)
    names = ", ".join(f"%(p{i})s" for i in range(len(ids)))
    lock = " FOR SHARE" if for_share and conn.dialect.name == "postgresql" else ""
    rows = raw(
        conn,
        f"SELECT petition_id, status FROM petitions WHERE petition_id IN ({names}){lock}",
        {f"p{i}": petition_id for i, petition_id in enumerate(ids)},
    ).fetchall()
    return {str(petition_id): str(status) for petition_id, status in rows}


def signing_view(conn: Connection, petition_id: str) -> OpenPetition | None:
    """Return what signing needs of a published petition; None for drafts."""
    row = get_petition(conn, petition_id)
    if row is None or row.status == DRAFT:
        return None
    return OpenPetition(
        petition_id=row.petition_id,
        campaign_id=row.campaign_id,
        organization_id=row.organization_id,
        default_locale=row.default_locale,
        double_opt_in=bool(row.double_opt_in),
        locales=tuple(sorted(row.texts)),
    )


def insert_petition(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(petitions.insert().values(**row))


def update_petition(conn: Connection, petition_id: str, **values: Any) -> None:
    conn.execute(update(petitions).where(petitions.c.petition_id == petition_id).values(**values))


def partner_ids_of_signature(conn: Connection, petition_id: str, row_id: int) -> list[str]:
    """Return the ids of the organizations a signature's boxes share it with, as stored."""
    query = (
        select(partner_consents.c.organization_id)
        .where(
            partner_consents.c.petition_id == petition_id,
            partner_consents.c.signature_row == row_id,
        )
        .order_by(partner_consents.c.organization_id)
    )
    return [str(value) for value in conn.execute(query).scalars()]


def partner_names_of_signature(conn: Connection, petition_id: str, row_id: int) -> list[str]:
    """Return the names of the partner organizations a signature agreed to share with (the
    id of one whose name has not reached this service yet: listed all the same) that are still
    partners of its campaign (one removed since is shared nothing)."""
    name = func.coalesce(organizations.c.name, partner_consents.c.organization_id)
    campaign = select(petitions.c.campaign_id).where(petitions.c.petition_id == petition_id)
    partners_now = select(campaign_partners.c.organization_id).where(
        campaign_partners.c.campaign_id == campaign.scalar_subquery()
    )
    query = (
        select(name)
        .select_from(partner_consents)
        .outerjoin(
            organizations,
            organizations.c.organization_id == partner_consents.c.organization_id,
        )
        .where(
            partner_consents.c.petition_id == petition_id,
            partner_consents.c.signature_row == row_id,
            partner_consents.c.organization_id.in_(partners_now),
        )
        .order_by(name)
    )
    return [str(value) for value in conn.execute(query).scalars()]


def close_if_open(conn: Connection, petition_id: str, moment: datetime) -> bool:
    """Close a petition still open; True for the one transaction that closed it (another, a
    campaign's closing and an organizer's, may have read it open too)."""
    result = conn.execute(
        update(petitions)
        .where(petitions.c.petition_id == petition_id, petitions.c.status == OPEN)
        .values(status=CLOSED, closed_at=moment, updated_at=moment)
    )
    return result.rowcount == 1


def list_petitions(
    conn: Connection,
    *,
    organization_id: str | None,
    campaign_id: str | None,
    status: str | None,
    page: int,
    per_page: int,
    drafts: bool = True,
) -> tuple[list[Any], int]:
    """Return one page of petitions (of campaigns the organization belongs to, drafts among
    them if drafts) and the total."""
    where: list[ColumnElement[bool]] = []
    if not drafts:
        where.append(petitions.c.status != DRAFT)
    if organization_id is not None:
        member_of = select(campaign_partners.c.campaign_id).where(
            campaign_partners.c.organization_id == organization_id
        )
        led = select(campaigns.c.campaign_id).where(
            campaigns.c.lead_organization_id == organization_id
        )
        where.append(petitions.c.campaign_id.in_(member_of.union(led).scalar_subquery()))
    if campaign_id:
        where.append(petitions.c.campaign_id == campaign_id)
    if status:
        where.append(petitions.c.status == status)
    condition = and_(True, *where)
    total = conn.execute(select(func.count()).select_from(petitions).where(condition)).scalar_one()
    rows = conn.execute(
        select(petitions)
        .where(condition)
        .order_by(petitions.c.created_at.desc(), petitions.c.petition_id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(rows), int(total)


def open_petitions_of_campaign(conn: Connection, campaign_id: str) -> list[Any]:
    return list(
        conn.execute(
            select(petitions).where(
                petitions.c.campaign_id == campaign_id, petitions.c.status == OPEN
            )
        )
    )


# -- counters ----------------------------------------------------------------------------------
#
# Counts live in N shard rows per (petition, dimension, bucket); a change adds to one shard picked
# at random, so concurrent signers rarely wait on the same row, and a read sums at most N rows per
# bucket. Counting the signatures table instead would be exact too, but its reads grow with the
# petition (a million-row COUNT for every public page view and every milestone check).


def bump(
    conn: Connection, petition_id: str, changes: Iterable[tuple[str, str, int]], shards: int
) -> None:
    """Add deltas to (dimension, bucket) counters, all in one statement on one random shard."""
    shard = random.randrange(shards)
    rows = sorted(changes)
    if not rows:
        return
    params: dict[str, Any] = {"petition_id": petition_id, "shard": shard}
    for i, (dimension, bucket, delta) in enumerate(rows):
        params.update({f"d{i}": dimension, f"b{i}": bucket, f"n{i}": delta})
    # A fixed row order keeps lock order the same in every transaction: no deadlocks.
    # Plain SQL on the driver: SQLAlchemy spent ten times the database's own time building
    # and binding this multi-row upsert, and it runs on every signature.
    values = ", ".join(
        f"(%(petition_id)s, %(d{i})s, %(b{i})s, %(shard)s, %(n{i})s)" for i in range(len(rows))
    )
    raw(
        conn,
        "INSERT INTO petition_counters (petition_id, dimension, bucket, shard, count) "
        f"VALUES {values} ON CONFLICT (petition_id, dimension, bucket, shard) "
        "DO UPDATE SET count = petition_counters.count + excluded.count",
        params,
    )


def counts(conn: Connection, petition_id: str) -> dict[str, dict[str, int]]:
    """Return {dimension: {bucket: count}} summed over shards."""
    rows = conn.execute(
        select(counters.c.dimension, counters.c.bucket, func.sum(counters.c.count))
        .where(counters.c.petition_id == petition_id)
        .group_by(counters.c.dimension, counters.c.bucket)
    )
    result: dict[str, dict[str, int]] = {}
    for dimension, bucket, total in rows:
        result.setdefault(dimension, {})[bucket] = int(total or 0)
    return result


def total(conn: Connection, petition_id: str) -> int:
    value = conn.execute(
        select(func.coalesce(func.sum(counters.c.count), 0)).where(
            counters.c.petition_id == petition_id,
            counters.c.dimension == "total",
            counters.c.bucket == "",
        )
    ).scalar_one()
    return int(value)


def petitions_past_goal(conn: Connection, closed_since: datetime, limit: int = 100) -> list[Any]:
    """Return petitions whose total has reached their goal (petition_id, goal, total): open
    ones, and those closed since closed_since (closed at their goal before housekeeping saw
    it, or while the worker was away)."""
    summed = func.sum(counters.c.count)
    return list(
        conn.execute(
            select(
                petitions.c.petition_id,
                petitions.c.campaign_id,
                petitions.c.goal,
                summed.label("total"),
            )
            .join(counters, counters.c.petition_id == petitions.c.petition_id)
            .where(
                or_(
                    petitions.c.status == OPEN,
                    and_(petitions.c.status == CLOSED, petitions.c.closed_at >= closed_since),
                ),
                counters.c.dimension == "total",
                counters.c.bucket == "",
            )
            .group_by(petitions.c.petition_id, petitions.c.campaign_id, petitions.c.goal)
            .having(summed >= petitions.c.goal)
            .limit(limit)
        )
    )


def claim_goal(conn: Connection, petition_id: str, seen_goal: int, new_goal: int) -> bool:
    """Move a petition's goal up; True for the one transaction that moved it (once per rung)."""
    result = conn.execute(
        update(petitions)
        .where(petitions.c.petition_id == petition_id, petitions.c.goal == seen_goal)
        .values(goal=new_goal)
    )
    return result.rowcount == 1


# -- signatures --------------------------------------------------------------------------------


def insert_signatures(
    conn: Connection, rows: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], int]:
    """Insert signatures in one statement, skipping people who already signed.

    Return (petition id, email hash) -> row id for the rows inserted; with two rows of one
    person in rows, the first is inserted.
    """
    if not rows:
        return {}
    names = sorted(rows[0])
    columns = ", ".join(names)
    if conn.dialect.name == "postgresql":
        # The rows as one JSON parameter, typed by the table's own row type: a statement of
        # fixed text, where a VALUES list of 25 parameters a row had psycopg convert it and
        # the server plan it anew each time; and orjson writes the rows in C.
        source = (
            f"SELECT {columns} FROM jsonb_populate_recordset(NULL::signatures, %(rows)s::jsonb)"
        )
        params: dict[str, Any] = {"rows": json_param(rows)}
    else:
        source = "VALUES " + ", ".join(
            "(" + ", ".join(f"%({name}_{i})s" for name in names) + ")" for i in range(len(rows))
        )
        params = {f"{name}_{i}": row[name] for i, row in enumerate(rows) for name in names}
    found = raw(
        conn,
        f"INSERT INTO signatures ({columns}) {source} "
        "ON CONFLICT (petition_id, email_hash) DO NOTHING "
        "RETURNING petition_id, email_hash, id",
        params,
    ).fetchall()
    return {(str(p), str(h)): int(row_id) for p, h, row_id in found}


def existing_signatures(
    conn: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, str]]:
    """Return (petition id, email hash) -> (signature id, status) for those who signed."""
    if not keys:
        return {}
    rows = conn.execute(
        select(
            signatures.c.petition_id,
            signatures.c.email_hash,
            signatures.c.signature_id,
            signatures.c.status,
        ).where(tuple_(signatures.c.petition_id, signatures.c.email_hash).in_(list(set(keys))))
    )
    return {(r.petition_id, r.email_hash): (r.signature_id, r.status) for r in rows}


def renew_pending(
    conn: Connection, keys: Sequence[tuple[str, str]], until: datetime, made_after: datetime
) -> int:
    """Give the pending signatures of these (petition id, email hash) made after made_after
    until `until` to be confirmed (older ones keep their deadline); return how many were still
    there, renewed or not."""
    result = conn.execute(
        update(signatures)
        .where(
            tuple_(signatures.c.petition_id, signatures.c.email_hash).in_(list(keys)),
            signatures.c.status == PENDING,
        )
        .values(
            expires_at=case(
                (signatures.c.created_at > made_after, until), else_=signatures.c.expires_at
            )
        )
    )
    return result.rowcount


def add_partner_consent_rows(conn: Connection, rows: Sequence[tuple[str, int, str]]) -> None:
    """Record ticked partner boxes: (petition id, signature row id, organization id)."""
    if rows:
        conn.execute(
            partner_consents.insert(),
            [{"petition_id": p, "signature_row": r, "organization_id": o} for p, r, o in rows],
        )


def get_signature(conn: Connection, signature_id: str, *, for_update: bool = False) -> Any:
    query = select(signatures).where(signatures.c.signature_id == signature_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def confirm_signature(conn: Connection, row_id: int, at: datetime) -> bool:
    """Mark a pending signature confirmed; True for the one transaction that did it."""
    result = conn.execute(
        update(signatures)
        .where(signatures.c.id == row_id, signatures.c.status == PENDING)
        .values(status=CONFIRMED, confirmed_at=at, expires_at=None)
    )
    return result.rowcount == 1


def drop_boxes_of_former_partners(
    conn: Connection, petition_id: str, row_id: int, campaign_id: str
) -> None:
    """Forget a signature's boxes ticked for organizations no longer partners of its campaign:
    its confirmation page listed only those still partners, and confirming shares with
    nobody else (not with one that joins again later)."""
    current = select(campaign_partners.c.organization_id).where(
        campaign_partners.c.campaign_id == campaign_id
    )
    conn.execute(
        delete(partner_consents).where(
            partner_consents.c.petition_id == petition_id,
            partner_consents.c.signature_row == row_id,
            partner_consents.c.organization_id.not_in(current),
        )
    )


def expired_pending(conn: Connection, now: datetime, limit: int) -> list[Any]:
    return list(
        conn.execute(
            select(signatures)
            .where(signatures.c.expires_at < now, signatures.c.status == PENDING)
            .order_by(signatures.c.expires_at)
            .limit(limit)
        )
    )


def delete_signature(
    conn: Connection,
    row_id: int,
    *,
    status: str | None = None,
    expired_before: datetime | None = None,
) -> bool:
    """Delete a signature (only while it has status, and is past its deadline at
    expired_before, if given); True if it was deleted."""
    query = delete(signatures).where(signatures.c.id == row_id)
    if status is not None:
        # Read without a lock, the row may have been confirmed since: then it stays.
        query = query.where(signatures.c.status == status)
    if expired_before is not None:
        # Or given a new deadline since, by its signer signing again: then it stays too.
        query = query.where(signatures.c.expires_at < expired_before)
    if conn.execute(query).rowcount != 1:
        return False
    conn.execute(delete(partner_consents).where(partner_consents.c.signature_row == row_id))
    return True


def signatures_of_person(
    conn: Connection,
    supporter_id: str | None,
    email_hash: str | None,
    phone_hash: str | None = None,
) -> list[Any]:
    keys = []
    if supporter_id:
        keys.append(signatures.c.supporter_id == supporter_id)
    elif email_hash:
        # The supporter id is derived from the same normalized address: with one, this adds
        # no signature, and no index serves it alone (a read of every signature).
        keys.append(signatures.c.email_hash == email_hash)
    if phone_hash:
        keys.append(signatures.c.phone_hash == phone_hash)
    if not keys:
        return []
    return list(conn.execute(select(signatures).where(or_(*keys))))


EVERY_ORGANIZATION = ""


def record_consent_change(conn: Connection, data: Mapping[str, Any], at: datetime) -> None:
    """Keep the latest time of a consent.changed's change for its supporter, organization
    (none: every organization) and channel; an older event arriving late changes nothing."""
    row = {
        "supporter_id": data["supporter_id"],
        "organization_id": data.get("organization_id") or EVERY_ORGANIZATION,
        "channel": data["channel"],
        "change": data["change"],
        "at": at,
    }
    statement = _insert(conn, consent_changes).values(**row)
    keys = ["supporter_id", "organization_id", "channel", "change"]
    # PostgreSQL's greatest(); SQLite's max() of two arguments is the same.
    greatest = func.greatest if conn.dialect.name == "postgresql" else func.max
    later = greatest(consent_changes.c.at, statement.excluded.at)
    conn.execute(statement.on_conflict_do_update(index_elements=keys, set_={"at": later}))


def consent_changes_of(
    conn: Connection, supporter_ids: Sequence[str], organization_id: str
) -> dict[tuple[str, str, str], dict[str, datetime]]:
    """Return {(supporter, organization or "", channel): {change: latest time}} for these
    supporters, as seen by organization_id (its own changes and those for every one)."""
    if not supporter_ids:
        return {}
    rows = conn.execute(
        select(consent_changes).where(
            consent_changes.c.supporter_id.in_(list(supporter_ids)),
            consent_changes.c.organization_id.in_([organization_id, EVERY_ORGANIZATION]),
        )
    )
    found: dict[tuple[str, str, str], dict[str, datetime]] = {}
    for row in rows:
        key = (row.supporter_id, row.organization_id, row.channel)
        found.setdefault(key, {})[row.change] = row.at
    return found


def forget_consent_changes(conn: Connection, supporter_id: str) -> None:
    conn.execute(delete(consent_changes).where(consent_changes.c.supporter_id == supporter_id))


def forget_unrelayed_signatures(
    conn: Connection, supporter_id: str, signature_ids: set[str]
) -> None:
    """Drop the signature.created events of these signatures the relay has not published yet:
    each holds what they typed (name, address, number), which would otherwise reach the
    topic, and every partner's webhook, after their erasure."""
    of_person = and_(outbox.c.key == supporter_id, outbox.c.type == type_name("signature.created"))
    events = conn.execute(select(outbox.c.id, outbox.c.data).where(of_person)).all()
    gone = [e.id for e in events if json.loads(bytes(e.data))["signature_id"] in signature_ids]
    if gone:
        conn.execute(delete(outbox).where(outbox.c.id.in_(gone)))


def forget_idempotency_scope(conn: Connection, scope: str) -> None:
    conn.execute(delete(idempotency_keys).where(idempotency_keys.c.scope == scope))


def scrub_signatures(conn: Connection, row_ids: Sequence[int]) -> None:
    """Remove confirmed signatures' personal data and their link to the person; keep them
    counted."""
    if not row_ids:
        return
    ids = list(row_ids)
    conn.execute(delete(partner_consents).where(partner_consents.c.signature_row.in_(ids)))
    values: dict[str, Any] = {name: None for name in PERSONAL_COLUMNS}
    values.update(
        status=ERASED, email_hash=None, supporter_id=None, consent_email=False, consent_sms=False
    )
    conn.execute(update(signatures).where(signatures.c.id.in_(ids)).values(**values))


def petitions_keeping_signers(conn: Connection) -> list[Any]:
    """Closed petitions with a signer retention whose signers' data is not erased yet."""
    query = select(
        petitions.c.petition_id,
        petitions.c.signer_data_erase_at,
        petitions.c.signer_data_erased_at,
    ).where(
        petitions.c.signer_data_erase_at.is_not(None),
        petitions.c.signer_data_erased_at.is_(None),
    )
    return list(conn.execute(query).all())


def unrelayed_signatures(conn: Connection, made_before: datetime) -> bool:
    """Whether a signature.created event made before a time is still in the outbox (not yet
    relayed): the relay or Kafka is down. Fresh ones, always there briefly while people sign,
    do not count."""
    query = (
        select(outbox.c.id)
        .where(outbox.c.type == type_name("signature.created"), outbox.c.time < made_before)
        .limit(1)
    )
    return conn.execute(query).first() is not None


def signatures_holding_data(
    conn: Connection, petition_id: str, after: int, limit: int
) -> list[Any]:
    """Return (id, status, email_hash) of a petition's signatures holding personal data (pending or
    confirmed) past row id `after`, in row order (keyset: erased rows are never read again)."""
    query = (
        select(signatures.c.id, signatures.c.status, signatures.c.email_hash)
        .where(
            signatures.c.petition_id == petition_id,
            signatures.c.id > after,
            signatures.c.status.in_([PENDING, CONFIRMED]),
        )
        .order_by(signatures.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).all())


def forget_idempotency_scopes(conn: Connection, prefix: str) -> None:
    """Drop the stored responses of every scope starting with prefix."""
    scope = idempotency_keys.c.scope
    conn.execute(delete(idempotency_keys).where(scope.startswith(prefix, autoescape=True)))


EXPORT_COLUMNS = (
    signatures.c.id,
    signatures.c.signature_id,
    signatures.c.confirmed_at,
    signatures.c.created_at,
    signatures.c.given_name,
    signatures.c.family_name,
    signatures.c.email,
    signatures.c.phone,
    signatures.c.postal_code,
    signatures.c.country,
    signatures.c.region,
    signatures.c.language,
    signatures.c.locale,
    signatures.c.source,
    signatures.c.recruiter_organization_id,
    signatures.c.consent_email,
    signatures.c.consent_sms,
    signatures.c.supporter_id,
    signatures.c.comment,
)


def stream_signers(
    engine_connect: Any,
    petition_id: str,
    partner_id: str | None,
    batch: int = 1000,
    since: datetime | None = None,
) -> Iterator[list[Any]]:
    """Yield confirmed, unerased signers in row order, a batch at a time, one short query per
    batch (keyset); with since, only those confirmed (counted) at or after it."""
    last = 0
    while True:
        query = select(*EXPORT_COLUMNS).where(
            signatures.c.petition_id == petition_id,
            signatures.c.status == CONFIRMED,
            signatures.c.id > last,
        )
        if since is not None:
            # In UTC, as stored: SQLite's DATETIME drops the offset, comparing wall clocks.
            query = query.where(signatures.c.confirmed_at >= since.astimezone(UTC))
        if partner_id is not None:
            query = query.join(
                partner_consents,
                and_(
                    partner_consents.c.signature_row == signatures.c.id,
                    partner_consents.c.petition_id == petition_id,
                    partner_consents.c.organization_id == partner_id,
                ),
            )
        query = query.order_by(signatures.c.id).limit(batch)
        with engine_connect() as conn:
            rows = list(conn.execute(query).all())
        if rows:
            yield rows
        if len(rows) < batch:
            return
        last = rows[-1].id


# -- idempotency keys --------------------------------------------------------------------------


def find_idempotency_key(conn: Connection, scope: str, key: str) -> Any:
    return conn.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
        )
    ).first()


def claim_idempotency_key(
    conn: Connection, scope: str, key: str, request_hash: str, status: int, body: Any, at: datetime
) -> bool:
    """Store a response under a key; False when another request holds the key already."""
    inserted = conn.execute(
        _insert(conn, idempotency_keys)
        .values(
            scope=scope,
            key=key,
            request_hash=request_hash,
            status_code=status,
            body=body,
            created_at=at,
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(idempotency_keys.c.key)
    ).scalar()
    return inserted is not None


def forget_idempotency_keys(conn: Connection, before: datetime) -> int:
    result = conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < before))
    return int(result.rowcount or 0)


def confirmed_since(
    conn: Connection, petition_id: str, since: datetime, zone: str
) -> list[tuple[date, str | None, int]]:
    """Count a petition's signatures confirmed since a time by day in a time zone and by
    recruiting partner: [(day, partner id or None, count)]. Erased ones still count (their
    time and recruiter are kept). PostgreSQL counts them itself; SQLite (the local run) has no
    time zones, and its rows are read and counted here."""
    where = and_(
        signatures.c.petition_id == petition_id,
        signatures.c.confirmed_at.is_not(None),
        signatures.c.confirmed_at >= since.astimezone(UTC),  # SQLite compares wall clocks
    )
    partner = signatures.c.recruiter_organization_id
    if conn.dialect.name == "postgresql":
        day = cast(func.timezone(zone, signatures.c.confirmed_at), Date).label("day")
        rows = conn.execute(
            select(day, partner, func.count()).where(where).group_by(day, partner)
        ).all()
        return [(row[0], row[1], int(row[2])) for row in rows]
    tz = ZoneInfo(zone)
    counted: dict[tuple[date, str | None], int] = {}
    for at, org in conn.execute(select(signatures.c.confirmed_at, partner).where(where)):
        key = (aware(at).astimezone(tz).date(), org)
        counted[key] = counted.get(key, 0) + 1
    return [(day, org, n) for (day, org), n in counted.items()]
