"""The campaigns database: organizations, key labels, campaigns, partners, alerts, idempotency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    or_,
    select,
    update,
)

from shared.auth import api_keys_table
from shared.db import Moment
from shared.idempotency import idempotency_table
from shared.outbox import shared_tables

metadata = MetaData()
outbox_table, processed_table = shared_tables(metadata)
api_keys = api_keys_table(metadata)

organizations = Table(
    "organizations",
    metadata,
    Column("organization_id", String(64), primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("communities", JSON, nullable=False),
    Column("contact_email", String(320)),
    Column("postal_address", Text),
    Column("source_code", String(64), nullable=False, unique=True),
    Column("created_at", Moment(), nullable=False),
    Column("updated_at", Moment(), nullable=False),
)

# What campaigns knows about a key beyond the shared projection: a label and who issued it.
api_key_labels = Table(
    "api_key_labels",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("name", String(200)),
    Column("issued_by", String(64)),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column(
        "lead_organization_id",
        String(64),
        ForeignKey("organizations.organization_id"),
        nullable=False,
        index=True,
    ),
    Column("status", String(16), nullable=False),
    Column("default_locale", String(35), nullable=False),
    Column("titles", JSON, nullable=False),
    Column("descriptions", JSON, nullable=False),
    Column("communities", JSON, nullable=False),
    # Bumped by every change that stages events, so those transactions serialize per campaign.
    Column("version", Integer, nullable=False),
    Column("created_at", Moment(), nullable=False),
    Column("updated_at", Moment(), nullable=False),
    Column("launched_at", Moment()),
    Column("closed_at", Moment()),
)

campaign_partners = Table(
    "campaign_partners",
    metadata,
    Column("campaign_id", String(64), ForeignKey("campaigns.campaign_id"), primary_key=True),
    Column(
        "organization_id",
        String(64),
        ForeignKey("organizations.organization_id"),
        primary_key=True,
        index=True,
    ),
    # invited | joined | declined | withdrawn | removed | left
    Column("status", String(16), nullable=False),
    Column("invited_at", Moment(), nullable=False),
    Column("responded_at", Moment()),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column(
        "campaign_id", String(64), ForeignKey("campaigns.campaign_id"), nullable=False, index=True
    ),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("channels", JSON, nullable=False),
    Column("default_locale", String(35), nullable=False),
    Column("content", JSON, nullable=False),
    Column("audience", JSON, nullable=False),
    Column("send_at", Moment()),
    Column("created_at", Moment(), nullable=False),
    Column("updated_at", Moment(), nullable=False),
    Column("scheduled_at", Moment()),
    Column("published_at", Moment()),
    Column("cancelled_at", Moment()),
    Column("cancel_reason", Text),  # set when publishing found the alert no longer sendable
    Column("progress_total", Integer, nullable=False, default=0),
    Column("progress_queued", Integer, nullable=False, default=0),
    Column("progress_sent", Integer, nullable=False, default=0),
    Column("progress_delivered", Integer, nullable=False, default=0),
    Column("progress_failed", Integer, nullable=False, default=0),
    Column("progress_suppressed", Integer, nullable=False, default=0),
    Column("progress_deferred", Integer, nullable=False, default=0, server_default="0"),
    Column("progress_at", Moment()),
    # Notifications' word on it: sending, done or cancelled (None before its first report).
    Column("progress_status", String(12)),
    Index("ix_alerts_due", "status", "send_at"),
)

idempotency_keys = idempotency_table(metadata)

PROGRESS_FIELDS = ("total", "queued", "sent", "delivered", "failed", "suppressed", "deferred")


def page_of(conn: Connection, query: Any, page: int, per_page: int) -> tuple[list[Any], int]:
    """Return one page of a select and the total number of its rows."""
    total = conn.execute(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = conn.execute(query.limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), int(total.scalar_one())


# -- organizations -----------------------------------------------------------------------------


def insert_organization(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(insert(organizations).values(**row))


def organization(conn: Connection, ref: str) -> Any:
    """Return an organization by id or slug."""
    query = select(organizations).where(
        or_(organizations.c.organization_id == ref, organizations.c.slug == ref)
    )
    return conn.execute(query).first()


def lock_organization(conn: Connection, ref: str) -> Any:
    """Take an organization's row lock and return the row (by id or slug), or None.

    Events keyed by an organization (its updates, its keys) are staged under this lock, so
    their transactions commit one after another and the events keep their order.
    """
    result = conn.execute(
        update(organizations)
        .where(or_(organizations.c.organization_id == ref, organizations.c.slug == ref))
        .values(slug=organizations.c.slug)
        .returning(*organizations.c)
    )
    return result.first()


def organizations_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, Any]:
    if not ids:
        return {}
    rows = conn.execute(select(organizations).where(organizations.c.organization_id.in_(ids)))
    return {row.organization_id: row for row in rows}


def taken(conn: Connection, column: str, value: str, except_id: str | None = None) -> bool:
    """Return True when another organization already uses value in a unique column."""
    col = organizations.c[column]
    query = select(organizations.c.organization_id).where(col == value)
    if except_id:
        query = query.where(organizations.c.organization_id != except_id)
    return conn.execute(query).first() is not None


def update_organization(conn: Connection, organization_id: str, changes: Mapping[str, Any]) -> None:
    conn.execute(
        update(organizations)
        .where(organizations.c.organization_id == organization_id)
        .values(**changes)
    )


def organizations_query(slug: str | None = None) -> Any:
    query = select(organizations).order_by(organizations.c.slug)
    if slug:
        query = query.where(organizations.c.slug == slug)
    return query


# -- API keys ----------------------------------------------------------------------------------


def keys_query(organization_id: str | None, include_revoked: bool) -> Any:
    query = (
        select(api_keys, api_key_labels.c.name, api_key_labels.c.issued_by)
        .select_from(
            api_keys.outerjoin(api_key_labels, api_key_labels.c.key_id == api_keys.c.key_id)
        )
        .order_by(api_keys.c.issued_at, api_keys.c.key_id)
    )
    if organization_id:
        query = query.where(api_keys.c.organization_id == organization_id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    return query


def key(conn: Connection, key_id: str, lock: str | None = None) -> Any:
    """Return a key (with its label), or None. lock "share" or "update": hold its row so a
    revocation and an issue by that key commit one after the other (PostgreSQL)."""
    query = keys_query(None, True).where(api_keys.c.key_id == key_id)
    return conn.execute(_locked(query, lock)).first()


def keys_issued_by(conn: Connection, key_ids: Sequence[str], lock: bool = False) -> list[Any]:
    """Return the keys still active that one of key_ids issued; lock: hold their rows (an
    issue by one of them waits for the revocation, which then finds the key it made)."""
    query = keys_query(None, False).where(api_key_labels.c.issued_by.in_(key_ids))
    return list(conn.execute(_locked(query, "update" if lock else None)))


def _locked(query: Any, lock: str | None) -> Any:
    if lock is None:
        return query
    return query.with_for_update(of=api_keys, read=lock == "share")


# -- campaigns ---------------------------------------------------------------------------------


def lock_campaign(conn: Connection, campaign_id: str, skip_locked: bool = False) -> Any:
    """Take the campaign's row lock (bumping its version) and return the row, or None.

    Every transaction that stages events keyed by a campaign goes through here first, so those
    transactions commit one after another and the campaign's events keep their order. The
    UPDATE takes SQLite's write lock at once too, instead of failing a read-then-write upgrade.
    With skip_locked (PostgreSQL), a row another transaction holds is skipped: None.
    """
    if skip_locked and conn.dialect.name == "postgresql":
        held = conn.execute(
            select(campaigns.c.campaign_id)
            .where(campaigns.c.campaign_id == campaign_id)
            .with_for_update(skip_locked=True)
        ).first()
        if held is None:
            return None
    result = conn.execute(
        update(campaigns)
        .where(campaigns.c.campaign_id == campaign_id)
        .values(version=campaigns.c.version + 1)
        .returning(*campaigns.c)
    )
    return result.first()


def campaign(conn: Connection, campaign_id: str) -> Any:
    return conn.execute(select(campaigns).where(campaigns.c.campaign_id == campaign_id)).first()


def insert_campaign(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(insert(campaigns).values(version=0, **row))


def update_campaign(conn: Connection, campaign_id: str, changes: Mapping[str, Any]) -> None:
    conn.execute(update(campaigns).where(campaigns.c.campaign_id == campaign_id).values(**changes))


def partners(conn: Connection, campaign_id: str) -> list[Any]:
    query = (
        select(
            campaign_partners,
            organizations.c.slug,
            organizations.c.name,
            organizations.c.communities,
        )
        .join(organizations, organizations.c.organization_id == campaign_partners.c.organization_id)
        .where(campaign_partners.c.campaign_id == campaign_id)
        .order_by(campaign_partners.c.invited_at, organizations.c.slug)
    )
    return list(conn.execute(query).all())


def partners_of(conn: Connection, campaign_ids: Sequence[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {cid: [] for cid in campaign_ids}
    if not campaign_ids:
        return found
    query = (
        select(
            campaign_partners,
            organizations.c.slug,
            organizations.c.name,
            organizations.c.communities,
        )
        .join(organizations, organizations.c.organization_id == campaign_partners.c.organization_id)
        .where(campaign_partners.c.campaign_id.in_(campaign_ids))
        .order_by(campaign_partners.c.invited_at, organizations.c.slug)
    )
    for row in conn.execute(query):
        found[row.campaign_id].append(row)
    return found


def upsert_invitation(
    conn: Connection, campaign_id: str, organization_id: str, at: datetime, exists: bool
) -> None:
    values = {"status": "invited", "invited_at": at, "responded_at": None}
    if exists:
        conn.execute(
            update(campaign_partners)
            .where(
                campaign_partners.c.campaign_id == campaign_id,
                campaign_partners.c.organization_id == organization_id,
            )
            .values(**values)
        )
    else:
        conn.execute(
            insert(campaign_partners).values(
                campaign_id=campaign_id, organization_id=organization_id, **values
            )
        )


def set_partner_status(
    conn: Connection, campaign_id: str, organization_id: str, status: str, at: datetime
) -> None:
    conn.execute(
        update(campaign_partners)
        .where(
            campaign_partners.c.campaign_id == campaign_id,
            campaign_partners.c.organization_id == organization_id,
        )
        .values(status=status, responded_at=at)
    )


def campaigns_query(organization_id: str | None, status: str | None) -> Any:
    """Select campaigns visible to an organization (all when None), newest first."""
    query = select(campaigns).order_by(campaigns.c.created_at.desc(), campaigns.c.campaign_id)
    if organization_id:
        member = select(campaign_partners.c.campaign_id).where(
            campaign_partners.c.organization_id == organization_id,
            campaign_partners.c.status.in_(("invited", "joined")),
        )
        query = query.where(
            or_(
                campaigns.c.lead_organization_id == organization_id,
                campaigns.c.campaign_id.in_(member),
            )
        )
    if status:
        query = query.where(campaigns.c.status == status)
    return query


# -- alerts ------------------------------------------------------------------------------------


def insert_alert(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(insert(alerts).values(**row))


def alert(conn: Connection, alert_id: str) -> Any:
    return conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()


def update_alert(conn: Connection, alert_id: str, changes: Mapping[str, Any]) -> None:
    conn.execute(update(alerts).where(alerts.c.alert_id == alert_id).values(**changes))


def alerts_query(campaign_id: str, status: str | None) -> Any:
    query = (
        select(alerts)
        .where(alerts.c.campaign_id == campaign_id)
        .order_by(alerts.c.created_at.desc(), alerts.c.alert_id)
    )
    if status:
        query = query.where(alerts.c.status == status)
    return query


def claim_alert(conn: Connection, alert_id: str, now: datetime) -> bool:
    """Flip a due scheduled alert to published; True only for the one caller that flipped it.

    The status condition makes this a compare-and-set: a second worker (or a cancel) that got
    there first leaves nothing to update, on PostgreSQL and SQLite alike.
    """
    result = conn.execute(
        update(alerts)
        .where(
            alerts.c.alert_id == alert_id,
            alerts.c.status == "scheduled",
            alerts.c.send_at <= now,
        )
        .values(status="published", published_at=now, updated_at=now)
    )
    return result.rowcount == 1


def due_alerts(conn: Connection, now: datetime, limit: int) -> list[Any]:
    query = (
        select(alerts.c.alert_id, alerts.c.campaign_id)
        .where(alerts.c.status == "scheduled", alerts.c.send_at <= now)
        .order_by(alerts.c.send_at)
        .limit(limit)
    )
    return list(conn.execute(query).all())


def record_progress(
    conn: Connection, alert_id: str, counts: Mapping[str, int], status: str | None, at: datetime
) -> bool:
    """Keep the newest progress report of an alert; an older one arriving late changes nothing."""
    values: dict[str, Any] = {f"progress_{name}": counts[name] for name in PROGRESS_FIELDS}
    values["progress_at"] = at
    values["progress_status"] = status
    result = conn.execute(
        update(alerts)
        .where(
            alerts.c.alert_id == alert_id,
            or_(alerts.c.progress_at.is_(None), alerts.c.progress_at <= at),
        )
        .values(**values)
    )
    return result.rowcount == 1
