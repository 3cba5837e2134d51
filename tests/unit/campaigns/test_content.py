"""Alert content rules: SMS segments, template variables, complete locales, discreet texts."""

from __future__ import annotations

import time
import unicodedata

import pytest

from services.campaigns import content
from shared.errors import FieldError

TITLES = {"en": "Stop the Deportations", "vi": "Dừng trục xuất"}


def complete(**changes: str | None) -> dict[str, str | None]:
    texts: dict[str, str | None] = {
        "email_subject": "Act now, {{ given_name }}",
        "email_html": "<p>Call today. {{ unsubscribe_url }}</p>",
        "email_text": "Call today. {{ unsubscribe_url }}",
        "sms_text": "{{ organization_name }}: call your senator today.",
    }
    texts.update(changes)
    return texts


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters cost two septets
        ("€" * 81, "GSM-7", 2),
        ("ă" * 70, "UCS-2", 1),
        ("ă" * 71, "UCS-2", 2),
        ("😀" * 35, "UCS-2", 1),  # astral characters are two UTF-16 units
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_sms_segments_follow_gsm7_and_ucs2_limits(text: str, encoding: str, segments: int) -> None:
    measure = content.measure_sms(text)
    assert (measure.encoding, measure.segments) == (encoding, segments)


def test_unknown_template_variable_is_rejected_naming_the_field() -> None:
    with pytest.raises(FieldError) as caught:
        content.check_content(
            {"en": complete(sms_text="Hi {{ frist_name }}")}, ["sms"], "en", TITLES, "Org"
        )
    assert "content.en.sms_text" in caught.value.errors
    assert "frist_name" in caught.value.errors["content.en.sms_text"][0]


def test_unbalanced_braces_are_rejected() -> None:
    with pytest.raises(FieldError) as caught:
        content.check_template("Hi {{ given_name }", "content.en.sms_text", {"given_name"})
    assert caught.value.errors == {"content.en.sms_text": ["Unbalanced {{ }} in the template."]}


def test_every_locale_must_be_complete_for_every_channel() -> None:
    texts = {"en": complete(), "vi": complete(email_html=None)}
    with pytest.raises(FieldError) as caught:
        content.check_content(texts, ["email", "sms"], "en", TITLES, "Org")
    assert list(caught.value.errors) == ["content.vi.email_html"]
    # The same content is complete when only SMS goes out.
    content.check_content(texts, ["sms"], "en", TITLES, "Org")


def test_default_locale_needs_content() -> None:
    with pytest.raises(FieldError) as caught:
        content.check_content({"vi": complete()}, ["sms"], "en", TITLES, "Org")
    assert list(caught.value.errors) == ["content.en"]


def test_discreet_texts_cannot_name_the_campaign_or_use_revealing_variables() -> None:
    with pytest.raises(FieldError) as caught:
        content.check_content(
            {"en": complete(sms_discreet_text="About stop the deportations")},
            ["sms"],
            "en",
            TITLES,
            "Org",
        )
    assert list(caught.value.errors) == ["content.en.sms_discreet_text"]
    with pytest.raises(FieldError) as caught:
        content.check_content(
            {"en": complete(discreet_email_subject="News from {{ organization_name }}")},
            ["email"],
            "en",
            TITLES,
            "Org",
        )
    assert list(caught.value.errors) == ["content.en.discreet_email_subject"]


def test_sms_length_counts_the_real_title_and_organization_and_worst_case_names() -> None:
    report = content.check_content(
        {"en": complete(sms_text="{{ given_name }} {{ organization_name }}")},
        ["sms"],
        "en",
        TITLES,
        "Asian Queer Alliance",
    )
    # 20 characters assumed for a given name, a space, then the organization's 20, and the
    # opt-out line the sender adds (" Reply STOP to opt out.").
    assert report["en"]["sms_text"] == {"encoding": "GSM-7", "length": 64, "segments": 1}


def test_a_named_text_shows_what_it_costs_when_the_name_is_outside_gsm() -> None:
    """One letter outside the GSM alphabet (Trần, 李) makes a whole text UCS-2: a named text
    that is 2 segments for an ASCII name is 4 for such a recipient, and the organizer is told."""
    text = "{{ given_name }}, the county board votes on language access Thursday. " * 3
    report = content.check_content(
        {"en": complete(sms_text=text.strip())}, ["sms"], "en", TITLES, "Asian Queer Alliance"
    )
    measure = report["en"]["sms_text"]
    assert (measure["encoding"], measure["segments"]) == ("GSM-7", 2)
    assert measure["segments_with_a_name_outside_gsm"] == 4  # 244 UTF-16 units, 67 a segment
    plain = content.check_content(
        {"en": complete(sms_text="The county board votes Thursday.")}, ["sms"], "en", TITLES,
        "Asian Queer Alliance",
    )  # fmt: skip
    assert "segments_with_a_name_outside_gsm" not in plain["en"]["sms_text"]


def test_sms_length_counts_what_is_sent_where_a_locale_has_no_title() -> None:
    """A locale without its own title is sent the longest one: measured so, not as empty."""
    long_title = "Stop the deportations of our neighbours " * 3
    report = content.check_content(
        {"zh-Hant": complete(sms_text="{{ campaign_title }} Reply STOP to end")},
        ["sms"],
        "zh-Hant",
        {"en": long_title},
        "Org",
    )
    assert report["zh-Hant"]["sms_text"]["length"] == len(long_title) + len(" Reply STOP to end")


def test_a_discreet_text_names_no_community_the_coalition_serves() -> None:
    """On a lock screen "Trans rights rally" says as much as the campaign's title."""
    labels = ["trans", "LGBTQ+", "mixed-asian-heritage"]
    for text in ("Trans rights rally Sat 2pm", "LGBTQ rally Sat", "LGBTQ+ meetup",
                 "For mixed Asian heritage families: call today"):  # fmt: skip
        with pytest.raises(FieldError) as caught:
            content.check_content(
                {"en": complete(sms_discreet_text=text)}, ["sms"], "en", TITLES, "Org", labels
            )
        assert list(caught.value.errors) == ["content.en.sms_discreet_text"]
        assert "communities" in caught.value.errors["content.en.sms_discreet_text"][0]
    # As words: "Transit strike" names no community.
    fine = complete(sms_discreet_text="Transit strike: meet at 2pm")
    assert content.check_content({"en": fine}, ["sms"], "en", TITLES, "Org", labels)


def test_a_discreet_text_names_no_title_in_any_language_nor_the_organization() -> None:
    for texts in (
        complete(sms_discreet_text="\u660e\u5929 Stop the Deportations \u96c6\u5408"),
        complete(sms_discreet_text="\u660e\u5929 Rainbow Lantern Alliance \u96c6\u5408"),
    ):
        with pytest.raises(FieldError) as caught:
            content.check_content(
                {"zh-Hant": texts}, ["sms"], "zh-Hant", TITLES, "Rainbow Lantern Alliance"
            )
        assert list(caught.value.errors) == ["content.zh-Hant.sms_discreet_text"]
    # Chinese, Japanese and Korean are written without spaces, or with particles attached.
    against_hate = "\u53cd\u5bf9\u4ec7\u6068"
    kinship_ko = "\ud0b9\uc2ed"
    for text, name in (
        (f"\u8bf7\u652f\u6301{against_hate}\u884c\u52a8", against_hate),
        (f"{kinship_ko}\uc740 \ub0b4\uc77c", kinship_ko),
    ):
        with pytest.raises(FieldError):
            content.check_content(
                {"zh-Hans": complete(sms_discreet_text=text)}, ["sms"], "zh-Hans", TITLES, name
            )
    # A partner organization's name is as telling as the lead's.
    with pytest.raises(FieldError) as caught:
        content.check_content(
            {"zh-Hant": complete(sms_discreet_text="\u660e\u5929 Rainbow Lantern \u96c6\u5408")},
            ["sms"], "zh-Hant", TITLES, "Hapa Voices", ["Kin Center", "Rainbow Lantern"],
        )  # fmt: skip
    assert list(caught.value.errors) == ["content.zh-Hant.sms_discreet_text"]
    # A short Latin name is matched as a word, not inside other words.
    plain = complete(sms_discreet_text="Contact us tomorrow")
    assert content.check_content({"en": plain}, ["sms"], "en", TITLES, "Act")


def test_too_many_segments_is_refused_with_the_count() -> None:
    with pytest.raises(FieldError) as caught:
        content.check_content({"en": complete(sms_text="ă" * 300)}, ["sms"], "en", TITLES, "O")
    message = caught.value.errors["content.en.sms_text"][0]
    assert "5 segments" in message and "UCS-2" in message


def test_a_greeting_that_a_name_outside_gsm_makes_too_long_is_refused() -> None:
    """'Hi {{ given_name }}' and 585 GSM characters fit 4 segments, but for a recipient named
    Thảo, Trần or 李 the whole text goes as UCS-2: 10 segments, 2.5 times the cost."""
    text = "Hi {{ given_name }}, " + "x" * 560
    with pytest.raises(FieldError) as caught:
        content.check_content({"en": complete(sms_text=text)}, ["sms"], "en", TITLES, "O")
    message = caught.value.errors["content.en.sms_text"][0]
    assert "outside the GSM alphabet" in message and "at most 4" in message
    fits = "Hi {{ given_name }}, " + "x" * 200  # UCS-2 with a wide name: 4 segments
    assert content.check_content({"en": complete(sms_text=fits)}, ["sms"], "en", TITLES, "O")


@pytest.mark.parametrize(
    "discreet",
    [
        unicodedata.normalize("NFD", "Mai gặp ở Tết Pride nhé"),  # Unikey's "Unicode tổ hợp"
        "Mai gặp ở \uff34\u1ebf\uff54 \uff30\uff52\uff49\uff44\uff45 nhé",  # full width
    ],
)
def test_a_discreet_text_names_no_title_in_another_unicode_form(discreet: str) -> None:
    titles = {"vi": unicodedata.normalize("NFC", "Tết Pride")}
    with pytest.raises(FieldError) as caught:
        content.check_content(
            {"vi": complete(sms_discreet_text=discreet)}, ["sms"], "vi", titles, "Hapa Voices"
        )
    assert list(caught.value.errors) == ["content.vi.sms_discreet_text"]


def test_an_unclosed_variable_with_a_long_run_of_spaces_is_refused_at_once() -> None:
    """The variable pattern's three parts could share a run of spaces in every way: "{{" and
    4,000 spaces took 51 s to refuse, holding a whole API worker; 200,000 took for ever."""
    started = time.perf_counter()
    with pytest.raises(FieldError, match="Unbalanced"):
        content.check_template("{{" + " " * 200_000, "content.en.email_html", {"given_name"})
    assert time.perf_counter() - started < 2.0


def test_variables_are_named_without_their_surrounding_spaces() -> None:
    text = "{{given_name}}, {{  organization_name  }} and {{ campaign_title }}"
    content.check_template(text, "content.en.sms_text", content.SMS_VARIABLES)
    assert content.expand_for_length(text, {"given_name": "Mei", "organization_name": "Org"}) == (
        "Mei, Org and " + "x" * content.PERSONAL.get("campaign_title", 20)
    )


def test_a_subject_is_one_line_and_the_html_leaves_room_for_the_footer() -> None:
    """A line break in a subject breaks the header; HTML past Gmail's clipping point hides the
    footer with the unsubscribe link and postal address behind "[Message clipped]"."""
    for name in ("email_subject", "discreet_email_subject"):
        with pytest.raises(FieldError) as caught:
            content.check_content(
                {"en": complete(**{name: "Vote Tuesday\nBcc: everyone"})}, ["email"], "en",
                TITLES, "Org",
            )  # fmt: skip
        assert list(caught.value.errors) == [f"content.en.{name}"]
    big = "<p>" + "\u8acb" * 30_001 + "</p>"  # 90 KB in UTF-8, a third of it in characters
    with pytest.raises(FieldError) as caught:
        content.check_content({"zh-Hant": complete(email_html=big)}, ["email"], "zh-Hant",
                              TITLES, "Org")  # fmt: skip
    assert list(caught.value.errors) == ["content.zh-Hant.email_html"]
    fits = "<p>" + "a" * 89_000 + "</p>"
    assert content.check_content({"en": complete(email_html=fits)}, ["email"], "en", TITLES, "Org")


def test_an_sms_alert_without_a_discreet_text_warns_that_discreet_supporters_get_none() -> None:
    plain = complete(sms_discreet_text=None)
    assert content.warnings({"en": plain}, ["sms"], "en") == {
        "content.en.sms_discreet_text": [
            "Supporters in discreet mode get no text of this alert without one (their"
            " delivery is counted failed, no_discreet_text)."
        ]
    }
    # The default language's discreet text reaches them whatever their language: enough.
    both = {"en": complete(sms_discreet_text="Reminder: a call to make today."), "tl": plain}
    assert content.warnings(both, ["sms"], "en") == {}
    assert content.warnings({"en": plain}, ["email"], "en") == {}


def test_a_text_is_measured_with_the_line_it_will_be_sent_with() -> None:
    """Whether a text already says how to opt out is read from what the organizer wrote, at
    the send and in the preview: the measure too. An organization named "To Be Free" after
    "Reply STOP" is not an instruction, and the line it will carry is counted."""
    from shared.templates import STOP_SUFFIX

    measured = content.measure_locale(
        {"sms_text": "Reply STOP {{ organization_name }}"}, "en", {"en": "T"}, "To Be Free"
    )
    sent = f"Reply STOP To Be Free {STOP_SUFFIX}"
    assert measured["sms_text"]["length"] == len(sent)
