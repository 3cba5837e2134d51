"""Petition use cases: each runs one transaction holding the change and its events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from services.petitions import domain, store
from services.petitions.bootstrap import Deps
from shared.auth import Principal
from shared.db import aware
from shared.errors import Conflict, FieldError, NotFound
from shared.events import Event
from shared.events.catalog import type_name
from shared.idempotency import request_fingerprint
from shared.locales import best_match
from shared.privacy import keyed_hash

Result = tuple[int, dict[str, Any]]


def now() -> datetime:
    return datetime.now(UTC)


def event(deps: Deps, short: str, key: str, data: Mapping[str, Any]) -> Event:
    return Event(type=type_name(short), key=key, data=data, source=deps.outbox.source)


# -- coalition ---------------------------------------------------------------------------------


def coalition_of(
    deps: Deps,
    conn: Connection | None,
    campaign_id: str,
    *,
    fresh: bool = False,
    lock: bool = False,
) -> tuple[domain.Coalition, str]:
    """Return a campaign's organizations and status; NotFound if no event told us of it.

    Without a connection one is opened only when the cache has to be filled. lock (with fresh
    and a connection): hold the campaign's row until the caller's transaction ends.
    """

    def load() -> tuple[domain.Coalition, str] | None:
        if conn is not None:
            return store.coalition(conn, campaign_id, lock=lock)
        with deps.engine.connect() as own:
            return store.coalition(own, campaign_id)

    found = load() if fresh else deps.coalitions.get(campaign_id, load)
    if found is None:
        raise NotFound(f"Campaign {campaign_id} is not known to the petitions service (yet)")
    return found


# -- idempotency -------------------------------------------------------------------------------


class _Raced(Exception):
    """Another request with the same Idempotency-Key committed first."""


class Replayed(dict[str, Any]):
    """A response body kept under an Idempotency-Key, answered again: the API adds the header
    Idempotent-Replayed: true, as the other services' replays carry."""


# Fields the loaded arguments gained with the release that fingerprints the request as sent,
# at their defaults: the arguments a key was fingerprinted from before did not have them.
_NEW_DEFAULTS = {"signer_retention_days": None}


def _legacy_fingerprint(deps: Deps, payload: Any) -> str:
    """How keys were fingerprinted before the request as sent was (of the loaded arguments):
    a retry across that deploy still replays. Drop it once a release has run for longer than
    the idempotency window (PETITIONS_IDEMPOTENCY_TTL_HOURS)."""
    before = {
        name: value
        for name, value in dict(payload).items()
        if name not in _NEW_DEFAULTS or value != _NEW_DEFAULTS[name]
    }
    text = json.dumps(before, sort_keys=True, default=str, separators=(",", ":"))
    return keyed_hash(deps.settings.hash_key, "idempotency", text)


def _replay(prior: Any, fingerprints: AbstractSet[str]) -> Result:
    if prior.request_hash not in fingerprints:
        raise FieldError("Idempotency-Key", "This key was already used for a different request")
    return int(prior.status_code), Replayed(prior.body)


MAX_IDEMPOTENCY_KEY = 200  # idempotency_keys.key


def check_idempotency_key(key: str) -> None:
    """Refuse an Idempotency-Key no record can hold (422 naming the header)."""
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or "\x00" in key:
        raise FieldError("Idempotency-Key", f"Use 1 to {MAX_IDEMPOTENCY_KEY} characters (no NUL).")


def run_idempotent(
    deps: Deps,
    scope: str,
    key: str | None,
    payload: Any,
    work: Callable[[Connection], Result],
    *,
    other_request_runs: bool = False,
) -> Result:
    """Run work in one transaction; a repeated key returns the first response, with no effect.

    A key used before for a different request is a 422, unless other_request_runs: then the
    request runs as if it came without the key (public signing, where a 422 would tell whoever
    sent someone else's address with a form's key that this person had signed with it)."""
    if key is None:
        with deps.engine.begin() as conn:
            return work(conn)
    check_idempotency_key(key)
    fingerprint = request_fingerprint(deps.settings.hash_key)
    accepted = {fingerprint, _legacy_fingerprint(deps, payload)}
    try:
        with deps.engine.begin() as conn:
            prior = store.find_idempotency_key(conn, scope, key)
            if prior is not None:
                if other_request_runs and prior.request_hash not in accepted:
                    return work(conn)
                return _replay(prior, accepted)
            status, body = work(conn)
            # The key row is unique: a concurrent twin waits here, then finds it taken.
            if not store.claim_idempotency_key(conn, scope, key, fingerprint, status, body, now()):
                raise _Raced()
            return status, body
    except _Raced:
        with deps.engine.connect() as conn:
            prior = store.find_idempotency_key(conn, scope, key)
        if other_request_runs and prior.request_hash not in accepted:
            with deps.engine.begin() as conn:
                return work(conn)
        return _replay(prior, accepted)


# -- views of a petition -----------------------------------------------------------------------


def organizer_view(petition: Any, total: int) -> dict[str, Any]:
    return {
        "petition_id": petition.petition_id,
        "campaign_id": petition.campaign_id,
        "organization_id": petition.organization_id,
        "status": petition.status,
        "default_locale": petition.default_locale,
        "texts": petition.texts,
        "targets": petition.targets,
        "goal": petition.goal,
        "double_opt_in": petition.double_opt_in,
        "public_total": petition.public_total,
        "signer_retention_days": petition.signer_retention_days,
        "signer_data_erase_at": _aware(petition.signer_data_erase_at),
        "signer_data_erased_at": _aware(petition.signer_data_erased_at),
        "total": total,
        # In UTC with its offset on SQLite too, which keeps times without one.
        "created_at": _aware(petition.created_at),
        "published_at": _aware(petition.published_at),
        "closed_at": _aware(petition.closed_at),
    }


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


def _petition(conn: Connection, petition_id: str, *, for_update: bool = False) -> Any:
    petition = store.get_petition(conn, petition_id, for_update=for_update)
    if petition is None:
        raise NotFound("No such petition")
    return petition


def _check_texts(texts: Mapping[str, Any], default_locale: str) -> None:
    if default_locale not in texts:
        raise FieldError("default_locale", "There must be a text in the default locale")


# -- organizer actions -------------------------------------------------------------------------


def create_petition(
    deps: Deps, principal: Principal, data: Mapping[str, Any], idempotency_key: str | None
) -> Result:
    """Create a draft petition in a campaign the caller's organization belongs to."""
    _check_texts(data["texts"], data["default_locale"])

    def work(conn: Connection) -> Result:
        try:
            coalition, status = coalition_of(deps, conn, data["campaign_id"], fresh=True)
        except NotFound as exc:
            raise FieldError("campaign_id", exc.message) from None
        domain.require_manage(principal, coalition)
        if data.get("signer_retention_days") is not None:
            domain.require_retention_choice(principal, coalition)
        if status == "closed":
            raise FieldError("campaign_id", "This campaign is closed")
        moment = now()
        row = {
            "petition_id": str(uuid.uuid4()),
            "campaign_id": coalition.campaign_id,
            "organization_id": coalition.lead_organization_id,
            "status": domain.DRAFT,
            "default_locale": data["default_locale"],
            "texts": data["texts"],
            "targets": data.get("targets") or [],
            "goal": domain.initial_goal(data.get("goal")),
            "double_opt_in": bool(data.get("double_opt_in")),
            "public_total": data.get("public_total", True),
            "signer_retention_days": data.get("signer_retention_days"),
            "created_at": moment,
            "updated_at": moment,
        }
        store.insert_petition(conn, row)
        body = organizer_view(_petition(conn, row["petition_id"]), 0)
        return 201, json.loads(json.dumps(body, default=_iso))

    scope = f"create-petition:{principal.key_id}"
    return run_idempotent(deps, scope, idempotency_key, dict(data), work)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _managed(
    deps: Deps, conn: Connection, principal: Principal, petition_id: str
) -> tuple[Any, domain.Coalition]:
    petition = _petition(conn, petition_id, for_update=True)
    coalition, _ = coalition_of(deps, conn, petition.campaign_id, fresh=True)
    domain.require_manage(principal, coalition)
    return petition, coalition


# What may change once a petition is open: its words (a typo, a translation that arrived after
# launch), whom it addresses and what it shows and keeps. How it counts (double opt-in) is what
# its signers signed under, and its goal climbs by itself.
OPEN_EDITABLE = frozenset(
    {"texts", "targets", "default_locale", "public_total", "signer_retention_days"}
)
# Changes petition.updated does not carry: they announce nothing.
UNANNOUNCED = frozenset({"public_total", "signer_retention_days"})


def edit_petition(
    deps: Deps, principal: Principal, petition_id: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Change a draft petition; an open one's texts, targets, default locale, whether the
    public sees its total and how long its signers are kept (texts replace all locale variants
    when given); a closed one's signer retention until the erasure is due. An open one's change
    of words is announced (petition.updated), so the emails and partners use the new titles."""
    with deps.engine.begin() as conn:
        petition, coalition = _managed(deps, conn, principal, petition_id)
        values = dict(changes)
        if "signer_retention_days" in changes:
            domain.require_retention_choice(principal, coalition)
        if petition.status == domain.OPEN:
            fixed = sorted(set(changes) - OPEN_EDITABLE)
            if fixed:
                raise Conflict(
                    "An open petition's texts, targets, default locale, public_total and"
                    " signer_retention_days can change; not this",
                    {name: ["fixed once the petition is open"] for name in fixed},
                )
        elif petition.status == domain.CLOSED:
            _check_closed_edit(petition, changes)
        if petition.status == domain.CLOSED and "signer_retention_days" in changes:
            values["signer_data_erase_at"] = domain.signer_data_erase_at(
                aware(petition.closed_at), changes["signer_retention_days"], changed_at=now()
            )
        texts = changes.get("texts", petition.texts)
        _check_texts(texts, changes.get("default_locale", petition.default_locale))
        moment = now()
        store.update_petition(conn, petition_id, **values, updated_at=moment)
        changed = _petition(conn, petition_id)
        if changed.status == domain.OPEN and set(changes) - UNANNOUNCED:
            deps.outbox.add(conn, _announced(deps, "petition.updated", changed, moment))
        view = organizer_view(changed, store.total(conn, petition_id))
    # Once committed: a signature in between would load the old languages again.
    deps.open_petitions.forget(petition_id)
    return view


def signers_erased(petition: Any, at: datetime | None = None) -> bool:
    """Whether a petition row's signers' personal data is erased, or due to be by `at` (now)."""
    if petition.signer_data_erased_at is not None:
        return True
    due = _aware(petition.signer_data_erase_at)
    return due is not None and due <= (at or now())


def _check_closed_edit(petition: Any, changes: Mapping[str, Any]) -> None:
    """A closed petition's signer retention may change until its erasure is due; nothing else."""
    fixed = sorted(set(changes) - {"signer_retention_days"})
    if fixed:
        raise Conflict(
            "A closed petition's signer_retention_days can change; nothing else",
            {name: ["fixed once the petition is closed"] for name in fixed},
        )
    if signers_erased(petition):
        raise Conflict(
            "The signers' personal data is erased, or being erased, under the petition's retention",
            {"signer_retention_days": ["the erasure is due: it cannot be put off"]},
        )


def _announced(deps: Deps, kind: str, petition: Any, moment: datetime) -> Event:
    """petition.published or petition.updated: the petition as its readers need it."""
    data = {
        "petition_id": petition.petition_id,
        "campaign_id": petition.campaign_id,
        "organization_id": petition.organization_id,
        "titles": {locale: text["title"] for locale, text in petition.texts.items()},
        "default_locale": petition.default_locale,
        "goal": petition.goal,
        "double_opt_in": petition.double_opt_in,
        "at": moment.isoformat(),
    }
    return event(deps, kind, petition.petition_id, data)


def publish_petition(deps: Deps, principal: Principal, petition_id: str) -> dict[str, Any]:
    """Open a draft petition for signatures and announce it."""
    with deps.engine.begin() as conn:
        petition, _ = _managed(deps, conn, principal, petition_id)
        if petition.status != domain.DRAFT:
            raise Conflict("Only a draft petition can be published", {"status": [petition.status]})
        # Held until this commits: closing the campaign (its consumer) waits for it, then finds
        # this petition open and closes it; read without a lock, a campaign closing meanwhile
        # missed a petition that was still a draft when it looked, and left it open.
        _, campaign_status = coalition_of(deps, conn, petition.campaign_id, fresh=True, lock=True)
        if campaign_status == "closed":
            raise Conflict("The campaign is closed", {"campaign_id": ["closed"]})
        moment = now()
        store.update_petition(
            conn, petition_id, status=domain.OPEN, published_at=moment, updated_at=moment
        )
        deps.outbox.add(conn, _announced(deps, "petition.published", petition, moment))
        return organizer_view(_petition(conn, petition_id), store.total(conn, petition_id))


def close_open_petition(deps: Deps, conn: Connection, petition: Any) -> None:
    """Close an open petition and announce its final count (caller holds the row)."""
    moment = now()
    if not store.close_if_open(conn, petition.petition_id, moment):
        return  # closed meanwhile, and announced by whoever closed it
    # Read again now that the row is held: a retention changed since the caller read it counts.
    days = _petition(conn, petition.petition_id).signer_retention_days
    if days is not None:
        due = domain.signer_data_erase_at(moment, days)  # an hour's notice at least
        store.update_petition(conn, petition.petition_id, signer_data_erase_at=due)
    data = {
        "petition_id": petition.petition_id,
        "campaign_id": petition.campaign_id,
        "total": store.total(conn, petition.petition_id),
        "at": moment.isoformat(),
    }
    deps.outbox.add(conn, event(deps, "petition.closed", petition.petition_id, data))


def close_petition(deps: Deps, principal: Principal, petition_id: str) -> dict[str, Any]:
    """Stop taking signatures."""
    with deps.engine.begin() as conn:
        petition, _ = _managed(deps, conn, principal, petition_id)
        if petition.status != domain.OPEN:
            raise Conflict("Only an open petition can be closed", {"status": [petition.status]})
        close_open_petition(deps, conn, petition)
        return organizer_view(_petition(conn, petition_id), store.total(conn, petition_id))


def list_petitions(
    deps: Deps, principal: Principal, query: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """Return a page of the petitions of the caller's campaigns (all of them for admins);
    drafts only to those who may manage them (organizers), as reading one by id."""
    with deps.engine.connect() as conn:
        rows, total = store.list_petitions(
            conn,
            organization_id=None if principal.is_admin else principal.organization_id,
            campaign_id=query.get("campaign_id"),
            status=query.get("status"),
            drafts=principal.is_admin or principal.role == "organizer",
            page=query["page"],
            per_page=query["per_page"],
        )
        return [organizer_view(row, store.total(conn, row.petition_id)) for row in rows], total


def read_counts(deps: Deps, principal: Principal, petition_id: str) -> dict[str, Any]:
    """Return total, pending and the counts by locale, recruiting partner and source."""
    with deps.engine.connect() as conn:
        petition = _petition(conn, petition_id)
        coalition, _ = coalition_of(deps, conn, petition.campaign_id)
        domain.require_read_counts(principal, coalition)
        counts = store.counts(conn, petition_id)
    return {
        "petition_id": petition_id,
        "total": counts.get("total", {}).get("", 0),
        "pending": counts.get("pending", {}).get("", 0),
        "goal": petition.goal,
        "by_locale": _nonzero(counts.get("locale", {})),
        "by_partner": _nonzero(counts.get("partner", {}), empty="direct"),
        # A label no source code can be (they are letters, digits, ".", "_" and "-"): with
        # "none", a signer's ?source=none took the unattributed signatures' place.
        "by_source": _largest(_nonzero(counts.get("source", {}), empty=NO_SOURCE)),
    }


def read_daily_counts(
    deps: Deps, principal: Principal, petition_id: str, days: int, zone: str
) -> dict[str, Any]:
    """Return the signatures counted on each of the last `days` days (today included) in a
    time zone, by recruiting partner: momentum ("+800 this week, most through a partner"),
    for whoever may read the counts. A day with none is listed with 0."""
    tz = ZoneInfo(zone)
    today = datetime.now(tz).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    with deps.engine.connect() as conn:
        petition = _petition(conn, petition_id)
        coalition, _ = coalition_of(deps, conn, petition.campaign_id)
        domain.require_read_counts(principal, coalition)
        rows = store.confirmed_since(conn, petition_id, since, zone)
    by_day: dict[date, dict[str, int]] = {first + timedelta(days=n): {} for n in range(days)}
    for day, partner, count in rows:
        if day in by_day:
            bucket = by_day[day]
            bucket[partner or "direct"] = bucket.get(partner or "direct", 0) + count
    return {
        "petition_id": petition_id,
        "time_zone": zone,
        "days": [
            {"date": day.isoformat(), "total": sum(parts.values()), "by_partner": parts}
            for day, parts in sorted(by_day.items())
        ],
    }


NO_SOURCE = "(none)"
# Source codes come from the link a signer followed (?source=…): anyone can make up new ones.
# The counts show the largest SOURCES_SHOWN and add up the rest under OTHER_SOURCES, so the
# answer stays one screen and still sums to the total.
SOURCES_SHOWN, OTHER_SOURCES = 100, "(other)"


def _largest(buckets: dict[str, int]) -> dict[str, int]:
    if len(buckets) <= SOURCES_SHOWN:
        return buckets
    ranked = sorted(buckets.items(), key=lambda item: (-item[1], item[0]))
    shown = dict(sorted(ranked[: SOURCES_SHOWN - 1]))
    shown[OTHER_SOURCES] = sum(n for _, n in ranked[SOURCES_SHOWN - 1 :])
    return shown


def _nonzero(buckets: Mapping[str, int], empty: str = "") -> dict[str, int]:
    return {(name or empty): n for name, n in sorted(buckets.items()) if n}


def read_public(
    deps: Deps, petition_id: str, wanted: Sequence[str], principal: Principal | None
) -> dict[str, Any]:
    """Return an open or closed petition in the best locale; drafts only for its organizers."""
    with deps.engine.connect() as conn:
        petition = _petition(conn, petition_id)
        coalition, _ = coalition_of(deps, conn, petition.campaign_id)
        if petition.status == domain.DRAFT and not (
            principal is not None and domain.can_manage(principal, coalition)
        ):
            raise NotFound("No such petition")
        total = store.total(conn, petition_id)
        names = store.organization_names(conn, coalition.partner_organization_ids)
    # Hidden from the public, the total stays in sight of the coalition's own keys.
    shown = petition.public_total or (
        principal is not None and domain.can_read_counts(principal, coalition)
    )
    locale = best_match(wanted, petition.texts, petition.default_locale)
    text = petition.texts[locale]
    return {
        "petition_id": petition_id,
        "status": petition.status,
        "locale": locale,
        "locales": sorted(petition.texts),
        "title": text["title"],
        "summary": text.get("summary"),
        "text": text["text"],
        "targets": petition.targets,
        "total": total if shown else None,
        "goal": petition.goal if shown else None,
        "double_opt_in": petition.double_opt_in,
        "partners": [
            {"organization_id": org_id, "slug": slug, "name": name}
            for org_id, (slug, name) in sorted(names.items(), key=lambda item: item[1][1])
        ],
    }


# -- milestones --------------------------------------------------------------------------------


# A petition closed at its goal before housekeeping saw it still has its milestone announced;
# one closed longer ago than this (before this rule, say) is left as it is.
MILESTONES_AFTER_CLOSING = timedelta(days=1)


def advance_milestones(deps: Deps) -> int:
    """Publish each milestone a petition has passed, once per rung, and raise its goal."""
    published = 0
    with deps.engine.connect() as conn:
        due = store.petitions_past_goal(conn, closed_since=now() - MILESTONES_AFTER_CLOSING)
    for row in due:
        with deps.engine.begin() as conn:
            passed = domain.milestones_passed(row.goal, int(row.total))
            if not passed:
                continue
            # Only the transaction that moves the goal from the value it saw publishes.
            if not store.claim_goal(conn, row.petition_id, row.goal, passed[-1][1]):
                continue
            moment = now()
            deps.outbox.add_many(
                conn,
                [
                    event(
                        deps,
                        "petition.milestone_reached",
                        row.petition_id,
                        {
                            "petition_id": row.petition_id,
                            "campaign_id": row.campaign_id,
                            "milestone": milestone,
                            "total": int(row.total),
                            "next_goal": next_goal,
                            "at": moment.isoformat(),
                        },
                    )
                    for milestone, next_goal in passed
                ],
            )
            published += len(passed)
    return published
