"""Use cases: each checks who asks, changes state and stages its events in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from services.campaigns import domain, events, store
from services.campaigns.bootstrap import Deps
from services.campaigns.schemas import CampaignIn, check_merged
from shared.auth import NewKey, Principal, generate_key, store_issued, store_revoked
from shared.errors import Conflict, FieldError, NotFound, PermissionDenied, Unauthenticated
from shared.outbox import Outbox

# -- organizations -----------------------------------------------------------------------------


def insert_organization(
    conn: Connection, outbox: Outbox, data: Mapping[str, Any], now: datetime
) -> Any:
    """Create an organization and stage organization.created (used by the API and the CLI)."""
    slug = domain.check_slug(data["slug"])
    code = domain.check_source_code(data.get("source_code") or domain.default_source_code(slug))
    if store.taken(conn, "slug", slug):
        raise _slug_taken(slug)
    if store.taken(conn, "source_code", code):
        raise _code_taken()
    row: dict[str, Any] = {
        "organization_id": str(uuid.uuid4()),
        "slug": slug,
        "name": _organization_name(data["name"]),
        "communities": domain.check_communities(data.get("communities") or []),
        "contact_email": data.get("contact_email"),
        "postal_address": data.get("postal_address"),
        "source_code": code,
        "created_at": now,
        "updated_at": now,
    }
    with _unique_or_refused(slug):
        store.insert_organization(conn, row)
    created = store.organization(conn, row["organization_id"])
    outbox.add(conn, events.organization("created", created, now))
    return created


def _slug_taken(slug: str) -> Conflict:
    return Conflict(f"The slug {slug!r} is taken", {"slug": ["Another organization uses it."]})


def _organization_name(name: str) -> str:
    """An organization's name as stored (trimmed); a blank one is refused, naming the field:
    alerts print it, and an empty sender name falls back to the platform's."""
    name = name.strip()
    if not name:
        raise FieldError("name", "Give the organization a name.")
    return name


def _code_taken() -> FieldError:
    return FieldError("source_code", "Another organization uses this source code.")


@contextmanager
def _unique_or_refused(slug: str) -> Iterator[None]:
    """Turn a unique slug or source code taken by a concurrent request (after our check, before
    our write) into the same 409 / 422 the check gives, instead of a 500."""
    try:
        yield
    except IntegrityError as exc:
        problem = str(exc.orig)
        if "source_code" in problem:  # slugs hold no '_', so this names the column
            raise _code_taken() from None
        if "slug" in problem:
            raise _slug_taken(slug) from None
        raise


def create_organization(deps: Deps, principal: Principal, data: Mapping[str, Any]) -> Any:
    domain.require_admin(principal, "create organizations")
    with deps.engine.begin() as conn:
        return insert_organization(conn, deps.outbox, data, deps.clock())


def get_organization(deps: Deps, ref: str) -> Any:
    with deps.engine.connect() as conn:
        return _organization(conn, ref)


def _organization(conn: Connection, ref: str, field: str | None = None, lock: bool = False) -> Any:
    row = store.lock_organization(conn, ref) if lock else store.organization(conn, ref)
    if row is None:
        if field:
            raise FieldError(field, f"No organization {ref!r}.")
        raise NotFound("No such organization")
    return row


def update_organization(
    deps: Deps, principal: Principal, ref: str, changes: Mapping[str, Any]
) -> Any:
    now = deps.clock()
    with deps.engine.begin() as conn:
        row = _organization(conn, ref, lock=True)
        domain.may_manage_organization(principal, row.organization_id)
        values = dict(changes)
        if "slug" in values:
            domain.check_slug(values["slug"])
            if store.taken(conn, "slug", values["slug"], row.organization_id):
                raise _slug_taken(values["slug"])
        if "source_code" in values:
            domain.check_source_code(values["source_code"])
            if store.taken(conn, "source_code", values["source_code"], row.organization_id):
                raise _code_taken()
        if "communities" in values:
            values["communities"] = domain.check_communities(values["communities"])
        if "name" in values:
            values["name"] = _organization_name(values["name"])
        if not values:
            return row
        with _unique_or_refused(values.get("slug", row.slug)):
            store.update_organization(conn, row.organization_id, {**values, "updated_at": now})
        updated = store.organization(conn, row.organization_id)
        deps.outbox.add(conn, events.organization("updated", updated, now))
        return updated


def list_organizations(
    deps: Deps, slug: str | None, page: int, per_page: int
) -> tuple[list[Any], int]:
    with deps.engine.connect() as conn:
        return store.page_of(conn, store.organizations_query(slug), page, per_page)


# -- API keys ----------------------------------------------------------------------------------


def insert_key(
    conn: Connection,
    outbox: Outbox,
    organization_id: str,
    role: str,
    name: str | None,
    issued_by: str | None,
    now: datetime,
) -> NewKey:
    """Issue a key: keep its hash, stage apikey.issued so every service learns it."""
    new = generate_key(role)
    record = {
        "key_id": new.key_id,
        "prefix": new.prefix,
        "key_hash": new.key_hash,
        "role": role,
        "organization_id": organization_id,
        "at": now,
    }
    store_issued(conn, store.api_keys, record)
    conn.execute(
        store.api_key_labels.insert().values(key_id=new.key_id, name=name, issued_by=issued_by)
    )
    outbox.add(
        conn, events.key_issued(new.key_id, new.prefix, new.key_hash, role, organization_id, now)
    )
    return new


def issue_key(
    deps: Deps, principal: Principal, organization_ref: str, role: str, name: str | None
) -> tuple[NewKey, Any]:
    now = deps.clock()
    with deps.engine.begin() as conn:
        # The issuing key as now stored, held until this commits: the verifier's cache may
        # still admit a key revoked a moment ago, and a revocation of it with the keys it
        # issued, running now, would not find this one. Held before the organization's lock,
        # as a revocation holds the keys before it takes their organizations' (the other
        # order deadlocked), and read again under it (SQLite's write lock comes with that).
        _active_issuer(conn, principal, lock="share")
        org = _organization(conn, organization_ref, field="organization", lock=True)
        domain.may_issue_key(principal, org.organization_id, role)
        _active_issuer(conn, principal)
        new = insert_key(conn, deps.outbox, org.organization_id, role, name, principal.key_id, now)
        return new, store.key(conn, new.key_id)


def _active_issuer(conn: Connection, principal: Principal, lock: str | None = None) -> None:
    issuer = store.key(conn, principal.key_id, lock=lock)
    if issuer is None or issuer.revoked_at is not None:
        raise Unauthenticated("The API key is unknown or revoked")


def mark_revoked(conn: Connection, outbox: Outbox, row: Any, now: datetime) -> None:
    """Revoke a key here and stage apikey.revoked so every service refuses it (idempotent)."""
    if row.revoked_at is not None:
        return
    store.lock_organization(conn, row.organization_id)
    store_revoked(conn, store.api_keys, row.key_id, now)
    outbox.add(conn, events.key_revoked(row.key_id, row.organization_id, now))


def revoke_key(
    deps: Deps, principal: Principal, key_id: str, with_issued: bool = False
) -> list[str]:
    """Revoke a key; with_issued, every key still active it issued too, and theirs in turn (a
    stolen key's first act may be to mint another). All or none: a 403 for any of them revokes
    nothing. Return the ids revoked."""
    now = deps.clock()
    with deps.engine.begin() as conn:
        # No key may be issued by one of these while they are collected. On PostgreSQL the
        # key rows' locks do it: an issue by one of them holds it (share) first, and is found
        # by the next look once it commits; both take keys before organizations. SQLite has
        # no row locks: its write lock is taken first, as issue_key's organization lock does.
        if conn.dialect.name == "sqlite":
            store.lock_organization(conn, principal.organization_id or "")
        row = store.key(conn, key_id, lock="update")
        if row is None:
            raise NotFound("No such key")
        rows, frontier = [row], [row.key_id]
        while with_issued and frontier:
            issued = [r for r in store.keys_issued_by(conn, frontier, lock=True) if r not in rows]
            rows += issued
            frontier = [r.key_id for r in issued]
        for each in rows:
            if each.role == "admin" and not principal.is_admin:
                raise PermissionDenied("Only a platform admin key can revoke admin keys")
            domain.may_issue_key(principal, each.organization_id, "organizer")
        # The organizations in one order: two revocations whose keys span the same ones the
        # other way round would deadlock.
        for organization_id in sorted({each.organization_id for each in rows}):
            store.lock_organization(conn, organization_id)
        for each in rows:
            mark_revoked(conn, deps.outbox, each, now)
        return [each.key_id for each in rows if each.revoked_at is None]


def list_keys(
    deps: Deps,
    principal: Principal,
    organization_ref: str | None,
    include_revoked: bool,
    page: int,
    per_page: int,
) -> tuple[list[Any], int]:
    with deps.engine.connect() as conn:
        org_id = None
        if organization_ref:
            org_id = _organization(conn, organization_ref, field="organization").organization_id
        if not principal.is_admin:
            org_id = org_id or principal.organization_id
            domain.may_issue_key(principal, org_id, "organizer")
        query = store.keys_query(org_id, include_revoked)
        return store.page_of(conn, query, page, per_page)


def own_key(deps: Deps, principal: Principal) -> Any:
    with deps.engine.connect() as conn:
        return store.key(conn, principal.key_id)


# -- campaigns ---------------------------------------------------------------------------------


def access_of(row: Any, partner_rows: list[Any]) -> domain.CampaignAccess:
    return domain.CampaignAccess(
        lead_organization_id=row.lead_organization_id,
        joined=frozenset(p.organization_id for p in partner_rows if p.status == "joined"),
        invited=frozenset(p.organization_id for p in partner_rows if p.status == "invited"),
    )


def joined_ids(partner_rows: list[Any]) -> list[str]:
    return [p.organization_id for p in partner_rows if p.status == "joined"]


def campaign_view(row: Any, partner_rows: list[Any]) -> dict[str, Any]:
    view = dict(row._mapping)
    view.pop("version", None)
    view["partner_organization_ids"] = joined_ids(partner_rows)
    view["partners"] = [dict(p._mapping) for p in partner_rows]
    return view


def load_campaign(conn: Connection, campaign_id: str, lock: bool = False) -> tuple[Any, list[Any]]:
    row = store.lock_campaign(conn, campaign_id) if lock else store.campaign(conn, campaign_id)
    if row is None:
        raise NotFound("No such campaign")
    return row, store.partners(conn, campaign_id)


def create_campaign(deps: Deps, principal: Principal, data: Mapping[str, Any]) -> dict[str, Any]:
    now = deps.clock()
    with deps.engine.begin() as conn:
        lead_ref = data.get("lead_organization") or principal.organization_id
        lead = _organization(conn, lead_ref, field="lead_organization")
        domain.may_create_campaign_for(principal, lead.organization_id)
        titles, descriptions = data["titles"], data.get("descriptions") or {}
        domain.check_titles(titles, descriptions, data["default_locale"])
        campaign_id = str(uuid.uuid4())
        store.insert_campaign(
            conn,
            {
                "campaign_id": campaign_id,
                "lead_organization_id": lead.organization_id,
                "status": "draft",
                "default_locale": data["default_locale"],
                "titles": titles,
                "descriptions": descriptions,
                "communities": domain.check_communities(data.get("communities") or []),
                "created_at": now,
                "updated_at": now,
            },
        )
        row, partner_rows = load_campaign(conn, campaign_id, lock=True)
        deps.outbox.add(conn, events.campaign("created", row, [], now))
        return campaign_view(row, partner_rows)


def get_campaign(deps: Deps, principal: Principal, campaign_id: str) -> dict[str, Any]:
    with deps.engine.connect() as conn:
        row, partner_rows = load_campaign(conn, campaign_id)
    domain.may_read_campaign(principal, access_of(row, partner_rows))
    return campaign_view(row, partner_rows)


def list_campaigns(
    deps: Deps, principal: Principal, status: str | None, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    query = store.campaigns_query(domain.visible_organization(principal), status)
    with deps.engine.connect() as conn:
        rows, total = store.page_of(conn, query, page, per_page)
        partner_map = store.partners_of(conn, [row.campaign_id for row in rows])
    return [campaign_view(row, partner_map[row.campaign_id]) for row in rows], total


def update_campaign(
    deps: Deps, principal: Principal, campaign_id: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    now = deps.clock()
    with deps.engine.begin() as conn:
        row, partner_rows = load_campaign(conn, campaign_id, lock=True)
        domain.may_manage_campaign(principal, access_of(row, partner_rows))
        domain.require_open_campaign(row.status, "be changed")
        values = dict(changes)
        for name in ("titles", "descriptions"):
            if name in values:
                values[name] = domain.merge_patch(getattr(row, name) or {}, values[name])
                check_merged(CampaignIn, name, values[name])
        domain.check_titles(
            values.get("titles", row.titles),
            values.get("descriptions", row.descriptions),
            values.get("default_locale", row.default_locale),
        )
        if "communities" in values:
            values["communities"] = domain.check_communities(values["communities"])
        store.update_campaign(conn, campaign_id, {**values, "updated_at": now})
        row, partner_rows = load_campaign(conn, campaign_id)
        deps.outbox.add(conn, events.campaign("updated", row, joined_ids(partner_rows), now))
        return campaign_view(row, partner_rows)


def move_campaign(
    deps: Deps, principal: Principal, campaign_id: str, action: str
) -> dict[str, Any]:
    """Launch (draft to active) or close (active to closed) a campaign."""
    now = deps.clock()
    with deps.engine.begin() as conn:
        row, partner_rows = load_campaign(conn, campaign_id, lock=True)
        domain.may_manage_campaign(principal, access_of(row, partner_rows))
        status = domain.move_campaign(row.status, action)
        stamp = "launched_at" if action == "launch" else "closed_at"
        store.update_campaign(conn, campaign_id, {"status": status, stamp: now, "updated_at": now})
        if status == "closed":
            _cancel_pending_alerts(conn, deps.outbox, campaign_id, now)
        row, partner_rows = load_campaign(conn, campaign_id)
        kind = "launched" if action == "launch" else "closed"
        deps.outbox.add(conn, events.campaign(kind, row, joined_ids(partner_rows), now))
        return campaign_view(row, partner_rows)


def _cancel_pending_alerts(
    conn: Connection, outbox: Outbox, campaign_id: str, now: datetime
) -> None:
    """A closed campaign sends nothing more: cancel its drafts and scheduled alerts."""
    query = store.alerts_query(campaign_id, None).where(
        store.alerts.c.status.in_(domain.ALERT_UNSENT)
    )
    for alert in conn.execute(query).all():
        store.update_alert(
            conn, alert.alert_id, {"status": "cancelled", "cancelled_at": now, "updated_at": now}
        )
        if alert.status == "scheduled":
            outbox.add(conn, events.alert_cancelled(alert.alert_id, campaign_id, now))


def invite_partner(
    deps: Deps, principal: Principal, campaign_id: str, organization_ref: str
) -> dict[str, Any]:
    now = deps.clock()
    with deps.engine.begin() as conn:
        row, partner_rows = load_campaign(conn, campaign_id, lock=True)
        access = access_of(row, partner_rows)
        domain.may_manage_campaign(principal, access)
        domain.require_open_campaign(row.status, "invite partners")
        org = _organization(conn, organization_ref, field="organization")
        domain.check_invitation(access, org.organization_id)
        if org.organization_id in access.invited:
            return _invitation(conn, campaign_id, org.organization_id)
        exists = any(p.organization_id == org.organization_id for p in partner_rows)
        store.upsert_invitation(conn, campaign_id, org.organization_id, now, exists)
        return _invitation(conn, campaign_id, org.organization_id)


def _invitation(conn: Connection, campaign_id: str, organization_id: str) -> dict[str, Any]:
    for partner in store.partners(conn, campaign_id):
        if partner.organization_id == organization_id:
            return dict(partner._mapping)
    raise NotFound("No such invitation")


def answer_invitation(
    deps: Deps, principal: Principal, campaign_id: str, organization_ref: str, accept: bool
) -> dict[str, Any]:
    """Accept (joining the coalition, campaign.partner_joined) or decline an invitation."""
    now = deps.clock()
    with deps.engine.begin() as conn:
        row, partner_rows = load_campaign(conn, campaign_id, lock=True)
        org = _organization(conn, organization_ref)
        domain.may_answer_invitation(principal, org.organization_id)
        domain.check_answer(access_of(row, partner_rows), org.organization_id)
        domain.require_open_campaign(row.status, "take new partners")
        status = "joined" if accept else "declined"
        store.set_partner_status(conn, campaign_id, org.organization_id, status, now)
        if accept:
            deps.outbox.add(conn, events.partner_joined(campaign_id, org.organization_id, now))
        return _invitation(conn, campaign_id, org.organization_id)


def withdraw_invitation(
    deps: Deps, principal: Principal, campaign_id: str, organization_ref: str
) -> dict[str, Any]:
    """Withdraw an invitation not yet answered: the organization stops reading the campaign."""
    now = deps.clock()
    with deps.engine.begin() as conn:
        row, partner_rows = load_campaign(conn, campaign_id, lock=True)
        access = access_of(row, partner_rows)
        domain.may_manage_campaign(principal, access)
        org = _organization(conn, organization_ref)
        domain.check_answer(access, org.organization_id)
        store.set_partner_status(conn, campaign_id, org.organization_id, "withdrawn", now)
        return _invitation(conn, campaign_id, org.organization_id)


def remove_partner(
    deps: Deps, principal: Principal, campaign_id: str, organization_ref: str
) -> dict[str, Any]:
    """End a partnership: the lead removes a partner ("removed"), or the partner leaves
    ("left"). Either way it stops reading the campaign, and (campaign.partner_removed) the
    campaign's petitions, its box is no longer offered to signers and its source code no
    longer credits it. What signers already chose to share with it stays shared. It can be
    invited again."""
    now = deps.clock()
    with deps.engine.begin() as conn:
        row, partner_rows = load_campaign(conn, campaign_id, lock=True)
        access = access_of(row, partner_rows)
        org = _organization(conn, organization_ref)
        domain.may_remove_partner(principal, access, org.organization_id)
        domain.check_partner(access, org.organization_id)
        left = not principal.is_admin and principal.organization_id == org.organization_id
        status = "left" if left else "removed"
        store.set_partner_status(conn, campaign_id, org.organization_id, status, now)
        deps.outbox.add(conn, events.partner_removed(campaign_id, org.organization_id, left, now))
        return _invitation(conn, campaign_id, org.organization_id)


def list_partners(
    deps: Deps, principal: Principal, campaign_id: str, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of a campaign's partners (all of them are read anyway, to check access)."""
    with deps.engine.connect() as conn:
        row, partner_rows = load_campaign(conn, campaign_id)
    domain.may_read_campaign(principal, access_of(row, partner_rows))
    start = (page - 1) * per_page
    return [dict(p._mapping) for p in partner_rows[start : start + per_page]], len(partner_rows)
