"""Use cases of the endpoints API: register, change, rotate, test, replay and recover."""

from __future__ import annotations

import secrets as random_tokens
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, func, select, update

from services.notifications.audience import removed_partners
from services.notifications.store import insert_ignore, organizations
from services.notifications.webhooks import domain, signing
from services.notifications.webhooks.config import WebhookConfig
from services.notifications.webhooks.handlers import enqueue, finish_removing, message_id
from services.notifications.webhooks.store import endpoints, messages, removed_endpoints
from services.notifications.webhooks.transport import check_destination
from shared.auth import Principal, authorize
from shared.errors import Conflict, FieldError, NotFound

MANAGERS = ("partner", "organizer")


@dataclass(frozen=True)
class Context:
    """What the use cases need: the database, the rules' settings and the time."""

    engine: Engine
    config: WebhookConfig
    production: bool
    now: datetime


def _check_url(ctx: Context, url: str) -> None:
    try:
        check_destination(
            url,
            domain.parse_networks(ctx.config.allowed_networks),
            ctx.config.https_required(ctx.production),
        )
    except domain.UnsafeUrl as exc:
        raise FieldError("url", f"The URL {exc}") from exc


def owned(conn: Connection, principal: Principal, endpoint_id: str, lock: bool = False) -> Any:
    """Return an endpoint the caller may manage; another organization's is simply not found.
    lock: hold its row until the transaction ends (PostgreSQL)."""
    query = select(endpoints).where(endpoints.c.endpoint_id == endpoint_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None or not (principal.is_admin or row.organization_id == principal.organization_id):
        raise NotFound("No such webhook endpoint")
    authorize(principal, [row.organization_id], MANAGERS, "manage webhook endpoints")
    return row


def owner_of_new(principal: Principal, requested: str | None) -> str:
    """Return the organization a new endpoint belongs to."""
    if principal.is_admin:
        if not requested:
            raise FieldError("organization_id", "An admin key must name the organization")
        return requested
    authorize(principal, [principal.organization_id], MANAGERS, "manage webhook endpoints")
    if requested and requested != principal.organization_id:
        raise FieldError("organization_id", "A key manages only its own organization's endpoints")
    return principal.organization_id


def create(ctx: Context, principal: Principal, data: Mapping[str, Any]) -> Any:
    """Register an endpoint with a fresh secret; return its row."""
    org = owner_of_new(principal, data.get("organization_id"))
    _check_url(ctx, data["url"])
    row = {
        "endpoint_id": "ep_" + random_tokens.token_hex(12),
        "organization_id": org,
        "url": data["url"],
        "description": data.get("description") or "",
        "event_types": sorted(set(data.get("event_types") or [])),
        "enabled": bool(data.get("enabled", True)),
        "disabled_reason": None if data.get("enabled", True) else "partner",
        "disabled_at": None if data.get("enabled", True) else ctx.now,
        "secret": signing.new_secret(),
        "created_at": ctx.now,
        "updated_at": ctx.now,
    }
    with ctx.engine.begin() as conn:
        if (
            principal.is_admin
            and not conn.execute(
                select(organizations.c.organization_id).where(
                    organizations.c.organization_id == org
                )
            ).first()
        ):
            # A typo would register an endpoint no event ever reaches, silently.
            raise FieldError(
                "organization_id",
                "No such organization here (one created a moment ago is known within seconds)",
            )
        conn.execute(endpoints.insert().values(**row))
        return conn.execute(
            select(endpoints).where(endpoints.c.endpoint_id == row["endpoint_id"])
        ).one()


def change(ctx: Context, principal: Principal, endpoint_id: str, data: Mapping[str, Any]) -> Any:
    """Change an endpoint's URL, description, filter or enabled flag."""
    if "url" in data:
        _check_url(ctx, data["url"])
    with ctx.engine.begin() as conn:
        row = owned(conn, principal, endpoint_id)
        values: dict[str, Any] = {"updated_at": ctx.now}
        for key in ("url", "description"):
            if key in data:
                values[key] = data[key]
        if "event_types" in data:
            values["event_types"] = sorted(set(data["event_types"] or []))
        if "enabled" in data and bool(data["enabled"]) != row.enabled:
            if data["enabled"]:
                # A fresh start: the failure clock restarts and nobody needs telling any more.
                values.update(
                    enabled=True, disabled_reason=None, disabled_at=None, failing_since=None,
                    notice=None,
                )  # fmt: skip
            else:
                values.update(enabled=False, disabled_reason="partner", disabled_at=ctx.now)
        conn.execute(
            update(endpoints).where(endpoints.c.endpoint_id == endpoint_id).values(**values)
        )
        if values.get("enabled"):
            # Deletions it holds go first thing (a 410 left one waiting for a later try, and
            # one written off before deletions were kept for good goes too).
            conn.execute(
                update(messages)
                .where(
                    messages.c.endpoint_id == endpoint_id,
                    messages.c.event_type.in_(domain.HELD),
                    messages.c.status.in_(("pending", "failed")),
                )
                .values(
                    status="pending",
                    next_attempt_at=case(
                        (messages.c.next_attempt_at < ctx.now, messages.c.next_attempt_at),
                        else_=ctx.now,
                    ),
                    finished_at=None,
                )
            )
        return conn.execute(select(endpoints).where(endpoints.c.endpoint_id == endpoint_id)).one()


def remove(ctx: Context, principal: Principal, endpoint_id: str) -> None:
    """Delete an endpoint, its waiting messages and its attempt log; the deletions it holds
    go to its organization's other endpoints (409 if it has none)."""
    with ctx.engine.begin() as conn:
        _hand_on_deletions(conn, owned(conn, principal, endpoint_id), ctx.now)
        conn.execute(delete(endpoints).where(endpoints.c.endpoint_id == endpoint_id))
        conn.execute(removed_endpoints.insert().values(endpoint_id=endpoint_id, removed_at=ctx.now))
    # Then its messages and their attempts, a batch at a time (none is claimed any more: the
    # dispatcher claims for endpoints that exist). Cut short, the dispatcher's purge finishes.
    finish_removing(ctx.engine, endpoint_id)


def _hand_on_deletions(conn: Connection, endpoint: Any, now: datetime) -> None:
    """Give the deletions an endpoint still holds (not yet delivered) to its organization's
    other endpoints: the partner keeps the details whichever endpoint it reads. With no other
    endpoint to take them, the endpoint cannot go (a 409 saying why)."""
    waiting = conn.execute(
        select(messages).where(
            messages.c.endpoint_id == endpoint.endpoint_id,
            messages.c.event_type.in_(domain.HELD),
            messages.c.status != "succeeded",
        )
    ).all()
    if not waiting:
        return
    others = (
        conn.execute(
            select(endpoints.c.endpoint_id).where(
                endpoints.c.organization_id == endpoint.organization_id,
                endpoints.c.endpoint_id != endpoint.endpoint_id,
            )
        )
        .scalars()
        .all()
    )
    if not others:
        raise Conflict(
            f"This endpoint holds {len(waiting)} deletion notice(s) for people whose details"
            " your organization was sent: turn it on to deliver them, or register another"
            " endpoint first (they move to it when this one is deleted)"
        )
    handed = [
        {
            **row._asdict(),
            "message_id": message_id(other, row.event_id),
            "endpoint_id": other,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": min(row.next_attempt_at or now, now),
            "claimed_at": None,
            "finished_at": None,
            "last_status_code": None,
            "trigger": "scheduled",
        }
        for other in others
        for row in waiting
    ]
    conn.execute(insert_ignore(conn, messages), handed)


def rotate(ctx: Context, principal: Principal, endpoint_id: str) -> Any:
    """Issue a new secret; the old one keeps signing alongside it for the overlap period, as
    do the ones rotated out before it whose overlap has not ended (a partner that has not yet
    deployed the first new secret when the second rotation comes still verifies)."""
    with ctx.engine.begin() as conn:
        # Locked: two rotations at once would each keep the same old secret, and the first's
        # new secret, already handed to its caller, would never sign.
        row = owned(conn, principal, endpoint_id, lock=True)
        until = ctx.now + timedelta(seconds=ctx.config.rotation_overlap_seconds)
        old = signing.rotated_out(row.previous_secrets, row.secret, ctx.now, until)
        conn.execute(
            update(endpoints)
            .where(endpoints.c.endpoint_id == endpoint_id)
            .values(
                secret=signing.new_secret(),
                previous_secrets=old,
                previous_secret=row.secret,
                previous_secret_expires_at=until,
                updated_at=ctx.now,
            )
        )
        return conn.execute(select(endpoints).where(endpoints.c.endpoint_id == endpoint_id)).one()


def _require_enabled(row: Any) -> None:
    if not row.enabled:
        raise Conflict("The endpoint is disabled; enable it first")


def test_send(ctx: Context, principal: Principal, endpoint_id: str) -> str:
    """Queue a webhook.test message to one endpoint; return its message id."""
    event_id = "test_" + uuid.uuid4().hex
    with ctx.engine.begin() as conn:
        row = owned(conn, principal, endpoint_id)
        _require_enabled(row)
        data = {"endpoint_id": endpoint_id, "message": "A test message from Kinship."}
        front = _front(conn, endpoint_id, ctx.now)
        enqueue(
            conn, domain.TEST_EVENT_TYPE, event_id, ctx.now, data, [row.organization_id],
            ctx.now, only_endpoints={endpoint_id}, trigger="test",
        )  # fmt: skip
        this = (messages.c.endpoint_id == endpoint_id) & (messages.c.event_id == event_id)
        conn.execute(update(messages).where(this).values(next_attempt_at=front))
        return str(conn.execute(select(messages.c.message_id).where(this)).scalar_one())


def _front(conn: Connection, endpoint_id: str, now: datetime) -> datetime:
    """When a message must be due to go before everything waiting for an endpoint: a test
    send or a replay is someone at the endpoint's side waiting for it, and a failing endpoint
    takes one message a round, oldest due first (its backlog took hours)."""
    first = conn.execute(
        select(func.min(messages.c.next_attempt_at)).where(
            messages.c.endpoint_id == endpoint_id, messages.c.status == "pending"
        )
    ).scalar()
    return now if first is None or first > now else first - timedelta(milliseconds=1)


def _resend(conn: Connection, where: list[Any], trigger: str, now: datetime) -> int:
    result = conn.execute(
        update(messages)
        .where(*where)
        .values(
            status="pending", attempts=0, next_attempt_at=now, trigger=trigger, claimed_at=None,
            finished_at=None,
        )
    )  # fmt: skip
    return int(result.rowcount or 0)


def replay(ctx: Context, principal: Principal, endpoint_id: str, message_id: str) -> Any:
    """Send one message again now (with its same webhook-id), whatever its state."""
    with ctx.engine.begin() as conn:
        _require_enabled(owned(conn, principal, endpoint_id))
        where = [messages.c.message_id == message_id, messages.c.endpoint_id == endpoint_id]
        found = conn.execute(
            select(
                messages.c.supporter_id, messages.c.campaign_id, messages.c.organization_id
            ).where(*where)
        ).first()
        if not found:
            raise NotFound("No such message for this endpoint")
        if found.supporter_id is not None and found.organization_id in (
            removed_partners(conn, str(found.campaign_id)) or set()
        ):
            raise Conflict(
                "This organization was taken out of the campaign: its signers' details are"
                " no longer sent to it",
                {"message_id": ["partner_removed"]},
            )
        # A message being delivered right now finishes first; replaying it again is a no-op.
        front = _front(conn, endpoint_id, ctx.now)
        _resend(conn, [*where, messages.c.status != "delivering"], "replay", front)
        return conn.execute(select(messages).where(*where)).one()


def recover(
    ctx: Context, principal: Principal, endpoint_id: str, since: datetime, until: datetime | None
) -> int:
    """Resend every failed message created since a time; return how many."""
    if since > ctx.now:
        raise FieldError("since", "Must not be in the future")
    with ctx.engine.begin() as conn:
        _require_enabled(owned(conn, principal, endpoint_id))
        where = [
            messages.c.endpoint_id == endpoint_id,
            messages.c.status == "failed",
            messages.c.created_at >= since,
        ]
        if until is not None:
            where.append(messages.c.created_at <= until)
        return _resend(conn, where, "recover", ctx.now)


def page(
    conn: Connection, query: Any, order: list[Any], number: int, per_page: int
) -> tuple[list[Any], int]:
    """Return one page of a query's rows and the total count."""
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(*order).limit(per_page).offset((number - 1) * per_page))
    return list(rows), int(total)
