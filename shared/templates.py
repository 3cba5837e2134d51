"""The `{{ variable }}` syntax of alert content: the campaigns service checks it, notifications
fills it in for each recipient."""

from __future__ import annotations

import re
from collections.abc import Callable

from shared.locales import resolve_locale

# The name's surrounding spaces are stripped after the match: `\{\{\s*([^{}]*?)\s*\}\}` lets
# its three parts share a run of spaces in every way, and "{{" and 4,000 spaces without a
# closing "}}" took 51 s to refuse (cubic), holding the GIL of a whole API worker.
VARIABLE = re.compile(r"\{\{([^{}]*)\}\}")


def variables(text: str) -> list[str]:
    """Return the names of the variables a template uses, in order of use."""
    return [match.group(1).strip() for match in VARIABLE.finditer(text)]


def fill(text: str, value: Callable[[str], str]) -> str:
    """Replace every variable by value(its name)."""
    return VARIABLE.sub(lambda match: value(match.group(1).strip()), text)


# GSM 03.38: the basic set costs one septet, the extension set two (escape + char).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


def gsm7(text: str) -> bool:
    """Whether an SMS text goes in GSM-7 (160 characters a segment, not UCS-2's 70)."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text)


# Every alert text tells how to stop them (carriers and the TCPA expect it in each message),
# in the language of the text: a Vietnamese reader told only in English may not know how. The
# keyword stays STOP, the one word every carrier and Twilio act on.
STOP_SUFFIXES = {
    "en": "Reply STOP to opt out.",
    "zh-Hans": "回复STOP退订。",
    "zh-Hant": "回覆STOP取消訂閱。",
    "ja": "配信停止はSTOPと返信。",
    "ko": "수신거부는 STOP으로 회신.",
    "vi": "Trả lời STOP để hủy đăng ký.",
    "tl": "I-reply ang STOP para mag-opt out.",
}
STOP_SUFFIX = STOP_SUFFIXES["en"]
# A text that goes in GSM-7 keeps to it: a Vietnamese line with its marks would make it UCS-2,
# twice the segments. Vietnamese is read without them in texts; the others fall back to English.
GSM_STOP_SUFFIXES = {"vi": "Tra loi STOP de huy dang ky.", "tl": STOP_SUFFIXES["tl"]}
# An instruction to stop already in the text, not merely the word: "Stop Asian Hate rally",
# "nonstop" or "bus stop" say nothing of how to opt out. English in any language's text, and
# each language's own way of saying "reply STOP".
# STOP must end there (the sentence, or the words of what it does): 'send "Stop AAPI Hate" to
# your friends' is the cause's name, not an instruction.
_OPEN, _CLOSE = "[\"'“‘«「]?", "[\"'”’»」]?"
# What may follow: the end of the text or of its line, punctuation, or a word of what it does.
_ENDS = r"(?=[ \t]*(?:$|\n|[.!,;:()\-–—。！，；：（）]|{}))"


def _instruction(verb: str, after: str, stop: str = r"STOP\b") -> re.Pattern[str]:
    """An instruction to text STOP: a verb, STOP (maybe quoted), then what may follow it."""
    return re.compile(verb + r"\W{0,3}" + _OPEN + stop + _CLOSE + _ENDS.format(after), re.I)


_OPT_OUT = _instruction(
    r"\b(?:reply|text|txt|send|respond)\b(?:\W{0,3}with)?", r"(?:to|for|if|and|or|at|anytime|now)\b"
)
# Chinese runs STOP into the next word: no word boundary after it.
_CJK_AFTER = "退订|退訂|取消|即可|即|以"
_OPT_OUT_IN = {
    "zh-Hans": _instruction("(?:回复|发送|短信)", _CJK_AFTER, stop="STOP"),
    "zh-Hant": _instruction("(?:回覆|回复|傳送|發送|簡訊)", _CJK_AFTER, stop="STOP"),
    "ja": re.compile(r"STOP[\"'”」]?\W{0,2}(?:と|を)?\W{0,2}(?:返信|送信)", re.I),
    "ko": re.compile(
        r"STOP[\"'”]?\W{0,2}(?:으로|로|을|를|라고)?\W{0,2}(?:회신|답장|전송|보내)", re.I
    ),
    "vi": _instruction("(?:trả lời|tra loi|nhắn|nhan|gửi|gui)", r"(?:để|de|đến|den|tới|toi)\b"),
    "tl": _instruction(r"(?:i-?reply|i-?text|reply|text)(?:\W{0,3}ang)?", r"(?:para|upang|sa)\b"),
}


def with_opt_out(body: str, written: str | None = None, locale: str | None = None) -> str:
    """Return an SMS text that says how to opt out: as written, or with the opt-out line of
    its language added (STOP_SUFFIXES; English for a language Kinship does not write in).

    written: the template body was filled from, whose own wording is what counts: a
    supporter's name reading "reply STOP" must not take the instruction off their texts.
    locale: the language of the text (the alert variant's)."""
    lang = resolve_locale(locale, "en")
    wording = body if written is None else written
    native = _OPT_OUT_IN.get(lang)
    if _OPT_OUT.search(wording) or (native is not None and native.search(wording)):
        return body
    line = STOP_SUFFIXES[lang]
    if not gsm7(line) and gsm7(body):
        line = GSM_STOP_SUFFIXES.get(lang, STOP_SUFFIX)
    return f"{body} {line}"
