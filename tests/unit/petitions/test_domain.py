"""The petition rules, without I/O."""

from __future__ import annotations

import itertools

import pytest

from services.petitions import domain
from shared.auth import Principal
from shared.errors import FieldError, NotFound, PermissionDenied
from shared.privacy import clean_email

LEAD, P1, P2, OTHER = "org-lead", "org-p1", "org-p2", "org-other"
COALITION = domain.Coalition(
    campaign_id="c1",
    lead_organization_id=LEAD,
    partner_organization_ids=frozenset({P1, P2}),
    organizations={LEAD: ("lead", "LEAD"), P1: ("rainbow", "rb"), P2: ("kapwa", None)},
)


def who(role: str, org: str) -> Principal:
    return Principal(key_id="k", role=role, organization_id=org)


def test_ladder_climbs_100_250_500_then_by_tens() -> None:
    first = list(itertools.islice(domain.ladder(), 9))
    assert first == [100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000]


@pytest.mark.parametrize(
    ("value", "rung"), [(0, 100), (99, 100), (100, 250), (300, 500), (999, 1000), (25_000, 50_000)]
)
def test_next_rung_is_strictly_above(value: int, rung: int) -> None:
    assert domain.next_rung(value) == rung


def test_goal_defaults_to_the_first_rung() -> None:
    assert domain.initial_goal(None) == 100
    assert domain.initial_goal(40) == 40


def test_each_passed_rung_is_reported_once_in_order() -> None:
    assert domain.milestones_passed(100, 99) == []
    assert domain.milestones_passed(100, 100) == [(100, 250)]
    assert domain.milestones_passed(100, 600) == [(100, 250), (250, 500), (500, 1000)]
    # An organizer's own goal off the ladder rejoins it at the next rung.
    assert domain.milestones_passed(40, 41) == [(40, 100)]


def test_phone_numbers_in_common_formats_become_e164() -> None:
    assert domain.e164("(415) 555-2671", "US") == "+14155552671"
    assert domain.e164("+63 917 123 4567", None) == "+639171234567"
    assert domain.e164("0917 123 4567", "ph") == "+639171234567"


@pytest.mark.parametrize(("number", "country"), [("12", "US"), ("555-2671", None), ("hello", "US")])
def test_bad_phone_numbers_name_the_field(number: str, country: str | None) -> None:
    with pytest.raises(FieldError) as caught:
        domain.e164(number, country)
    assert "person.phone" in caught.value.errors


def test_bad_email_names_the_field() -> None:
    with pytest.raises(FieldError) as caught:
        clean_email("not-an-address")
    assert "person.email" in caught.value.errors
    assert clean_email("  Mari.Santos@Example.ORG ") == "Mari.Santos@example.org"


def test_confirmation_tokens_cannot_be_forged() -> None:
    token = domain.confirm_token("key", "sig-1")
    assert domain.signature_of_token("key", token) == "sig-1"
    assert domain.signature_of_token("other-key", token) is None
    assert domain.signature_of_token("key", "sig-2." + token.split(".")[1]) is None
    assert domain.signature_of_token("key", "garbage") is None


@pytest.mark.parametrize("token", ["é.x", "sig-1.é", "\ud800.x", "sig-1.😀"])
def test_non_ascii_tokens_are_unknown_not_an_error(token: str) -> None:
    assert domain.signature_of_token("key", token) is None


def test_partner_boxes_by_id_or_slug_and_only_ticked() -> None:
    assert COALITION.partner_boxes({}) == []
    assert COALITION.partner_boxes({P1: True, "kapwa": False}) == [P1]
    assert COALITION.partner_boxes({"rainbow": True, P2: True}) == [P1, P2]


def test_a_box_for_a_non_partner_is_refused() -> None:
    with pytest.raises(FieldError) as caught:
        COALITION.partner_boxes({OTHER: True})
    assert f"consents.partners.{OTHER}" in caught.value.errors
    with pytest.raises(FieldError):
        COALITION.partner_boxes({LEAD: True})  # the lead's consent is the email box


def test_source_codes_attribute_to_their_organization() -> None:
    assert COALITION.recruiter_for("RB") == P1
    assert COALITION.recruiter_for("lead") == LEAD
    assert COALITION.recruiter_for("facebook") is None
    assert COALITION.recruiter_for(None) is None


def test_source_codes_are_plain() -> None:
    assert domain.clean_source("Spring-Mailer_2") == "spring-mailer_2"
    assert domain.clean_source("") is None
    with pytest.raises(FieldError):
        domain.clean_source("<img src=x>")
    # A line break at the end would pass a "$" pattern, credit nobody ("rb\n" is not rb's
    # code) and split the source's count and the export's cell.
    with pytest.raises(FieldError):
        domain.clean_source("RB\n")


def test_who_may_manage_petitions() -> None:
    assert domain.can_manage(who("organizer", LEAD), COALITION)
    assert domain.can_manage(who("organizer", P1), COALITION)
    assert domain.can_manage(who("admin", OTHER), COALITION)
    assert not domain.can_manage(who("partner", P1), COALITION)
    assert not domain.can_manage(who("organizer", OTHER), COALITION)


def test_only_the_lead_exports_every_signer() -> None:
    domain.require_full_export(who("organizer", LEAD), COALITION)
    for principal in (who("organizer", P1), who("partner", P1), who("partner", LEAD)):
        with pytest.raises(PermissionDenied):
            domain.require_full_export(principal, COALITION)


def test_a_partner_exports_only_its_own_list() -> None:
    domain.require_partner_export(who("partner", P1), COALITION, P1)
    domain.require_partner_export(who("organizer", LEAD), COALITION, P1)
    with pytest.raises(PermissionDenied):
        domain.require_partner_export(who("partner", P2), COALITION, P1)
    with pytest.raises(NotFound):  # an admin may ask: there is no such partner
        domain.require_partner_export(who("admin", OTHER), COALITION, OTHER)
    with pytest.raises(PermissionDenied):  # nor does another learn whether OTHER is one
        domain.require_partner_export(who("partner", P2), COALITION, OTHER)


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-1+2", "'-1+2"),
        ("+14155552671", "+14155552671"),
        ("Mari", "Mari"),
        (None, ""),
    ],
)
def test_csv_cells_never_run_as_formulas(cell: str | None, safe: str) -> None:
    assert domain.csv_safe(cell) == safe
