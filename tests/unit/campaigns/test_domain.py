"""Campaign rules: the authorization matrix at the domain edge, state moves, audience checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.campaigns import domain
from shared.auth import Principal
from shared.errors import Conflict, FieldError, PermissionDenied

ACCESS = domain.CampaignAccess("lead", frozenset({"partner"}), frozenset({"invited"}))


def key(role: str, org: str) -> Principal:
    return Principal(key_id=f"{role}-{org}", role=role, organization_id=org)


# (principal, may read, may manage)
MATRIX = [
    (key("admin", "platform"), True, True),
    (key("organizer", "lead"), True, True),
    (key("partner", "lead"), True, False),
    (key("organizer", "partner"), True, False),
    (key("partner", "partner"), True, False),
    (key("organizer", "invited"), True, False),
    (key("organizer", "stranger"), False, False),
    (key("partner", "stranger"), False, False),
]


@pytest.mark.parametrize(("principal", "reads", "manages"), MATRIX)
def test_campaign_authorization_matrix(principal: Principal, reads: bool, manages: bool) -> None:
    for check, allowed in (
        (domain.may_read_campaign, reads),
        (domain.may_manage_campaign, manages),
    ):
        if allowed:
            check(principal, ACCESS)
        else:
            with pytest.raises(PermissionDenied):
                check(principal, ACCESS)


def test_only_admins_issue_admin_keys_and_organizers_only_for_their_organization() -> None:
    domain.may_issue_key(key("admin", "platform"), "lead", "admin")
    domain.may_issue_key(key("organizer", "lead"), "lead", "partner")
    for principal, org, role in (
        (key("organizer", "lead"), "lead", "admin"),
        (key("organizer", "lead"), "other", "partner"),
        (key("partner", "lead"), "lead", "partner"),
    ):
        with pytest.raises(PermissionDenied):
            domain.may_issue_key(principal, org, role)


def test_campaign_moves_only_forward() -> None:
    assert domain.move_campaign("draft", "launch") == "active"
    assert domain.move_campaign("active", "close") == "closed"
    for status, action in (("active", "launch"), ("draft", "close"), ("closed", "launch")):
        with pytest.raises(Conflict):
            domain.move_campaign(status, action)


def test_an_alert_can_be_stopped_until_it_has_gone_to_everyone() -> None:
    for status in ("draft", "scheduled", "published"):
        domain.check_cancellable(status, None)
    domain.check_cancellable("published", "sending")  # a wrong link noticed mid-send
    with pytest.raises(Conflict, match="nothing is left to stop"):
        domain.check_cancellable("published", "done")
    with pytest.raises(Conflict):
        domain.check_cancellable("cancelled", "cancelled")


def test_send_at_must_be_aware_future_and_within_a_year() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert domain.check_send_at(None, now) == now
    assert domain.check_send_at(now + timedelta(hours=1), now) == now + timedelta(hours=1)
    for bad in (now - timedelta(hours=1), now + timedelta(days=400), datetime(2026, 12, 1)):
        with pytest.raises(FieldError) as caught:
            domain.check_send_at(bad, now)
        assert list(caught.value.errors) == ["send_at"]


def test_audience_is_validated_field_by_field() -> None:
    good = {"countries": ["US", "CA"], "regions": ["US-CA"], "locales": ["en", "zh-Hant"]}
    assert domain.check_audience({**good, "partner_organization_ids": ["partner"]}, ACCESS)
    for name, value in (
        ("countries", ["USA"]),
        ("regions", ["California"]),
        ("postal_prefixes", ["<script>"]),
        ("interests", ["Has Spaces"]),
        ("partner_organization_ids", ["invited"]),  # not yet in the coalition
    ):
        with pytest.raises(FieldError) as caught:
            domain.check_audience({name: value}, ACCESS)
        assert list(caught.value.errors) == [f"audience.{name}"]
    with pytest.raises(FieldError) as caught:
        domain.check_audience({"locales": ["en", "xx-nope"]}, ACCESS)
    assert list(caught.value.errors) == ["audience.locales.1"]


def test_slugs_and_source_codes() -> None:
    assert domain.check_slug("api-coalition") == "api-coalition"
    code = domain.default_source_code("api-coalition")
    assert code.startswith("api-coalition-") and domain.check_source_code(code) == code
    for bad in ("Caps", "-edge", "sp ace", ""):
        with pytest.raises(FieldError):
            domain.check_slug(bad)


def test_a_trailing_newline_passes_no_pattern() -> None:
    for check in (domain.check_slug, domain.check_source_code):
        with pytest.raises(FieldError):
            check("acme\n")
    with pytest.raises(FieldError):
        domain.check_locale("en\n", "default_locale")
    for name, value in (
        ("regions", "US-CA\n"),
        ("postal_prefixes", "946\n"),
        ("interests", "housing\n"),
    ):
        with pytest.raises(FieldError) as caught:
            domain.check_audience({name: [value]}, ACCESS)
        assert list(caught.value.errors) == [f"audience.{name}"]


def test_a_slug_cannot_look_like_an_organization_id() -> None:
    # Organizations are found by id or slug: such a slug could shadow another organization.
    with pytest.raises(FieldError) as caught:
        domain.check_slug("3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert list(caught.value.errors) == ["slug"]
    assert domain.check_slug("3fa85f64-5717-4562-b3fc") == "3fa85f64-5717-4562-b3fc"


def test_content_may_be_in_the_languages_of_the_coalitions_communities() -> None:
    """Hmong, Samoan, Chamorro, Marshallese, Chuukese, Ilocano, Waray: CLDR names them, Babel
    has no data for them, and they were refused; und (no language) and ZZ were accepted."""
    for tag in ("hmn", "sm", "ch", "mh", "chk", "ilo", "war", "en-419", "zh-Hant", "fil"):
        assert domain.check_locale(tag, "default_locale") == tag
    for tag in ("und", "en-ZZ", "zh-Zzzz", "zh-hant", "EN"):
        with pytest.raises(FieldError) as caught:
            domain.check_locale(tag, "content")
        assert list(caught.value.errors) == ["content"]
