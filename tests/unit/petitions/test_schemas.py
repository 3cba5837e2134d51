"""Request parsing: OSDI shapes, canonical locales, and dotted field names in errors."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from services.petitions.api import dotted
from services.petitions.schemas import ListQuerySchema, PetitionCreateSchema, SignRequestSchema


def test_osdi_person_shape_is_flattened() -> None:
    data = SignRequestSchema().load(
        {
            "person": {
                "given_name": "Mari",
                "email_addresses": [
                    {"address": "x@example.org"},
                    {"address": "m@example.org", "primary": True},
                ],
                "phone_numbers": [{"number": "+14155552671"}],
                "postal_addresses": [{"postal_code": "94110", "country": "us", "region": "CA"}],
                "languages_spoken": ["es"],
            },
            "referrer_data": {"source": "rb", "website": "https://example.org"},
            "add_tags": ["ignored"],
        }
    )
    person = data["person"]
    assert person["email"] == "m@example.org"
    assert person["phone"] == "+14155552671"
    assert (person["postal_code"], person["country"], person["region"]) == ("94110", "US", "CA")
    assert person["language"] == "es"
    assert data["consents"] == {"email": False, "sms": False, "partners": {}}


def test_osdi_comments_and_a_number_sent_as_a_number_are_read() -> None:
    # As OSDI's own record_signature_helper examples send them: a comment dropped silently
    # left it out of the organizer's delivery export; a numeric phone was a 422.
    data = SignRequestSchema().load(
        {
            "person": {"email_addresses": [{"address": "m@example.org"}],
                       "phone_numbers": [{"number": 14155552671}]},
            "comments": "My family depends on interpreters at the clinic.",
        }
    )  # fmt: skip
    assert data["person"]["phone"] == "14155552671"
    assert data["comment"] == "My family depends on interpreters at the clinic."
    own = SignRequestSchema().load(
        {"person": {"email": "a@example.org"}, "comment": "mine", "comments": "theirs"}
    )
    assert own["comment"] == "mine"


def test_an_osdi_target_with_contact_fields_is_accepted() -> None:
    target = {"name": "Council Member Lee", "title": "District 3",
              "email_addresses": [{"address": "d3@city.example.gov"}],
              "postal_addresses": [{"locality": "Oakland"}]}  # fmt: skip
    body = {"campaign_id": "c1", "default_locale": "en", "targets": [target],
            "texts": {"en": {"title": "T", "text": "X"}}}  # fmt: skip
    [kept] = PetitionCreateSchema().load(body)["targets"]
    assert kept["name"] == "Council Member Lee" and "email_addresses" not in kept


def test_boxes_start_unticked() -> None:
    data = SignRequestSchema().load({"person": {"email": "a@example.org"}})
    assert data["consents"]["partners"] == {}
    assert data["consents"]["email"] is False and data["consents"]["sms"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"person": {"email": "a@example.org", "language": "zz"}}, "person.language"),
        ({"person": {"email": "a@example.org", "country": "USA"}}, "person.country"),
        # Letters, but no country: upper() made "ß" into "SS" and fullwidth "ｕｓ" into "ＵＳ",
        # which no audience's countries match.
        ({"person": {"email": "a@example.org", "country": "\u00df"}}, "person.country"),
        ({"person": {"email": "a@example.org", "country": "\uff55\uff53"}}, "person.country"),
        ({"person": {"email": "a@example.org", "country": "ZZ"}}, "person.country"),
        ({"person": {"email": "a@example.org", "country": "QX"}}, "person.country"),
        ({"person": {"email": "a@example.org", "given_name": "x" * 101}}, "person.given_name"),
        ({"person": {"email": "a@example.org"}, "comment": "x" * 2001}, "comment"),
        ({"person": {"email": "a@example.org"}, "locale": "xx-YY"}, "locale"),
        ({"person": {"email": "a@example.org"}, "consents": {"sms": "maybe"}}, "consents.sms"),
        ({}, "person"),
    ],
)
def test_bad_input_names_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SignRequestSchema().load(body)
    assert field in dotted(caught.value.messages)


def test_petition_texts_are_keyed_by_canonical_locale() -> None:
    data = PetitionCreateSchema().load(
        {
            "campaign_id": "c1",
            "default_locale": "en",
            "texts": {"en": {"title": "T", "text": "X"}, "zh_hant": {"title": "T", "text": "X"}},
        }
    )
    assert set(data["texts"]) == {"en", "zh-Hant"}
    assert data["goal"] is None and data["double_opt_in"] is False


def test_a_fractional_goal_is_refused_not_cut() -> None:
    body = {"campaign_id": "c1", "default_locale": "en", "goal": 250.9,
            "texts": {"en": {"title": "T", "text": "X"}}}  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        PetitionCreateSchema().load(body)
    assert "goal" in caught.value.messages
    assert PetitionCreateSchema().load({**body, "goal": 250})["goal"] == 250


def test_dotted_names_nested_and_listed_fields() -> None:
    assert dotted({"person": {"email": ["bad"]}, "targets": {0: {"name": ["long"]}}}) == {
        "person.email": ["bad"],
        "targets.0.name": ["long"],
    }


@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800"])
@pytest.mark.parametrize("where", ["person.given_name", "person.region", "comment"])
def test_unstorable_characters_in_signer_text_name_the_field(bad: str, where: str) -> None:
    body: dict[str, Any] = {"person": {"email": "a@example.org"}}
    if where == "comment":
        body["comment"] = bad
    else:
        body["person"][where.split(".")[1]] = bad
    with pytest.raises(ValidationError) as caught:
        SignRequestSchema().load(body)
    assert where in dotted(caught.value.messages)


@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800"])
@pytest.mark.parametrize(
    ("texts", "targets", "field"),
    [
        ({"en": {"title": "{}", "text": "X"}}, [], "texts.en.value.title"),
        ({"en": {"title": "T", "text": "{}"}}, [], "texts.en.value.text"),
        ({"en": {"title": "T", "text": "X"}}, [{"name": "{}"}], "targets.0.name"),
    ],
)
def test_unstorable_characters_in_petition_texts_name_the_field(
    bad: str, texts: dict[str, dict[str, str]], targets: list[dict[str, str]], field: str
) -> None:
    def fill(values: dict[str, str]) -> dict[str, str]:
        return {k: bad if v == "{}" else v for k, v in values.items()}

    body = {
        "campaign_id": "c1",
        "default_locale": "en",
        "texts": {locale: fill(text) for locale, text in texts.items()},
        "targets": [fill(target) for target in targets],
    }
    with pytest.raises(ValidationError) as caught:
        PetitionCreateSchema().load(body)
    assert field in dotted(caught.value.messages)


def test_text_outside_the_unstorable_characters_is_kept() -> None:
    data = SignRequestSchema().load(
        {"person": {"email": "a@example.org", "given_name": "Ngô 😀"}, "comment": "नमस्ते"}
    )
    assert data["person"]["given_name"] == "Ngô 😀" and data["comment"] == "नमस्ते"


@pytest.mark.parametrize("spoken", [5, True, {"a": 1}, "fr", ["fr", 5], [None]])
def test_languages_spoken_must_be_a_list_of_tags(spoken: object) -> None:
    body = {"person": {"email": "a@example.org", "languages_spoken": spoken}}
    with pytest.raises(ValidationError) as caught:
        SignRequestSchema().load(body)
    assert "person.languages_spoken" in dotted(caught.value.messages)


@pytest.mark.parametrize(("spoken", "language"), [(["fr", "en"], "fr"), ([], None), (None, None)])
def test_the_first_language_spoken_is_the_language(spoken: object, language: str | None) -> None:
    data = SignRequestSchema().load(
        {"person": {"email": "a@example.org", "languages_spoken": spoken}}
    )
    assert data["person"]["language"] == language


@pytest.mark.parametrize("page", ["1000001", str(2**63)])
def test_pages_have_a_ceiling(page: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ListQuerySchema().load({"page": page})
    assert "page" in caught.value.messages
    assert ListQuerySchema().load({"page": "1000000"})["page"] == 10**6


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("postal_addresses", {"postal_code": "94110", "country": "US"}),
        ("phone_numbers", {"number": "+14155552671"}),
        ("email_addresses", "a@example.org"),
        ("postal_addresses", ["94110"]),
    ],
)
def test_an_osdi_list_sent_as_something_else_is_refused_naming_it(field: str, value: Any) -> None:
    """Read as none, the postal code or number it held was dropped without a word."""
    body = {"person": {"email": "a@example.org", field: value}}
    with pytest.raises(ValidationError) as caught:
        SignRequestSchema().load(body)
    assert f"person.{field}" in dotted(caught.value.messages)


def test_osdi_lists_give_the_primary_items_details() -> None:
    emails = [{"address": "b@example.org"}, {"address": "a@example.org", "primary": True}]
    person = {
        "email_addresses": emails,
        "postal_addresses": [{"postal_code": "94110", "country": "US", "region": "CA"}],
    }
    data = SignRequestSchema().load({"person": person})["person"]
    assert (data["email"], data["postal_code"], data["country"]) == ("a@example.org", "94110", "US")


@pytest.mark.parametrize("twin", ["EN", "en_US", "en-us"])
def test_two_texts_for_one_language_are_refused(twin: str) -> None:
    """Both keys name one language: one text silently overwrote the other."""
    text = {"title": "A title", "text": "The text"}
    first = "en-US" if twin != "EN" else "en"
    body = {"campaign_id": "camp-1", "default_locale": first, "texts": {first: text, twin: text}}
    with pytest.raises(ValidationError) as caught:
        PetitionCreateSchema().load(body)
    assert "texts" in dotted(caught.value.messages)
