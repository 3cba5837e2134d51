"""Alert content's {{ variables }}: filled for each recipient, escaped where HTML needs it."""

from __future__ import annotations

from services.notifications.audience import Supporter
from services.notifications.messages import (
    PREVIEW_HTML_TAG,
    PREVIEW_TEXT_TAG,
    TOKEN_TAG,
    Footer,
    bulk_email,
    fill_text,
)
from services.notifications.senders import substitute

SHARED = {
    "organization_name": "Rainbow & Bridge",
    "campaign_title": "Fund <translation> now",
    "postal_address": "1 Unity Way, Oakland",
}
FOOTER = Footer(
    "Rainbow & Bridge",
    "1 Unity Way, Oakland",
    f"https://n/u/{TOKEN_TAG}",
    f"https://n/p/{TOKEN_TAG}",
)
CONTENT = {
    "email_subject": "{{ given_name }}, {{campaign_title}} needs you",
    "email_text": "Hi {{ given_name }} {{ family_name }}!\n"
    "{{ organization_name }} asks: call today.\nLeave: {{ unsubscribe_url }}",
    "email_html": "<p>Hi {{ given_name }}!</p><p>{{ organization_name }}: {{ campaign_title }}</p>",
    "discreet_email_subject": "{{ given_name }}, an update for you",
}


def person(given: str | None, family: str | None = None) -> Supporter:
    return Supporter(
        "s-1",
        "mei@example.org",
        "h",
        None,
        None,
        given,
        family,
        None,
        "en",
        "UTC",
        False,
        "tok",
        "en",
    )


def test_shared_variables_are_written_in_once_and_escaped_in_html():
    email = bulk_email(CONTENT, "en", SHARED, FOOTER)
    assert email.subject == "-given_name-, Fund <translation> now needs you"
    assert "Rainbow & Bridge asks: call today." in email.text
    assert "<p>Rainbow &amp; Bridge: Fund &lt;translation&gt; now</p>" in email.html
    assert "{{" not in email.text + email.html + email.subject
    assert f"Leave: https://n/u/{TOKEN_TAG}" in email.text  # the recipient's token, substituted


def test_each_recipient_gets_their_own_name_and_links_by_substitution():
    email = bulk_email(CONTENT, "en", SHARED, FOOTER)
    subs = email.substitutions("t", person("Mei <3", "Lin"))
    assert substitute(email.subject, subs) == "Mei <3, Fund <translation> now needs you"
    text = substitute(email.text, subs)
    assert "Hi Mei <3 Lin!" in text and "Leave: https://n/u/t" in text
    html = substitute(email.html, subs)
    assert "<p>Hi Mei &lt;3!</p>" in html and 'href="https://n/u/t"' in html
    assert 'href="https://n/p/t"' in html and "https://n/p/t" in text  # the footer's links
    assert substitute(email.discreet_subject or "", subs) == "Mei <3, an update for you"


def test_a_supporter_without_a_name_is_greeted_as_a_friend_in_their_language():
    email = bulk_email(CONTENT, "en", SHARED, FOOTER)
    assert substitute(email.text, email.substitutions("t", person(None))).startswith("Hi friend !")
    tagalog = bulk_email(CONTENT, "tl", SHARED, FOOTER)
    assert "Hi kaibigan" in substitute(tagalog.text, tagalog.substitutions("t", person(None)))
    blank = substitute(email.text, email.substitutions("t", person("   ")))
    assert blank.startswith("Hi friend !")  # a name of spaces is no name


def test_only_the_variables_in_use_ride_with_each_recipient():
    plain = {"email_subject": "News", "email_text": "From {{ organization_name }}"}
    email = bulk_email(plain, "en", SHARED, FOOTER)
    assert email.substitutions("t", person("Mei")) == {TOKEN_TAG: "t"}
    assert email.html.startswith("<pre>From Rainbow &amp; Bridge</pre>")


def test_a_text_message_is_filled_for_its_recipient():
    body = fill_text("{{ given_name }}: {{organization_name}} votes on {{ campaign_title }}", "ja",
                     SHARED, person(None))  # fmt: skip
    assert body == "サポーター: Rainbow & Bridge votes on Fund <translation> now"


def test_without_a_discreet_subject_discreet_supporters_get_a_neutral_one_in_their_language():
    content = {k: v for k, v in CONTENT.items() if k != "discreet_email_subject"}
    email = bulk_email(content, "en", SHARED, FOOTER)
    assert email.discreet_subject == "An update for you"
    korean = bulk_email(content, "ko", SHARED, FOOTER)
    assert korean.discreet_subject not in (email.discreet_subject, korean.subject)
    assert "translation" not in korean.discreet_subject


def test_a_discreet_recipients_preview_line_is_their_subject_filled_in_and_escaped():
    """The preview holds the names themselves, escaped in the HTML: a tag left in a
    substitution's value would depend on the provider substituting it a second time, and a
    text value put in the HTML part unescaped would be markup."""
    email = bulk_email(CONTENT, "en", SHARED, FOOTER, previews=True)
    mei = person("<Mei>")._replace(discreet=True)
    values = email.substitutions("tok", mei)
    assert values[PREVIEW_TEXT_TAG] == "<Mei>, an update for you\n\n"
    assert "&lt;Mei&gt;, an update for you" in values[PREVIEW_HTML_TAG]
    assert (
        "<Mei>" not in values[PREVIEW_HTML_TAG] and "-given_name-" not in values[PREVIEW_HTML_TAG]
    )
    assert email.substitutions("tok", person("Mei"))[PREVIEW_HTML_TAG] == ""  # not discreet
