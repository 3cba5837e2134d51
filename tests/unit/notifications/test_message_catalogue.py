"""The message catalogue: every locale complete, with English's placeholders and SMS keywords."""

from __future__ import annotations

from string import Formatter

import pytest

from services.notifications.messages import CATALOGUE, text

LOCALES = sorted(CATALOGUE)
OTHER_LOCALES = [locale for locale in LOCALES if locale != "en"]


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in Formatter().parse(template) if field is not None}


@pytest.mark.parametrize("locale", OTHER_LOCALES)
def test_every_locale_has_every_english_key(locale: str) -> None:
    assert sorted(set(CATALOGUE["en"]) - set(CATALOGUE[locale])) == []


@pytest.mark.parametrize("locale", OTHER_LOCALES)
def test_every_locale_has_no_key_english_lacks(locale: str) -> None:
    assert sorted(set(CATALOGUE[locale]) - set(CATALOGUE["en"])) == []


@pytest.mark.parametrize("locale", LOCALES)
def test_every_string_has_exactly_the_english_placeholders(locale: str) -> None:
    mismatched = {
        key: placeholders(template)
        for key, template in CATALOGUE[locale].items()
        if key in CATALOGUE["en"] and placeholders(template) != placeholders(CATALOGUE["en"][key])
    }
    assert mismatched == {}


def test_placeholders_are_read_from_templates() -> None:
    assert placeholders("{org}: reply HELP, {{not}} one. Help: {contact}") == {"org", "contact"}


@pytest.mark.parametrize("locale", LOCALES)
def test_sms_strings_keep_the_english_carrier_keywords(locale: str) -> None:
    welcome = CATALOGUE[locale]["sms_welcome"]
    assert "STOP" in welcome and "HELP" in welcome
    assert "STOP" in CATALOGUE[locale]["sms_help"]


@pytest.mark.parametrize("locale", OTHER_LOCALES)
def test_footer_unsubscribe_is_translated_rather_than_english(locale: str) -> None:
    assert text(locale, "footer_unsubscribe") != text("en", "footer_unsubscribe")
