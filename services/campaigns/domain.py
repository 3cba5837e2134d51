"""Campaign rules as plain functions: who may do what, and which state changes are allowed."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pycountry

from shared.auth import Principal, authorize
from shared.errors import Conflict, FieldError, PermissionDenied
from shared.events.catalog import INTEREST as INTEREST_PATTERN
from shared.locales import COUNTRIES, canonical_language_tag

# \Z, not $: "$" also matches before a trailing newline, so "acme\n" would pass.
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\Z")
SOURCE_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}\Z")
COMMUNITY = re.compile(r"^[\w][\w .&+'/-]{0,62}\Z")
REGION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}\Z")
POSTAL_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{0,9}\Z")
# language[-Script][-REGION]: the part of BCP 47 that picks a translation.
LOCALE_TAG = re.compile(r"^[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?\Z")
INTEREST = re.compile(rf"^{INTEREST_PATTERN}\Z")
# An organization's id: organizations are found by id or slug, so no slug may look like one.
ORGANIZATION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")

# How far ahead an alert may be scheduled; further is almost certainly a typo in the year.
MAX_SCHEDULE_AHEAD = timedelta(days=366)

CAMPAIGN_MOVES = {"launch": ("draft", "active"), "close": ("active", "closed")}


@dataclass(frozen=True)
class CampaignAccess:
    """Who is in a campaign: its lead, partners that joined, organizations still invited."""

    lead_organization_id: str
    joined: frozenset[str]
    invited: frozenset[str]

    @property
    def members(self) -> frozenset[str]:
        return self.joined | {self.lead_organization_id}


# -- authorization -----------------------------------------------------------------------------
# The matrix (admin keys pass every check):
#   organization: read any (a coalition directory); update own as organizer; create: admin only
#   keys: organizer issues, lists, revokes its own organization's organizer/partner keys
#   campaign: create for own organization as organizer; read as any key of the lead, a joined
#     partner or an invited organization; change, invite, launch, close as the lead's organizer
#   invitation: accept or decline as the invited organization's organizer
#   alert: read like its campaign; create, edit, schedule, cancel as the lead's organizer


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise PermissionDenied(f"Only a platform admin key can {action}")


def may_manage_organization(principal: Principal, organization_id: str) -> None:
    authorize(principal, [organization_id], ("organizer",), "change this organization")


def may_issue_key(principal: Principal, organization_id: str, role: str) -> None:
    if role == "admin":
        require_admin(principal, "issue admin keys")
    authorize(principal, [organization_id], ("organizer",), "manage this organization's keys")


def may_read_campaign(principal: Principal, access: CampaignAccess) -> None:
    readers = access.members | access.invited
    authorize(principal, readers, action="read this campaign")


def may_manage_campaign(principal: Principal, access: CampaignAccess) -> None:
    authorize(principal, [access.lead_organization_id], ("organizer",), "change this campaign")


def may_answer_invitation(principal: Principal, organization_id: str) -> None:
    authorize(principal, [organization_id], ("organizer",), "answer this invitation")


def may_create_campaign_for(principal: Principal, lead_organization_id: str) -> None:
    authorize(principal, [lead_organization_id], ("organizer",), "lead campaigns for it")


def visible_organization(principal: Principal) -> str | None:
    """Return the organization whose campaigns a listing shows (None: all, for admins)."""
    return None if principal.is_admin else principal.organization_id


# -- organizations -----------------------------------------------------------------------------


def check_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise FieldError("slug", "Use 1-64 lowercase letters, digits and inner hyphens.")
    if ORGANIZATION_ID.match(slug):
        raise FieldError("slug", "A slug cannot have the shape of an organization id (a UUID).")
    return slug


def check_source_code(code: str) -> str:
    if not SOURCE_CODE.match(code):
        raise FieldError(
            "source_code", "Use 2-64 lowercase letters, digits, '-' or '_', starting alphanumeric."
        )
    return code


def default_source_code(slug: str) -> str:
    """Return a referral code for a partner: its slug plus a short random tail (unguessable)."""
    return f"{slug[:40]}-{secrets.token_hex(3)}"


def check_communities(communities: Iterable[str], field: str = "communities") -> list[str]:
    """Return the communities served, trimmed and deduplicated in their given order."""
    seen: dict[str, None] = {}
    for item in communities:
        text = item.strip()
        if not COMMUNITY.match(text):
            raise FieldError(field, f"{item!r} is not a community label (1-63 plain characters).")
        seen.setdefault(text, None)
    return list(seen)


# -- locales and campaigns ---------------------------------------------------------------------


def check_locale(tag: str, field: str) -> str:
    """Return a BCP 47 tag whose subtags CLDR names (en, fil, hmn, zh-Hant, vi-VN, es-419),
    in canonical case, or raise naming the field."""
    try:
        if not LOCALE_TAG.match(tag) or canonical_language_tag(tag) != tag:
            raise ValueError(tag)
    except (ValueError, TypeError):
        raise FieldError(
            field, f"{tag!r} is not a known locale (BCP 47, e.g. en, zh-Hant)"
        ) from None
    return tag


def check_titles(titles: dict[str, str], descriptions: dict[str, str], default_locale: str) -> None:
    """Require a title in the default locale and locales Babel knows for every text."""
    check_locale(default_locale, "default_locale")
    for locale, title in titles.items():
        check_locale(locale, f"titles.{locale}")
        if not title.strip():
            raise FieldError(f"titles.{locale}", "A title cannot be blank.")
    for locale in descriptions:
        check_locale(locale, f"descriptions.{locale}")
    if default_locale not in titles:
        raise FieldError(f"titles.{default_locale}", "The default locale needs a title.")


def move_campaign(status: str, action: str) -> str:
    """Return the status after launch/close, or raise 409 if the campaign cannot move so."""
    source, target = CAMPAIGN_MOVES[action]
    if status != source:
        raise Conflict(f"Only a {source} campaign can {action}; this one is {status}")
    return target


def require_open_campaign(status: str, action: str) -> None:
    if status == "closed":
        raise Conflict(f"A closed campaign cannot {action}")


def check_invitation(access: CampaignAccess, organization_id: str) -> None:
    if organization_id == access.lead_organization_id:
        raise FieldError("organization", "The lead organization is already in its campaign.")
    if organization_id in access.joined:
        raise Conflict("This organization is already a partner of the campaign")


def check_answer(access: CampaignAccess, organization_id: str) -> None:
    if organization_id not in access.invited:
        raise Conflict("There is no open invitation for this organization")


def may_remove_partner(principal: Principal, access: CampaignAccess, organization_id: str) -> None:
    """The lead's organizers remove a partner; a partner's own organizers take it out."""
    authorize(
        principal, [access.lead_organization_id, organization_id], ("organizer",),
        "remove this partner",
    )  # fmt: skip


def check_partner(access: CampaignAccess, organization_id: str) -> None:
    if organization_id not in access.joined:
        raise Conflict("This organization is not a partner of the campaign")


# -- alerts ------------------------------------------------------------------------------------


ALERT_EDITABLE = ("draft",)
# Not yet handed to notifications: what closing a campaign cancels.
ALERT_UNSENT = ("draft", "scheduled")
# A published alert can still be stopped: what has not gone yet stays unsent (a wrong link
# noticed at 22:00, with the texts held for the morning's quiet-hours window).
ALERT_CANCELLABLE = (*ALERT_UNSENT, "published")


def require_alert_status(status: str, allowed: Sequence[str], action: str) -> None:
    if status not in allowed:
        raise Conflict(f"An alert that is {status} cannot be {action}")


def check_cancellable(status: str, progress_status: str | None) -> None:
    """An alert can be cancelled until notifications reports it done (or it is cancelled)."""
    require_alert_status(status, ALERT_CANCELLABLE, "cancelled")
    if progress_status == "done":
        raise Conflict("This alert has gone to everyone it was for: nothing is left to stop")


def check_send_at(send_at: datetime | None, now: datetime) -> datetime:
    """Return when to send: now for None or a past moment within a minute, else send_at."""
    if send_at is None:
        return now
    if send_at.tzinfo is None:
        raise FieldError("send_at", "Give a time zone (e.g. 2026-12-01T17:00:00Z).")
    if send_at < now - timedelta(minutes=1):
        raise FieldError("send_at", "This moment has passed; leave send_at out to send now.")
    if send_at > now + MAX_SCHEDULE_AHEAD:
        raise FieldError("send_at", "An alert can be scheduled at most a year ahead.")
    return max(send_at, now)


def _known_region(code: str) -> bool:
    """An ISO 3166-2 code that exists ("US-CA"): a typo ("US-CAL") would reach nobody."""
    found = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]
    return bool(REGION.match(code) and found)


def check_audience(audience: dict[str, list[str]], access: CampaignAccess) -> dict[str, list[str]]:
    """Validate an audience filter; recruiting partners must be in the coalition."""
    rules: dict[str, Callable[[str], object]] = {
        "countries": COUNTRIES.__contains__,
        "regions": _known_region,
        "postal_prefixes": POSTAL_PREFIX.match,
        "interests": INTEREST.match,
    }
    for name, ok in rules.items():
        for value in audience.get(name, []):
            if not ok(value):
                raise FieldError(f"audience.{name}", f"{value!r} is not valid here.")
    for index, tag in enumerate(audience.get("locales", [])):
        check_locale(tag, f"audience.locales.{index}")
    for org in audience.get("partner_organization_ids", []):
        if org not in access.members:
            raise FieldError(
                "audience.partner_organization_ids", f"{org!r} is not in this campaign."
            )
    return {name: list(dict.fromkeys(values)) for name, values in audience.items()}


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a JSON Merge Patch (RFC 7396): an object's members merge, null removes one, any
    other value (a string, a list) replaces what was there.

    PATCH {"audience": {"countries": ["US"]}} adds a filter and keeps the others, and
    {"content": {"tl": {...}}} adds or edits one locale: replacing the whole object dropped
    every filter not named (an alert narrowed to one language then went to the campaign's
    whole audience) or every other locale."""
    if not isinstance(patch, Mapping):
        return patch
    merged = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged
