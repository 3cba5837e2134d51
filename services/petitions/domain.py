"""Petition rules as plain functions: no Flask, no Kafka, no SQL."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers

from shared.auth import Principal
from shared.errors import FieldError, NotFound, PermissionDenied

DRAFT, OPEN, CLOSED = "draft", "open", "closed"
PENDING, CONFIRMED, ERASED = "pending", "confirmed", "erased"
SOURCE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")
# The longest an organizer can have Kinship keep a closed petition's signers: ten years.
MAX_SIGNER_RETENTION_DAYS = 3650


# Signers fall due for erasure no sooner than this after the closing, or after a retention
# changed since: time to undo a slip (3 for 30) or take the exports, which answer 410 from then.
RETENTION_NOTICE = timedelta(hours=1)
# The rows are erased this long after the due time, so that an export started just before it
# (a million rows, a slow client) is not cut short; an export still streaming then is broken
# off (exports.csv_lines), never completed with rows missing.
ERASE_AFTER_DUE = timedelta(hours=1)


# Clocks of the web and worker processes differ a little: an export gives up this much early.
CLOCK_MARGIN = timedelta(minutes=1)


def erasure_may_have_started(
    erase_at: datetime | None, erased_at: datetime | None, at: datetime
) -> bool:
    """Whether a petition's rows may be being erased at `at` (aware times): done, or past
    its due time by ERASE_AFTER_DUE (less CLOCK_MARGIN), when the worker starts on them. A due
    time once passed never moves (a change is refused), so this is exact, read afresh."""
    if erased_at is not None:
        return True
    return erase_at is not None and at >= erase_at + ERASE_AFTER_DUE - CLOCK_MARGIN


def signer_data_erase_at(
    closed_at: datetime, retention_days: int | None, changed_at: datetime | None = None
) -> datetime | None:
    """When a closed petition's signers' personal data falls due for erasure (aware times):
    retention_days after closing, but no sooner than RETENTION_NOTICE after the closing or,
    for a retention changed after it, after the change (changed_at): whoever closes or changes
    it, the lead has that long to undo it or take the exports. None for a petition that keeps
    them."""
    if retention_days is None:
        return None
    return max(
        closed_at + timedelta(days=retention_days), (changed_at or closed_at) + RETENTION_NOTICE
    )


# -- the goal ladder ---------------------------------------------------------------------------


def ladder() -> Iterable[int]:
    """Yield the goal ladder without end: 100, 250, 500, 1k, 2.5k, 5k, 10k, 25k, …"""
    scale = 100
    while True:
        yield from (scale, scale * 5 // 2, scale * 5)
        scale *= 10


def next_rung(value: int) -> int:
    """Return the first rung of the ladder strictly above value."""
    for rung in ladder():
        if rung > value:
            return rung
    raise AssertionError("the ladder has no top")  # pragma: no cover


def initial_goal(requested: int | None) -> int:
    """Return a new petition's goal: the organizer's, or the ladder's first rung."""
    return requested if requested is not None else next_rung(0)


def milestones_passed(goal: int, total: int) -> list[tuple[int, int]]:
    """Return (milestone, next goal) for each goal that total has reached, climbing the ladder."""
    passed = []
    while total >= goal:
        following = next_rung(goal)
        passed.append((goal, following))
        goal = following
    return passed


# -- locales -----------------------------------------------------------------------------------


# -- contact details ---------------------------------------------------------------------------


def e164(number: str, country: str | None, field: str = "person.phone") -> str:
    """Return a phone number written any common way as E.164; raise FieldError if it is not."""
    try:
        parsed = phonenumbers.parse(number, (country or "").upper() or None)
    except phonenumbers.NumberParseException:
        raise FieldError(field, "Not a phone number (give +country code or a country)") from None
    if not phonenumbers.is_valid_number(parsed):
        raise FieldError(field, "Not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class OpenPetition:
    """What signing needs of a petition. Its languages and default can change while it is
    open (usecases.OPEN_EDITABLE); whether it counts with double opt-in cannot."""

    petition_id: str
    campaign_id: str
    organization_id: str
    default_locale: str
    double_opt_in: bool
    locales: tuple[str, ...]


# -- attribution and consent -------------------------------------------------------------------


@dataclass(frozen=True)
class Coalition:
    """A campaign's organizations as this service knows them from events."""

    campaign_id: str
    lead_organization_id: str
    partner_organization_ids: frozenset[str]
    # organization id -> (slug, source code)
    organizations: Mapping[str, tuple[str, str | None]]

    @property
    def members(self) -> frozenset[str]:
        return self.partner_organization_ids | {self.lead_organization_id}

    def recruiter_for(self, source: str | None) -> str | None:
        """Return the member organization whose source code this is, or starts with followed by
        "-" ("qh-instagram" credits the organization whose code is "qh": partners tell their
        own channels apart), the longest such code winning (case-insensitive)."""
        if not source:
            return None
        wanted = source.lower()
        found: tuple[int, str] | None = None
        for org_id in sorted(self.members):
            code = (self.organizations.get(org_id, ("", None))[1] or "").lower()
            if code and (wanted == code or wanted.startswith(code + "-")):
                if found is None or len(code) > found[0]:
                    found = (len(code), org_id)
        return found[1] if found else None

    def partner_boxes(self, ticks: Mapping[str, bool]) -> list[str]:
        """Return the ids of partner organizations whose box was ticked (by id or slug)."""
        by_slug = {
            self.organizations[org_id][0]: org_id
            for org_id in self.partner_organization_ids
            if org_id in self.organizations
        }
        chosen: set[str] = set()
        for key, ticked in ticks.items():
            if ticked is not True:
                # A box left unticked asks for nothing: a form still showing a partner since
                # removed (or renamed) must not turn every signer away.
                continue
            org_id = key if key in self.partner_organization_ids else by_slug.get(key)
            if org_id is None:
                raise FieldError(f"consents.partners.{key}", "Not a partner of this campaign")
            chosen.add(org_id)
        return sorted(chosen)


def clean_source(source: str | None) -> str | None:
    """Return a referrer source code, or raise FieldError if it is not a plain code."""
    if source is None or source == "":
        return None
    if not SOURCE_CODE.match(source):
        raise FieldError("referrer_data.source", "Letters, digits, '.', '_' or '-', at most 64")
    return source.lower()


# -- confirmation links ------------------------------------------------------------------------


def confirm_token(key: str, signature_id: str) -> str:
    """Return the double opt-in token of a signature: its id and a MAC, so nothing is stored."""
    mac = hmac.new(key.encode(), f"confirm\x00{signature_id}".encode(), hashlib.sha256)
    return f"{signature_id}.{mac.hexdigest()[:32]}"


def signature_of_token(key: str, token: str) -> str | None:
    """Return the signature id a confirmation token vouches for, or None if it is forged."""
    signature_id, _, _ = token.partition(".")
    # compare_digest takes only ASCII str; no token we issue holds anything else.
    if not signature_id or len(token) > 200 or not token.isascii():
        return None
    return signature_id if hmac.compare_digest(confirm_token(key, signature_id), token) else None


# -- who may do what ---------------------------------------------------------------------------


def can_manage(principal: Principal, coalition: Coalition) -> bool:
    """Organizers of the lead or a partner organization manage petitions; admins anything."""
    if principal.is_admin:
        return True
    return principal.role == "organizer" and principal.organization_id in coalition.members


def require_manage(principal: Principal, coalition: Coalition) -> None:
    if not can_manage(principal, coalition):
        raise PermissionDenied("Only organizers of this campaign's organizations may do this")


def can_read_counts(principal: Principal, coalition: Coalition) -> bool:
    """Any key of a campaign member (organizer or partner) may read the counts."""
    return principal.is_admin or principal.organization_id in coalition.members


def require_read_counts(principal: Principal, coalition: Coalition) -> None:
    if not can_read_counts(principal, coalition):
        raise PermissionDenied("Only the campaign's organizations may read its counts")


def require_lead(principal: Principal, coalition: Coalition, refusal: str) -> None:
    """Only the lead organization's organizers (and admins) pass; others get refusal (403)."""
    if principal.is_admin:
        return
    if (
        principal.role == "organizer"
        and principal.organization_id == coalition.lead_organization_id
    ):
        return
    raise PermissionDenied(refusal)


def require_full_export(principal: Principal, coalition: Coalition) -> None:
    """Only the lead organization's organizers (and admins) get every signer's details."""
    require_lead(
        principal,
        coalition,
        "Only organizers of the lead organization may export all signers; "
        "partners export the signers who chose to share with them",
    )


def require_retention_choice(principal: Principal, coalition: Coalition) -> None:
    """How long the lead's list of signers is kept is the lead's call: a partner must neither
    have it erased nor keep one the lead wants gone."""
    require_lead(
        principal,
        coalition,
        "Only organizers of the lead organization set how long its signers are kept"
        " (signer_retention_days)",
    )


# consent.changed's changes that withdraw a channel, each with the change that lifts it (None:
# nothing does; notifications keeps a bounce or a spam complaint for good, and a STOP until
# START, whatever else is ticked meanwhile).
WITHDRAWALS = {"unsubscribe": "subscribe", "stop": "start", "bounce": None, "complaint": None}


def withdrawn(changes: Mapping[str, datetime]) -> bool:
    """Whether one scope's consent changes ({change: latest time}) leave its channel withdrawn
    now: a withdrawal not lifted since (at the same moment, withdrawn)."""
    for change, lifted_by in WITHDRAWALS.items():
        at = changes.get(change)
        if at is None:
            continue
        lifted = changes.get(lifted_by) if lifted_by else None
        if lifted is None or lifted <= at:
            return True
    return False


def require_partner_export(principal: Principal, coalition: Coalition, partner_id: str) -> None:
    """A partner's own keys, the lead's organizers and admins may export that partner's list.

    Who may ask is checked first, so nobody else learns from the answer which organizations
    are partners; then an organization that is not one is not found (404)."""
    allowed = (
        principal.is_admin
        or principal.organization_id == partner_id
        or (
            principal.role == "organizer"
            and principal.organization_id == coalition.lead_organization_id
        )
    )
    if not allowed:
        raise PermissionDenied(
            "Only that partner (or the lead organization) may export its signers"
        )
    if partner_id not in coalition.partner_organization_ids:
        raise NotFound("No such partner of this campaign")


# -- CSV ---------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}\Z")


def csv_safe(value: object) -> str:
    """Return a cell that spreadsheets will not run as a formula (CSV injection)."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START) and not _E164.match(text):
        return "'" + text
    return text
