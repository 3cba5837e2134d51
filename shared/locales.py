"""The languages Kinship writes its own messages and pages in, and how a tag maps to one.

Organizers' content (petition texts, alerts) may be in any language; what the services write
themselves (thank-you emails, SMS replies, confirmation pages) exists in these, else English.
"""

from __future__ import annotations

import re

from babel import Locale

# ISO 3166-1 alpha-2 codes (CLDR's regions of two letters, without ZZ, "unknown region").
COUNTRIES = frozenset(
    str(code)
    for code in Locale("en").territories
    if re.fullmatch("[A-Z]{2}", str(code)) and code != "ZZ"
)

SUPPORTED_LOCALES = ("en", "zh-Hans", "zh-Hant", "ja", "ko", "vi", "tl")
_LOCALE_ALIASES = {
    "zh": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh-sg": "zh-Hans",
    "zh-hans": "zh-Hans",
    "zh-tw": "zh-Hant",
    "zh-hk": "zh-Hant",
    "zh-mo": "zh-Hant",
    "zh-hant": "zh-Hant",
    "fil": "tl",
    "tl": "tl",
    "ja": "ja",
    "ko": "ko",
    "vi": "vi",
    "en": "en",
}
_CHINESE = ("zh", "yue")  # Mandarin and the rest ("zh"), and Cantonese, which has its own tag


def resolve_locale(requested: str | None, fallback: str = "en") -> str:
    """Map a language tag (zh-TW, fil, ko-KR...) to a supported locale, else the fallback."""
    if not requested:
        return fallback
    tag = requested.replace("_", "-").strip().lower()
    if tag in _LOCALE_ALIASES:
        return _LOCALE_ALIASES[tag]
    base, *subtags = tag.split("-")
    if base in _CHINESE:
        # The script says which characters, when given (zh-Hans-HK is Simplified); else the
        # region, else the language's usual one (Cantonese readers mostly read Traditional).
        if "hans" in subtags or "hant" in subtags:
            return "zh-Hans" if "hans" in subtags else "zh-Hant"
        traditional = any(p in ("tw", "hk", "mo", "yue") for p in subtags) or base == "yue"
        return "zh-Hant" if traditional else "zh-Hans"
    return _LOCALE_ALIASES.get(base, fallback)


def language_tag(requested: str | None) -> str | None:
    """Return the tag a person's language is kept and targeted by: the supported locale it
    reads as (zh-TW -> zh-Hant, ko-KR -> ko), else the tag itself (es, es-MX, fr)."""
    if not requested or not requested.strip():
        return None
    tag = requested.strip().replace("_", "-")
    if tag.split("-", 1)[0].lower() == "yue":
        return tag  # Cantonese is read in zh-Hant, but kept as itself: alerts may target it
    return resolve_locale(tag, "") or tag
