"""The double opt-in link's page: every written language, escaped titles, and a button to POST."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.petitions.pages import STRINGS, confirmation
from shared.locales import SUPPORTED_LOCALES

PETITION = SimpleNamespace(
    default_locale="en",
    texts={
        "en": {"title": "Fund <b>language</b> access"},
        "zh-Hant": {"title": "\u8cc7\u52a9\u8a9e\u8a00\u670d\u52d9"},
    },
)


def test_every_written_language_has_every_string() -> None:
    assert set(STRINGS) == set(SUPPORTED_LOCALES)
    for strings in STRINGS.values():
        assert set(strings) == set(STRINGS["en"])
        assert "{title}" in strings["lead"] and "{title}" in strings["confirmed"]


def test_a_pending_link_asks_for_a_click_in_the_signers_language() -> None:
    page = confirmation("pending", PETITION, "zh-Hant")  # the variant they signed
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert '<html lang="zh-Hant">' in html and STRINGS["zh-Hant"]["button"] in html
    assert '<form method="post">' in html  # no action: it posts back to the link itself
    assert "\u8cc7\u52a9\u8a9e\u8a00\u670d\u52d9" in html


def test_an_organizers_title_is_escaped_and_other_languages_fall_back_to_english() -> None:
    html = confirmation("pending", PETITION, "en").get_data(as_text=True)
    assert "&lt;b&gt;language&lt;/b&gt;" in html and "<b>" not in html
    french = confirmation("confirmed", PETITION, "fr").get_data(as_text=True)
    assert STRINGS["en"]["title"] in french and "<form" not in french


@pytest.mark.parametrize(("state", "status"), [("gone", 404), ("closed", 409)])
def test_a_dead_link_says_why_without_a_button(state: str, status: int) -> None:
    page = confirmation(state, None if state == "gone" else PETITION, "ko")
    assert page.status_code == status
    html = page.get_data(as_text=True)
    assert STRINGS["ko"][state] in html and "<form" not in html
