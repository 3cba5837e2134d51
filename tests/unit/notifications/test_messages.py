"""Localized messages and the compliance footer."""

from __future__ import annotations

import pytest

from services.notifications.compliance import (
    ONE_CLICK_HEADERS,
    list_token,
    list_unsubscribe_header,
    parse_list_token,
)
from services.notifications.messages import (
    CATALOGUE,
    Footer,
    discreet,
    render_sms,
    render_transactional,
)
from services.notifications.senders import EmailBatch, Recipient
from services.notifications.senders.sendgrid import mail_body
from tests.fakes.providers import validate_mail

FOOTER = Footer("Rainbow Bridge", "1 Unity Way, Oakland", "https://x/u/t", "https://x/p/t")


@pytest.mark.parametrize(
    ("locale", "marker"),
    [
        ("en", "Thank you"),
        ("zh-Hans", "\u611f\u8c22"),
        ("zh-Hant", "\u611f\u8b1d"),
        ("ja", "\u3042\u308a\u304c\u3068\u3046"),
        ("ko", "\uac10\uc0ac"),
        ("vi", "C\u1ea3m \u01a1n"),
        ("tl", "Salamat"),
        ("de", "Thank you"),
    ],
)
def test_thank_you_in_each_locale(locale: str, marker: str) -> None:
    rendered = render_transactional("thank_you", locale, {"title": "T", "name": "Mei"}, FOOTER)
    assert marker in rendered.subject
    assert "Mei" in rendered.text


def test_name_and_pronouns_used_and_escaped() -> None:
    params = {"title": "T", "name": "<Jo>", "pronouns": "they/them"}
    rendered = render_transactional("thank_you", "en", params, FOOTER)
    assert "they/them" in rendered.text
    assert "<Jo>" not in rendered.html and "&lt;Jo&gt;" in rendered.html


def test_footer_has_address_and_visible_unsubscribe_link() -> None:
    rendered = render_transactional("thank_you", "ko", {"title": "T"}, FOOTER)
    for body in (rendered.text, rendered.html):
        assert "1 Unity Way, Oakland" in body and "https://x/u/t" in body


def test_a_discreet_emails_preview_names_no_cause() -> None:
    """Inbox lists show the first words after the subject: a discreet supporter's are neutral,
    in the text part and in the HTML (a hidden preheader, padded so the body stays out)."""
    title = "Queer Asian elders' housing"
    plain = render_transactional("thank_you", "vi", {"name": "Lan", "title": title}, None)
    hidden = discreet(plain, "vi")
    neutral = CATALOGUE["vi"]["discreet_subject"]
    assert hidden.subject == neutral and title not in hidden.subject
    assert hidden.text.startswith(neutral + "\n\n") and plain.text in hidden.text
    preheader, _, body = hidden.html.partition("</div>")
    assert preheader.startswith('<div style="display:none') and neutral in preheader
    assert title not in preheader and body == plain.html


def test_sms_welcome_names_stop_and_help() -> None:
    text = render_sms("sms_welcome", "ja", {"org": "Rainbow Bridge"})
    assert "STOP" in text and "HELP" in text and "Rainbow Bridge" in text


def test_list_unsubscribe_headers_follow_rfc_8058() -> None:
    headers = {**ONE_CLICK_HEADERS, **list_unsubscribe_header("https://n.example/unsubscribe/abc")}
    assert headers == {
        "List-Unsubscribe": "<https://n.example/unsubscribe/abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert parse_list_token("k", list_token("k", "abc", "def")) == ("abc", "def")
    assert parse_list_token("k", "nodot") is None


def test_a_batch_of_1000_is_a_valid_sendgrid_request() -> None:
    recipients = [
        Recipient(
            f"p{i}@example.org", None, {"notification_id": str(i)},
            headers=list_unsubscribe_header(f"https://n/u/{i}"),
            substitutions={"-unsubscribe_url-": f"https://n/u/{i}"},
        )
        for i in range(1000)
    ]  # fmt: skip
    batch = EmailBatch(
        "a@example.org", "Org", "Hi", "t", "<p>t</p>", recipients, headers=ONE_CLICK_HEADERS
    )
    body = mail_body(batch)
    assert validate_mail(body) == []
    assert len(body["personalizations"]) == 1000


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("Nguyen, An", "Nguyen An"), ("Kim;\r\nBcc: x", "Kim Bcc: x"), (" , ", None), ("Mei", "Mei")],
)
def test_a_recipients_name_never_holds_what_sendgrid_refuses(typed: str, shown: str | None) -> None:
    """SendGrid refuses a to.name with "," or ";": a name typed "Nguyen, An" cost its owner
    every email. Line breaks would break the header."""
    batch = EmailBatch(
        "a@example.org", "Org", "Hi", "t", None, [Recipient("p@example.org", typed, {"n": "1"})]
    )
    [to] = mail_body(batch)["personalizations"][0]["to"]
    assert to.get("name") == shown


def test_the_link_confirming_preference_changes_is_sent_in_the_persons_language() -> None:
    url = "https://notify.example.org/preferences/tok/confirm"
    rendered = render_transactional("confirm_preferences", "ja", {"confirm_url": url}, None)
    assert rendered.subject == "\u8a2d\u5b9a\u5909\u66f4\u306e\u3054\u78ba\u8a8d"
    assert url in rendered.text and url in rendered.html
