"""Rules without I/O: time zones, quiet hours, locales, SMS keywords, backoff, token bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.notifications.domain import (
    TokenBucket,
    backoff_delay,
    next_sms_window,
    pick_variant,
    region_code,
    resolve_time_zone,
    sms_keyword,
    to_e164,
)
from shared.locales import resolve_locale


@pytest.mark.parametrize(
    ("phone", "country", "postal", "zone"),
    [
        (None, "US", "94601", "America/Los_Angeles"),
        (None, "US", "10001", "America/New_York"),
        (None, "US", "96813", "Pacific/Honolulu"),
        # Each ZIP code's own zone, not its first digit's: texts at 07:00 were the cost.
        ("+17025550123", "US", "89101", "America/Los_Angeles"),  # Las Vegas
        (None, "US", "89101-1234", "America/Los_Angeles"),
        (None, "US", "85004", "America/Phoenix"),  # no daylight saving time
        (None, "US", "35203", "America/Chicago"),  # Birmingham, AL
        (None, "US", "37203", "America/Chicago"),  # Nashville
        (None, "US", "79901", "America/Denver"),  # El Paso
        (None, "US", "99701", "America/Anchorage"),  # Fairbanks
        (None, "US", "96910", "Pacific/Guam"),
        # A number phonenumbers cannot place is not "Etc/Unknown" (UTC): the country decides.
        ("+8210123456", "KR", None, "Asia/Seoul"),
        # A country of several zones, and nothing finer: both ends of it.
        (None, "EC", None, "Pacific/Galapagos America/Guayaquil"),
        (None, "MN", None, "Asia/Hovd Asia/Ulaanbaatar"),
        (None, "CD", None, "Africa/Kinshasa Africa/Lubumbashi"),
        # An Australian mobile says only "Australia": the postcode says Perth, Darwin, Adelaide.
        ("+61412345678", "AU", "6000", "Australia/Perth"),
        ("+61412345678", "AU", "0870", "Australia/Darwin"),
        (None, "AU", "5000", "Australia/Adelaide"),
        (None, "AU", "2600", "Australia/Sydney"),  # Canberra
        ("+61412345678", "AU", None, "Australia/Perth Australia/Lord_Howe"),
        ("+79161234567", None, None, "Europe/Kaliningrad Asia/Anadyr"),  # any Russian mobile
        # +1 numbers outside the US and Canada: their own zone, not all of +1 (Guam to St John's).
        ("+18762101234", None, None, "America/Jamaica"),
        # A form's number field drops leading zeros: Darwin, not Melbourne; San Juan.
        (None, "AU", "800", "Australia/Darwin"),
        (None, "US", "901", "America/Puerto_Rico"),
        (None, "CA", "X0A 0H0", "America/Iqaluit"),  # Nunavut, not Yellowknife
        (None, "CA", "X1A 2P3", "America/Yellowknife"),
        # A number whose zone is unknown still tells its country.
        ("+8210123456", None, None, "Asia/Seoul"),
        (None, "CA", "v6b 1a1", "America/Vancouver"),
        (None, "CA", "T2P 2M5", "America/Edmonton"),
        (None, "CA", "H2X 1Y4", "America/Toronto"),  # Montreal
        (None, "CA", "A1C 5M2", "America/St_Johns"),
        ("+81312345678", None, None, "Asia/Tokyo"),
        ("+639171234567", None, None, "Asia/Manila"),
        (None, "VN", None, "Asia/Ho_Chi_Minh"),
        (None, "KR", None, "Asia/Seoul"),
        (None, None, None, "UTC"),
    ],
)
def test_time_zone_from_postal_code_phone_or_country(
    phone: str | None, country: str | None, postal: str | None, zone: str
) -> None:
    assert resolve_time_zone(phone, country, postal) == zone


US_SPAN = "Pacific/Honolulu America/Indiana/Marengo"  # the United States, Hawaii to the east


@pytest.mark.parametrize(
    ("postal", "zone"),
    [
        ("\uff19\uff14\uff16\uff11\uff12", "America/Los_Angeles"),  # full-width 94612
        ("\uff19\uff16\uff18\uff11\uff13", "Pacific/Honolulu"),  # full-width 96813
        ("\u0669\u0664\u0666\u0661\u0662", "America/Los_Angeles"),  # Arabic-Indic 94612
        # Not decimal digits, though isdigit() says so: no ZIP code, so the country's zone.
        ("\u2079\u2074\u2076\u00b9\u00b2", US_SPAN),  # superscript 94612
        ("\u2468\u2463\u2465\u2460\u2461", US_SPAN),  # circled 94612
    ],
)
def test_a_zip_code_typed_with_another_keyboards_digits_still_finds_a_zone(
    postal: str, zone: str
) -> None:
    # A CJK keyboard types full-width digits; a signer must not be lost to a KeyError.
    assert resolve_time_zone(None, "US", postal) == zone


def test_e164_normalization() -> None:
    assert to_e164("(415) 555-0100", "US") == "+14155550100"
    assert to_e164("090-1234-5678", "JP") == "+819012345678"
    assert to_e164("not a phone") is None


def test_sms_waits_until_8_local_and_never_goes_after_21() -> None:
    la = "America/Los_Angeles"
    at_2059 = datetime(2026, 6, 2, 3, 59, tzinfo=UTC)  # 20:59 PDT
    at_2100 = datetime(2026, 6, 2, 4, 0, tzinfo=UTC)  # 21:00 PDT
    at_0759 = datetime(2026, 6, 2, 14, 59, tzinfo=UTC)  # 07:59 PDT
    assert next_sms_window(at_2059, la) is None
    assert next_sms_window(at_2100, la) == datetime(2026, 6, 2, 15, 0, tzinfo=UTC)
    assert next_sms_window(at_0759, la) == datetime(2026, 6, 2, 15, 0, tzinfo=UTC)


def test_quiet_hours_follow_daylight_saving() -> None:
    # 2026-11-01: US clocks go back; 08:00 PST is 16:00 UTC.
    late = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 22:00 PDT on Oct 31
    assert next_sms_window(late, "America/Los_Angeles") == datetime(2026, 11, 1, 16, 0, tzinfo=UTC)


def test_a_text_to_someone_in_one_of_several_zones_goes_when_it_is_daytime_in_all() -> None:
    span = resolve_time_zone("+79161234567", None, None)  # a Russian mobile: anywhere in Russia
    moscow_2059 = datetime(2026, 6, 2, 17, 59, tzinfo=UTC)  # 04:59 in Anadyr
    later = next_sms_window(moscow_2059, span)
    assert later is not None
    for name in span.split():
        assert 8 <= later.astimezone(ZoneInfo(name)).hour < 21
    # The first such moment: a minute before, it is night at one end or the other.
    before = later - timedelta(minutes=1)
    assert any(not 8 <= before.astimezone(ZoneInfo(n)).hour < 21 for n in span.split())
    assert next_sms_window(later, span) is None


@pytest.mark.parametrize("country", ["US", "UA", "AU", "RU", "BR", "MX", "CA", "ID", "KI"])
def test_a_text_allowed_in_a_countrys_span_is_daytime_in_each_of_its_zones(country: str) -> None:
    """The span's two ends are the furthest behind and ahead in either season: Honolulu, not
    Adak, which moves its clocks; Simferopol, not Kyiv, which moves in winter only."""
    from babel.core import get_global

    span = resolve_time_zone(None, country, None)
    zones = [ZoneInfo(str(z)) for z in get_global("territory_zones")[country]]
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    while moment.year == 2026:
        if next_sms_window(moment, span) is None:
            assert all(8 <= moment.astimezone(z).hour < 21 for z in zones), (moment, span)
        moment += timedelta(minutes=30)


def test_zones_sharing_no_daytime_fall_back_to_the_westernmost() -> None:
    span = "Pacific/Midway Pacific/Kiritimati"  # 25 hours apart
    night = datetime(2026, 6, 2, 10, 0, tzinfo=UTC)  # 23:00 on Midway
    assert next_sms_window(night, span) == next_sms_window(night, "Pacific/Midway")


@pytest.mark.parametrize(
    ("tag", "locale"),
    [
        ("zh-TW", "zh-Hant"),
        ("zh_HK", "zh-Hant"),
        ("zh-CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        # The script decides before the region; Cantonese reads Traditional; Zhuang is not zh.
        ("zh-Hans-HK", "zh-Hans"),
        ("zh-Hant-CN", "zh-Hant"),
        ("yue", "zh-Hant"),
        ("yue-Hans", "zh-Hans"),
        ("zha", "en"),
        ("fil", "tl"),
        ("ko-KR", "ko"),
        ("vi", "vi"),
        ("ja-JP", "ja"),
        ("fr", "en"),
        (None, "en"),
    ],
)
def test_locale_resolution_falls_back_to_english(tag: str | None, locale: str) -> None:
    assert resolve_locale(tag) == locale


def test_an_alerts_language_targets_supporters_as_their_languages_are_kept() -> None:
    from services.notifications.audience import target_language

    assert target_language("fil") == "tl"  # Filipino readers are kept as tl
    assert target_language("zh") == "zh"  # every script
    assert target_language("zh-TW") == "zh-Hant"
    assert target_language("ES") == "es"
    assert target_language("yue") == "yue"  # Cantonese readers, not every zh-Hant reader


def test_content_variant_prefers_the_supporters_locale() -> None:
    variants = {"en": 1, "zh-TW": 2}
    assert pick_variant(variants, "zh-Hant", "en") == "zh-TW"
    assert pick_variant(variants, "ko", "en") == "en"
    # A language Kinship does not write in never stands for English.
    assert pick_variant({"es": 1, "en-US": 2}, "en", "en-US", "en") == "en-US"
    assert pick_variant({"fr": 1, "en-GB": 2}, "en", "fr") == "en-GB"
    # Regional content serves the language's other readers.
    assert pick_variant({"en": 1, "es-MX": 2}, "en", "en", "es") == "es-MX"


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("STOP", "stop"),
        (" stopall ", "stop"),
        ("Unsubscribe", "stop"),
        ("cancel", "stop"),
        ("END", "stop"),
        ("quit.", "stop"),
        ("START", "start"),
        ("yes", "start"),
        ("UNSTOP", "start"),
        ("help", "help"),
        ("stop the bill!", None),
        # As a Chinese, Japanese or Korean phone keyboard in full-width mode types them.
        ("\uff33\uff34\uff2f\uff30", "stop"),
        ("\uff53\uff54\uff4f\uff50\uff01", "stop"),
        ("\uff28\uff25\uff2c\uff30", "help"),
        ("\u3000STOP\u3000", "stop"),  # an ideographic space around it
        # As people type them: together or apart, quoted, punctuated, with an emoji or an
        # invisible character; and the words Twilio's own opt-out list has added.
        ("STOP ALL", "stop"),
        ("\uff33\uff34\uff2f\uff30\u3000\uff21\uff2c\uff2c", "stop"),
        ('"STOP"', "stop"),
        ("Stop .", "stop"),
        ("stop?", "stop"),
        ("STOP\U0001f6d1", "stop"),
        ("STOP\u200b", "stop"),
        ("opt out", "stop"),
        ("OPTOUT", "stop"),
        ("Revoke", "stop"),
        ("help?", "help"),
        ("Stop the sweeps!", None),  # the campaign's slogan, not an opt-out
        ("Please stop the sweeps", None),
        ("Stop all deportations!", None),
        # In the languages Kinship texts in, as a Chinese carrier's own messages ask (TD).
        ("\u9000\u8ba2", "stop"),  # 退订
        ("td", "stop"),
        ("\u505c\u6b62", "stop"),  # 停止
        ("\u914d\u4fe1\u505c\u6b62", "stop"),  # 配信停止
        ("\uc911\uc9c0", "stop"),  # 중지
        ("H\u1ee6Y", "stop"),  # HỦY
        ("Huy", None),  # a name, not HỦY without its marks
        ("tigil", "stop"),
        ("\u5e6b\u52a9", "help"),  # 幫助
        # Asking for no more texts in other words: as anyone would read it, an opt-out.
        ("please stop", "stop"),
        ("Stop it now, thanks", "stop"),
        ("can you stop texting me", "stop"),
        ("Wrong number", "stop"),
        ("don't text me again", "stop"),
        ("how do I unsubscribe?", "stop"),
        ("\u8bf7\u9000\u8ba2\u8c22\u8c22", "stop"),  # 请退订谢谢
        ("\uc218\uc2e0\uac70\ubd80 \ud569\ub2c8\ub2e4", "stop"),  # 수신거부 합니다
        # Nothing but keywords and courtesies, in any of those languages.
        ("STOP STOP", "stop"),
        ("Stop. Stop!", "stop"),
        ("quit end", "stop"),
        ("Stop all texts", "stop"),
        ("\u8bf7\u505c\u6b62", "stop"),  # 请停止
        ("\u505c\u6b62\u3057\u3066\u304f\u3060\u3055\u3044", "stop"),  # 停止してください
        ("\uadf8\ub9cc \ubcf4\ub0b4\uc138\uc694", "stop"),  # 그만 보내세요
        ("D\u1eeang l\u1ea1i", "stop"),  # Dừng lại
        ("Tigil po", "stop"),
        ("\ubcf4\ub0b4\uc9c0 \ub9c8\uc138\uc694", "stop"),  # 보내지 마세요, "don't send"
        ("\ubcf4\ub0b4\uc138\uc694", None),  # 보내세요, "send"
        ("\u8bf7", None),  # 请 alone asks for nothing
        ("Stop ICE now", None),
        ("Cancel my order?", None),
        ("", None),
        ("\U0001f44d", None),
    ],
)
def test_carrier_keywords(body: str, keyword: str | None) -> None:
    assert sms_keyword(body) == keyword


def test_backoff_grows_and_honours_retry_after() -> None:
    assert 0.4 <= backoff_delay(1, None, base=0.5) <= 0.6
    assert 3.2 <= backoff_delay(4, None, base=0.5) <= 4.8
    assert backoff_delay(1, 7.0, base=0.5) == 7.0
    assert backoff_delay(30, None, base=0.5, cap=30) <= 36


def test_token_bucket_paces_to_its_rate() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(rate=100, burst=1, clock=lambda: now[0], sleep=sleep)
    for _ in range(501):
        bucket.acquire()
    assert now[0] == pytest.approx(5.0, rel=0.01)


def test_a_worker_pool_never_lets_the_sms_lanes_hold_every_connection() -> None:
    # Each SMS lane holds a connection through its texts, and takes a second one briefly to
    # settle a text that failed: lanes holding the whole pool stalled for the pool's timeout.
    from services.notifications.bootstrap import build
    from services.notifications.config import NotificationConfig
    from shared.config import Settings

    config = NotificationConfig(sms_sender_threads=6, sms_concurrency=8, email_sender_threads=2)
    settings = Settings(
        service="notifications",
        database_url="postgresql+psycopg://kinship@127.0.0.1:9/kinship",  # never connected
        kafka_bootstrap_servers="127.0.0.1:9",
        hash_key="k" * 32,
    )
    pool = build(settings, config).engine.pool
    lanes = config.sms_sender_threads * config.sms_concurrency
    assert pool.size() > lanes + config.email_sender_threads  # room for the other parts
    assert pool.size() + pool._max_overflow >= 2 * lanes  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("sw1a 1aa", "SW1A 1AA"),
        ("\uff53\uff57\uff11\uff41\u3000\uff11\uff41\uff41", "SW1A 1AA"),  # full-width
        (" 94612 ", "94612"),
        ("\u0669\u0664\u0666\u0661\u0662", "94612"),  # Arabic-Indic digits
        ("   ", None),
        (None, None),
    ],
)
def test_postal_codes_match_as_the_post_reads_them(typed: str | None, key: str | None) -> None:
    from services.notifications.domain import postal_key

    assert postal_key(typed) == key


@pytest.mark.parametrize(
    ("country", "typed", "code"),
    [
        ("US", "California", "US-CA"),
        ("US", " c.a. ", "US-CA"),
        ("us", "US-CA", "US-CA"),
        ("CA", "Qu\u00e9bec", "CA-QC"),
        ("CA", "Quebec", "CA-QC"),
        ("JP", "Tokyo", "JP-13"),
        ("KR", "Seoul", "KR-11"),
        ("VN", "H\u00e0 N\u1ed9i", "VN-HN"),
        ("AU", "NSW", "AU-NSW"),
        (None, "US-WA", "US-WA"),
        (None, "Washington", None),  # which country's?
        ("US", "Narnia", None),
        ("US", "  ", None),
        ("ZZ", "CA", None),
    ],
)
def test_a_typed_region_reads_as_the_code_alerts_target(
    country: str | None, typed: str, code: str | None
) -> None:
    assert region_code(country, typed) == code
