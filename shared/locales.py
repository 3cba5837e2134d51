"""The languages Kinship writes its own messages and pages in, and how a tag maps to one.

Organizers' content (petition texts, alerts) may be in any language; what the services write
themselves (thank-you emails, SMS replies, confirmation pages) exists in these, else English.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from babel import Locale, localedata
from babel.core import get_global

_CLDR = Locale("en")
# ISO 3166-1 alpha-2 codes (CLDR's regions of two letters, without ZZ, "unknown region").
COUNTRIES = frozenset(
    str(code) for code in _CLDR.territories if re.fullmatch("[A-Z]{2}", str(code)) and code != "ZZ"
)
# The subtags of language[-Script][-REGION] that CLDR names: every language it has a name or
# data for, not only those Babel has formatting data for (which left out Hmong, Samoan, Chamorro,
# Marshallese, Chuukese, Ilocano, Kapampangan and Waray), without the codes that name no
# language (und, mis, mul, zxx), no script (Zyyy, Zzzz...) or no region (ZZ).
_LANGUAGES = frozenset(
    code.split("_")[0]
    for code in (*map(str, _CLDR.languages), *localedata.locale_identifiers())
    if re.fullmatch("[a-z]{2,3}", code.split("_")[0])
) - {"und", "mis", "mul", "zxx", "root"}
_SCRIPTS = frozenset(str(code) for code in _CLDR.scripts if not str(code).startswith("Z"))
_REGIONS = frozenset(
    str(code) for code in _CLDR.territories if re.fullmatch("[A-Z]{2}|[0-9]{3}", str(code))
) - {"ZZ"}
_SUBTAG = re.compile(r"[A-Za-z0-9]{1,8}\Z")
# Deprecated codes clients still send (old Java and Android: in, iw, ji), as CLDR replaces them.
_ALIASES = {
    str(code): str(target)
    for code, target in get_global("language_aliases").items()
    if re.fullmatch("[a-z]{2,3}", str(code)) and code not in _LANGUAGES
}


@functools.lru_cache(maxsize=1024)
def canonical_language_tag(tag: str) -> str:
    """Return language[-Script][-REGION] in canonical case ('pt_br' -> 'pt-BR', 'hmn',
    'zh-hant-tw' -> 'zh-Hant-TW', 'es-419', 'in-ID' -> 'id-ID'); raise ValueError when it is
    not one whose every subtag CLDR names. Variants and extensions (ca-ES-valencia) are
    dropped: what picks a translation is the language, script and region."""
    parts = tag.strip().replace("_", "-").split("-")
    if not all(_SUBTAG.match(part) for part in parts):
        raise ValueError(f"{tag!r} is not a language tag")
    language, _, implied_script = _ALIASES.get(parts[0].lower(), parts[0].lower()).partition("_")
    rest = parts[1:]
    out = [language]
    if rest and len(rest[0]) == 4 and rest[0].isalpha():
        out.append(rest.pop(0).title())
    elif implied_script:
        out.append(implied_script)  # sh: sr-Latn
    if len(out) > 1 and out[1] not in _SCRIPTS:
        raise ValueError(f"unknown script in {tag!r}")
    if rest and (
        len(rest[0]) == 2 and rest[0].isalpha() or len(rest[0]) == 3 and rest[0].isdigit()
    ):
        out.append(rest.pop(0).upper())
        if out[-1] not in _REGIONS:
            raise ValueError(f"unknown region in {tag!r}")
    if language not in _LANGUAGES:
        raise ValueError(f"unknown locale {tag!r}")
    return "-".join(out)


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


def best_match(wanted: Sequence[str], available: Iterable[str], default: str) -> str:
    """Pick the available tag (a content variant's) that best serves the wanted ones, in order
    of preference: the tag itself; its shorter forms (zh-Hant-TW, zh-Hant; es-MX, es); for
    Chinese, a variant in the same script (zh-TW and yue-HK read zh-Hant, never zh-Hans
    first); then, after every wanted tag had those chances, any variant of its language;
    else default. Variants are compared case-blind and tried in sorted order, so every
    caller picks the same one."""
    have = sorted(available)
    by_lower = {tag.lower(): tag for tag in have}
    tags = [tag.replace("_", "-").strip() for tag in wanted if tag and tag.strip()]
    for tag in tags:
        parts = tag.lower().split("-")
        chinese = parts[0] in _CHINESE
        # Chinese stops short of the bare language: "zh" is written in Simplified characters.
        for end in range(len(parts), min(len(parts) - 1, 1 if chinese else 0), -1):
            hit = by_lower.get("-".join(parts[:end]))
            if hit:
                return hit
        if chinese:
            script = resolve_locale(tag)
            hit = next(
                (t for t in have if t.split("-")[0].lower() in _CHINESE
                 and resolve_locale(t) == script),
                None,
            )  # fmt: skip
            if hit:
                return hit
    for tag in tags:
        base = tag.split("-", 1)[0].lower()
        hit = by_lower.get(base) or next(
            (t for t in have if t.split("-", 1)[0].lower() == base), None
        )
        if hit:
            return hit
    return default


def language_tag(requested: str | None) -> str | None:
    """Return the tag a person's language is kept and targeted by: the supported locale it
    reads as (zh-TW -> zh-Hant, ko-KR -> ko), else the tag itself (es, es-MX, fr)."""
    if not requested or not requested.strip():
        return None
    tag = requested.strip().replace("_", "-")
    if tag.split("-", 1)[0].lower() == "yue":
        return tag  # Cantonese is read in zh-Hant, but kept as itself: alerts may target it
    return resolve_locale(tag, "") or tag
