"""Alert texts say how to opt out: the sender adds the line unless the text already does."""

from __future__ import annotations

import pytest

from shared.templates import STOP_SUFFIX, with_opt_out


@pytest.mark.parametrize(
    "text",
    ["Stop Asian Hate rally 6pm", "Nonstop calls to the council today", "Meet at the bus stop"],
)
def test_the_word_stop_is_not_an_opt_out_instruction(text: str) -> None:
    assert with_opt_out(text) == f"{text} {STOP_SUFFIX}"


@pytest.mark.parametrize(
    "text",
    ["Rally at 6. Reply STOP to opt out.", "Call today. Text STOP to quit", 'Reply "stop" to end'],
)
def test_a_text_that_says_how_to_opt_out_is_sent_as_written(text: str) -> None:
    assert with_opt_out(text) == text


def test_a_filled_in_name_cannot_take_the_opt_out_line_off() -> None:
    """Whether a text says how to opt out is read from what the organizer wrote: a
    supporter's name reading "Reply STOP to opt out" is not the instruction."""
    template = "{{ given_name }}, the vote is Tuesday."
    body = "Reply STOP to opt out, the vote is Tuesday."
    assert with_opt_out(body, written=template) == f"{body} {STOP_SUFFIX}"
    assert with_opt_out(
        "Vote Tuesday. Reply STOP to quit", written="Vote Tuesday. Reply STOP to quit"
    ).endswith("quit")


@pytest.mark.parametrize(
    ("locale", "body", "line"),
    [
        ("zh-Hans", "今晚集会", "回复STOP退订。"),
        ("zh-TW", "今晚集會", "回覆STOP取消訂閱。"),
        ("ja", "今夜集会", "配信停止はSTOPと返信。"),
        ("ko", "오늘 집회", "수신거부는 STOP으로 회신."),
        ("vi", "Biểu tình tối nay", "Trả lời STOP để hủy đăng ký."),
        ("tl", "Rally mamaya", "I-reply ang STOP para mag-opt out."),
        ("es", "Marcha hoy", STOP_SUFFIX),  # a language Kinship does not write in: English
        (None, "Rally at 6", STOP_SUFFIX),
    ],
)
def test_the_opt_out_line_is_in_the_language_of_the_text(
    locale: str | None, body: str, line: str
) -> None:
    """A Vietnamese reader told only "Reply STOP to opt out." may not know how to stop."""
    assert with_opt_out(body, locale=locale) == f"{body} {line}"


def test_a_gsm7_text_keeps_to_gsm7() -> None:
    """A Vietnamese text written without marks goes in GSM-7, 160 characters a segment: the
    line's marks would make it UCS-2, 70 a segment. So would a Chinese line on a text that
    is all Latin letters."""
    from shared.templates import gsm7

    vietnamese = with_opt_out("Bieu tinh toi nay luc 6 gio", locale="vi")
    assert vietnamese.endswith(" Tra loi STOP de huy dang ky.") and gsm7(vietnamese)
    assert with_opt_out("Rally at 6", locale="zh-Hans") == f"Rally at 6 {STOP_SUFFIX}"


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("en", "Send 'Stop AAPI Hate' to your friends"),
        ("vi", 'Gửi "Stop AAPI Hate" cho bạn bè'),
        ("zh-Hans", "发送“STOP仇恨”给朋友"),
    ],
)
def test_a_quoted_slogan_is_not_the_opt_out_instruction(locale: str, text: str) -> None:
    assert with_opt_out(text, locale=locale) != text


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("zh-Hans", "今晚六点集会。回复STOP退订"),
        ("zh-Hant", "今晚六點集會。回覆「STOP」取消"),
        ("ja", "今夜6時に集会。配信停止はSTOPと返信してください"),
        ("ko", "오늘 6시 집회. 수신거부는 STOP으로 회신"),
        ("vi", "Biểu tình lúc 6 giờ. Trả lời STOP để hủy"),
        ("tl", "Rally mamayang 6. I-reply ang STOP para tumigil"),
        ("vi", "Rally at 6. Reply STOP to opt out."),  # English in any language's text
        ("en", "Rally at 6. Reply \u2018STOP\u2019 to opt out"),  # a phone's curly quotes
        ("en", "Rally at 6. Reply STOP\nKinship"),
        ("en", "Rally at 6. Reply STOP at any time"),
        ("en", "Rally at 6. Reply STOP (or HELP)"),
        ("zh-Hans", "今晚集会。回复STOP即可退订"),
        ("vi", "Biểu tình lúc 6 giờ. Nhắn STOP đến 8xxx"),
    ],
)
def test_a_text_saying_how_to_opt_out_in_its_language_is_sent_as_written(
    locale: str, text: str
) -> None:
    assert with_opt_out(text, locale=locale) == text


def test_the_word_stop_in_another_language_is_not_an_instruction() -> None:
    """停止亚裔仇恨 ("stop Asian hate") names the cause; it says nothing of how to opt out."""
    text = "停止亚裔仇恨：今晚六点集会"
    assert with_opt_out(text, locale="zh-Hans") == f"{text} 回复STOP退订。"
