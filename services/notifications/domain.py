"""Notification rules as plain functions: time zones, quiet hours, locales, keywords, pacing."""

from __future__ import annotations

import functools
import random
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import pycountry
import zipcodes
from babel.core import get_global
from phonenumbers import timezone as phone_timezone

from shared.locales import resolve_locale

QUIET_START_HOUR = 8  # earliest local hour an SMS may go out
QUIET_END_HOUR = 21  # local hour from which SMS waits for the next morning

# US ZIP codes by first digit: coarse, for a ZIP code the zipcodes data does not know.
_US_ZIP_ZONE = {
    "0": "America/New_York",
    "1": "America/New_York",
    "2": "America/New_York",
    "3": "America/New_York",
    "4": "America/New_York",
    "5": "America/Chicago",
    "6": "America/Chicago",
    "7": "America/Chicago",
    "8": "America/Denver",
    "9": "America/Los_Angeles",
}
_US_ZIP3_ZONE = {"967": "Pacific/Honolulu", "968": "Pacific/Honolulu", "995": "America/Anchorage"}
# Australian postcodes by first digit (state), Darwin's 08xx/09xx apart; a mobile number tells
# nothing (every one reads as Sydney), so Perth's supporters were texted at 05:00.
_AU_POSTCODE_ZONE = {
    "0": "Australia/Sydney",  # 02xx: the ACT
    "1": "Australia/Sydney",
    "2": "Australia/Sydney",
    "3": "Australia/Melbourne",
    "4": "Australia/Brisbane",
    "5": "Australia/Adelaide",
    "6": "Australia/Perth",
    "7": "Australia/Hobart",
    "8": "Australia/Melbourne",
    "9": "Australia/Brisbane",
}
_AU_POSTCODE2_ZONE = {"08": "Australia/Darwin", "09": "Australia/Darwin"}
# Canadian postal codes by first letter (province or territory).
_CA_POSTAL_ZONE = {
    "A": "America/St_Johns",
    "B": "America/Halifax",
    "C": "America/Halifax",
    "E": "America/Moncton",
    **dict.fromkeys("GHJKLMNP", "America/Toronto"),
    "R": "America/Winnipeg",
    "S": "America/Regina",
    "T": "America/Edmonton",
    "V": "America/Vancouver",
    "X": "America/Yellowknife",  # the Northwest Territories; Nunavut's X0A-X0C below
    "X0A": "America/Iqaluit",
    "X0B": "America/Cambridge_Bay",
    "X0C": "America/Rankin_Inlet",
    "Y": "America/Whitehorse",
}

# Postal codes of these countries are all digits, this many.
_POSTCODE_DIGITS = {"US": 5, "AU": 4}

# Carriers' standard words, and those Twilio's own opt-out list has added (OPTOUT, REVOKE):
# Twilio blocks a number that sent one of them, and Kinship must know it has. Then the same in
# the languages Kinship writes its texts in (a supporter answers a Chinese text in Chinese:
# 退订 and TD are what Chinese carriers' own messages ask for), with Vietnamese only as
# written with its marks (HUY and DUNG are names).
# Twilio's own, which it answers itself (a keyword alone: twilio_answers).
TWILIO_STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
STOP_WORDS = TWILIO_STOP_WORDS | frozenset(
    {"停止", "退订", "退訂", "TD", "取消订阅", "取消訂閱", "配信停止", "停止して", "中止"}
    | {"중지", "그만", "수신거부", "HỦY", "DỪNG", "NGỪNG", "TIGIL", "ITIGIL", "HINTO"}
)
# Said within a longer message, these still ask for no more texts, as anyone would read them
# (the FCC's rule: a reply a reasonable person reads as an opt-out is one). A STOP alone in a
# sentence is not among them: "Stop the sweeps!" is the campaign's slogan, cheered back.
OPT_OUT_PHRASES = (
    "STOP TEXTING", "STOP TEXT", "STOP MESSAGING", "STOP SENDING", "STOP CONTACTING",
    "UNSUBSCRIBE", "OPT OUT", "OPTOUT", "REMOVE ME", "TAKE ME OFF", "WRONG NUMBER",
    "DONT TEXT", "DO NOT TEXT", "NO MORE TEXTS", "NO MORE MESSAGES", "STOP TEXTS",
    "STOP MESSAGES", "STOP ALL TEXTS", "STOP ALL MESSAGES", "STOP THE TEXTS",
    "보내지 마세요", "보내지 말아 주세요",
)  # fmt: skip
# Words around a keyword that leave it the whole message ('please stop', 'stop it now'), in
# the languages Kinship texts in too ('그만 보내세요', 'Dừng lại', 'Tigil po').
COURTESIES = frozenset(
    {"PLEASE", "PLS", "PLZ", "NOW", "THANKS", "THANK", "YOU", "THX", "OK", "OKAY", "IT", "JUST"}
    | {"请", "請", "谢谢", "謝謝", "吧", "ください", "下さい", "주세요", "보내세요", "보내지"}
    | {"마세요", "LẠI", "ĐI", "NHÉ", "PO", "NA", "SALAMAT"}
)
# The same, written onto the keyword in languages without spaces ('请停止', '停止してください').
COURTESY_AFFIXES = (
    "してください", "して下さい", "ください", "下さい", "请", "請", "吧", "谢谢", "謝謝"
)  # fmt: skip
# Written without spaces, so found anywhere in a message: unambiguous "unsubscribe" words.
OPT_OUT_ANYWHERE = ("退订", "退訂", "取消订阅", "取消訂閱", "配信停止", "수신거부", "수신 거부")
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO", "帮助", "幫助", "ヘルプ", "도움말", "GIÚP", "TULONG"})


def to_e164(raw: str | None, country: str | None = None) -> str | None:
    """Return a phone number in E.164, or None when it is not a valid number."""
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw, (country or "US").upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def ascii_digits(text: str) -> str:
    """Return text with every decimal digit in ASCII: CJK keyboards type full-width ones."""
    # isdigit() also admits superscripts and circled numbers, which no keyboard types in a
    # postal code and int() refuses; they are left alone, so they match no ZIP prefix.
    return "".join(
        str(value) if (value := unicodedata.decimal(ch, None)) is not None else ch for ch in text
    )


POSTAL_CODE_LENGTH = 32


def postal_key(code: str | None) -> str | None:
    """A postal code as alerts match it: compatibility forms folded (NFKC), digits in ASCII,
    upper case, no surrounding space. 'ｓｗ１ａ　１ａａ' and ' sw1a 1aa' are both 'SW1A 1AA', so
    an alert for postal prefix 'SW1' reaches whoever typed either."""
    if code is None:
        return None
    folded = ascii_digits(unicodedata.normalize("NFKC", code)).strip().upper()
    # NFKC and upper() can lengthen text (U+FDFA is 18 characters, ß is SS): cut to what the
    # column holds (nf_supporters.postal_code), or the signature fails to project at all.
    return folded[:POSTAL_CODE_LENGTH].rstrip() or None


def packed_postal(code: str) -> str:
    """A postal code (or prefix) as an alert's prefix compares it: postal_key, without spaces
    or hyphens ('M5V 2T6' and 'm5v2t6' are one code; '94110-1234' starts with '941101')."""
    return "".join(ch for ch in (postal_key(code) or "") if ch not in " -")


def _folded(name: str) -> str:
    """A region name or code as typed, for matching: no accents, case, dots or spaces."""
    bare = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name))
    return "".join(c for c in bare if c.isalnum()).casefold()


@cache
def _subdivisions(country: str) -> dict[str, str]:
    """A country's ISO 3166-2 subdivisions, by folded code ("usca", "ca") and name (and the
    name's first part: "Seoul" for "Seoul-teukbyeolsi"); codes win over names."""
    found: dict[str, str] = {}
    subs = pycountry.subdivisions.get(country_code=country) or []  # type: ignore[no-untyped-call]
    ordered = sorted(subs, key=lambda sub: str(sub.code))
    ways: tuple[Callable[[Any], str], ...] = (
        lambda sub: str(sub.code),
        lambda sub: str(sub.code).split("-", 1)[1],
        lambda sub: str(sub.name),
        lambda sub: str(sub.name).split("-", 1)[0],
    )
    for way in ways:  # in this order of precedence
        for sub in ordered:
            found.setdefault(_folded(way(sub)), str(sub.code))
    return found


def region_code(country: str | None, region: str | None) -> str | None:
    """The ISO 3166-2 code of a region typed as a code or a name, else None.

    Alerts target regions by code ("US-CA"); signers type "California", "CA", "ca" or
    "Québec". Matched within the signer's country (or by a full code without one)."""
    if not region or not region.strip():
        return None
    key = _folded(region)
    if country:
        return _subdivisions(country.upper()).get(key)
    prefix = region.strip()[:2].upper()
    return _subdivisions(prefix).get(key) if region.strip()[2:3] == "-" else None


@functools.lru_cache(maxsize=65536)
def _us_zip_zone(zip5: str) -> str | None:
    """The zone of one US ZIP code (zipcodes' data: its first look loads it, about a second
    and 40 MB; a look then takes about half a millisecond, so each code is looked up once)."""
    if len(zip5) != 5 or not zip5.isascii() or not zip5.isdigit():
        return None
    try:
        found: list[dict[str, Any]] = zipcodes.matching(zip5)  # type: ignore[no-untyped-call]
    except (TypeError, ValueError):
        return None
    name = found[0].get("timezone") if found else None
    return name if isinstance(name, str) and _known_zone(name) else None


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _postal_zone(country: str | None, postal_code: str | None) -> str | None:
    """The zone a postal code places a supporter in, for countries of several zones whose
    codes say where (US, Australia, Canada); else None."""
    code = ascii_digits(postal_code or "").strip().upper()
    if code.isdigit() and country in _POSTCODE_DIGITS:
        # A form's number field drops leading zeros: Darwin's 0800 arrives as 800, San
        # Juan's 00901 as 901 (and read as Melbourne and Los Angeles).
        code = code.zfill(_POSTCODE_DIGITS[country])
    if country == "US" and code[:1] in _US_ZIP_ZONE:
        by_zip = _us_zip_zone(code[:5])
        return by_zip or _US_ZIP3_ZONE.get(code[:3], _US_ZIP_ZONE[code[0]])
    if country == "AU" and code[:1] in _AU_POSTCODE_ZONE:
        return _AU_POSTCODE2_ZONE.get(code[:2], _AU_POSTCODE_ZONE[code[0]])
    if country == "CA":
        return _CA_POSTAL_ZONE.get(code[:3]) or _CA_POSTAL_ZONE.get(code[:1])
    return None


def resolve_time_zone(
    phone: str | None, country: str | None, postal_code: str | None = None
) -> str:
    """Return where a supporter's quiet hours are reckoned: their postal code's zone, else
    their phone number's, else their country's; UTC when nothing is known.

    Where that leaves several zones (a Russian or Australian mobile, a country given without a
    postal code), the result names the westernmost and easternmost of them, "West East", and a
    text goes only when it is daytime in both (next_sms_window). A "main zone" for each country
    texted Vladivostok at 04:00 and Perth at 05:00; TCPA's rule is the called party's time.
    """
    country = (country or "").upper() or None
    by_post = _postal_zone(country, postal_code)
    if by_post:
        return by_post
    parsed = None
    if phone:
        try:
            parsed = phonenumbers.parse(phone, None)
        except phonenumbers.NumberParseException:
            parsed = None
    if parsed is not None:
        region = phonenumbers.region_code_for_number(parsed)
        found = phone_timezone.time_zones_for_number(parsed)
        # Only the number's own country's: phonenumbers gives a Jamaican or Bahamian number
        # every zone of +1, from Guam to Newfoundland, which share no daytime at all.
        home = _territory_zones(region)
        real = [z for z in found if z in home]
        if len(found) > 1 and home:
            # A number that does not say where in its country it is (a mobile) may be
            # anywhere in it: phonenumbers' list for Russian mobiles starts at Moscow, and
            # Kaliningrad, an hour behind, was texted at 07:00.
            real = home
        if real:
            return zone_span(real)
        country = country or region
    if country:
        known = _territory_zones(country)
        if known:
            return zone_span(known)
    return "UTC"


@cache
def _territory_zones(country: str | None) -> list[str]:
    """A country's zones that this machine's zone database knows (CLDR's list, by Babel)."""
    listed = get_global("territory_zones").get(country or "") or ()
    return [str(z) for z in listed if _known_zone(str(z))]


# Offsets are compared at both solstices' months: daylight saving moves some zones of a
# country and not others (Honolulu stays, Adak moves).
_SEASONS = (datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC))


@cache
def _offsets(name: str) -> tuple[timedelta, timedelta]:
    at = [moment.astimezone(ZoneInfo(name)).utcoffset() or timedelta() for moment in _SEASONS]
    return min(at), max(at)


def zone_span(zones: Sequence[str]) -> str:
    """Return one zone when zones share their offsets all year, else "West East": the zone
    furthest behind UTC and the one furthest ahead, each in either season (daytime in both is
    then daytime in all: Honolulu, not Adak, which moves its clocks; Simferopol, not Kyiv)."""
    if len({_offsets(name) for name in zones}) == 1:
        return zones[0]
    west = min(zones, key=_offsets)
    east = max(zones, key=lambda name: _offsets(name)[::-1])
    return f"{west} {east}"


def zone(name: str) -> ZoneInfo:
    """Return a ZoneInfo, UTC for unknown names."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _opening(now: datetime, place: ZoneInfo, start_hour: int, end_hour: int) -> datetime | None:
    """None when it is daytime at place, else the next start_hour there (in UTC)."""
    local = now.astimezone(place)
    if start_hour <= local.hour < end_hour:
        return None
    day = local.date() if local.hour < start_hour else local.date() + timedelta(days=1)
    opening = datetime(day.year, day.month, day.day, start_hour, tzinfo=place)
    return opening.astimezone(UTC)


def next_sms_window(
    now: datetime,
    time_zone: str,
    start_hour: int = QUIET_START_HOUR,
    end_hour: int = QUIET_END_HOUR,
) -> datetime | None:
    """Return when an SMS may go out, or None when it may go now: between start_hour and
    end_hour in the recipient's zone, or in each of the zones it names (resolve_time_zone)."""
    places = [zone(name) for name in time_zone.split()] or [ZoneInfo("UTC")]
    moment = now
    for _ in range(2 * len(places) + 2):
        openings = [
            found for place in places if (found := _opening(moment, place, start_hour, end_hour))
        ]
        if not openings:
            return None if moment == now else moment.astimezone(now.tzinfo)
        moment = max(openings)
    # The zones share no daytime (a span of 13 hours or more): the westernmost one's.
    later = _opening(now, places[0], start_hour, end_hour)
    return later.astimezone(now.tzinfo) if later else None


def shared_values(
    org_name: str, postal_address: str, titles: Mapping[str, str], locale: str, default: str
) -> dict[str, str]:
    """The values of an alert's {{ variables }} that every recipient of a language shares: the
    sender's name and address, and the campaign's title in the language that serves it best."""
    title = pick_variant(titles, locale, default)
    return {
        "organization_name": org_name,
        "campaign_title": str(titles.get(title or "", "")),
        "postal_address": postal_address,
    }


def pick_variant(
    variants: Mapping[str, object], locale: str, default: str, language: str | None = None
) -> str | None:
    """Return the key of the content variant that best serves a person: in their language
    (language_tag: es, es-MX...) when the content has it, else in the locale Kinship writes to
    them in, else the default."""
    if not variants:
        return None
    if language and language != locale:
        if language in variants:
            return language
        base = language.split("-", 1)[0].lower()
        if base in variants:
            return base
        for key in variants:  # es-MX content for a reader of es (or of es-US)
            if key.split("-", 1)[0].lower() == base:
                return key
    if locale in variants:
        return locale
    for key in variants:
        # Only a key that reads as the locale: resolve_locale's fallback would take any
        # language Kinship does not write in (es, fr) for English.
        if resolve_locale(key, "") == locale:
            return key
    if default in variants:
        return default
    return next(iter(variants))


def sms_keyword(body: str) -> str | None:
    """Classify an inbound SMS: 'stop', 'start', 'help' or None.

    Read as people type them: compatibility forms as their letters (a CJK phone keyboard in
    full-width mode sends 'ＳＴＯＰ　ＡＬＬ'), punctuation, quotes, emoji and invisible
    characters ignored ('Stop.', '"STOP"', 'STOP🛑'), words run together or apart ('STOP ALL',
    'OPT OUT'). A keyword (in English or a language Kinship texts in) counts as the whole
    message, as carriers read it: a reply of the campaign's own slogan ('Stop the sweeps!') is
    not an opt-out. But a message asking for no more texts in other words is one ('please
    stop', 'stop texting me', 'wrong number', 请退订): a STOP missed is a supporter texted
    against their will, and START undoes one read too eagerly."""
    text, words = _read(body)
    if not words:
        return None
    for phrase in (" ".join(words), "".join(words)):
        if phrase in STOP_WORDS:
            return "stop"
        if phrase in START_WORDS:
            return "start"
        if phrase in HELP_WORDS:
            return "help"
    # Nothing but keywords once courtesies go ('STOP STOP', 'Stop. Stop!', 'quit end',
    # '请停止', '停止してください'): as much the whole message as one keyword is.
    plain = [bare for w in words if w not in COURTESIES and (bare := _without_courtesies(w))]
    if plain and all(w in STOP_WORDS for w in plain):
        return "stop"
    spaced = f" {' '.join(words)} "
    if any(f" {p} " in spaced for p in OPT_OUT_PHRASES):
        return "stop"
    return "stop" if any(w in text for w in OPT_OUT_ANYWHERE) else None


def _read(body: str) -> tuple[str, list[str]]:
    """An inbound text as read for keywords: compatibility forms as their letters, upper case,
    apostrophes dropped ("don't"); and its words, anything not a letter or digit a space."""
    text = unicodedata.normalize("NFKC", body).upper().replace("'", "").replace("\u2019", "")
    return text, "".join(ch if ch.isalnum() else " " for ch in text).split()


def _without_courtesies(word: str) -> str:
    """A word less the courtesies written onto it (COURTESY_AFFIXES), at either end."""
    changed = True
    while changed and word:
        changed = False
        for affix in COURTESY_AFFIXES:
            if word != affix and word.startswith(affix):
                word, changed = word[len(affix) :], True
            elif word != affix and word.endswith(affix):
                word, changed = word[: -len(affix)], True
    return "" if word in COURTESY_AFFIXES else word


def twilio_answers(body: str) -> bool:
    """Whether Twilio's own opt-out handling answers this text (one of its keywords, alone)."""
    _, words = _read(body)
    return " ".join(words) in TWILIO_STOP_WORDS or "".join(words) in TWILIO_STOP_WORDS


def backoff_delay(
    attempt: int, retry_after: float | None, base: float = 0.5, cap: float = 30.0
) -> float:
    """Return the wait before retry `attempt` (1-based): exponential, jittered, >= Retry-After."""
    computed: float = min(base * 2 ** (attempt - 1), cap) * random.uniform(0.8, 1.2)
    return max(computed, float(retry_after or 0.0))


class TokenBucket:
    """Allow `rate` operations per second with bursts of `burst`; acquire() blocks until allowed."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one token, waiting as long as needed."""
        while True:
            with self._lock:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1 - 1e-9:  # float refills land a hair short of whole
                    self.tokens = max(self.tokens - 1, 0.0)
                    return
                wait = (1 - self.tokens) / self.rate
            self.sleep(wait)
