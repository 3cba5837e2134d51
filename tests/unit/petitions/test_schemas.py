"""Request parsing: OSDI shapes, canonical locales, and dotted field names in errors."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from services.petitions.api import dotted
from services.petitions.schemas import PetitionCreateSchema, SignRequestSchema


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


def test_boxes_start_unticked() -> None:
    data = SignRequestSchema().load({"person": {"email": "a@example.org"}})
    assert data["consents"]["partners"] == {}
    assert data["consents"]["email"] is False and data["consents"]["sms"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"person": {"email": "a@example.org", "language": "zz"}}, "person.language"),
        ({"person": {"email": "a@example.org", "country": "USA"}}, "person.country"),
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


def test_dotted_names_nested_and_listed_fields() -> None:
    assert dotted({"person": {"email": ["bad"]}, "targets": {0: {"name": ["long"]}}}) == {
        "person.email": ["bad"],
        "targets.0.name": ["long"],
    }
