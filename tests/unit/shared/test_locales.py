"""Language tags: checked against the languages, scripts and regions CLDR names, in
canonical case (shared.locales.canonical_language_tag, for campaigns and petitions alike)."""

from __future__ import annotations

import pytest

from shared.locales import best_match, canonical_language_tag


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("en", "en"),
        ("pt_br", "pt-BR"),
        ("ZH-hant", "zh-Hant"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        # Languages of the coalition's communities that CLDR names but Babel has no data for.
        ("hmn", "hmn"),
        ("sm", "sm"),
        ("ch", "ch"),
        ("mh", "mh"),
        ("chk", "chk"),
        ("ilo", "ilo"),
        ("war", "war"),
        ("hmn-US", "hmn-US"),
        # Deprecated codes older clients send, as CLDR replaces them; variants dropped.
        ("in-ID", "id-ID"),
        ("iw", "he"),
        ("ca-ES-valencia", "ca-ES"),
        ("en-US-u-ca-gregory", "en-US"),
    ],
)
def test_locales_are_canonical(raw: str, canonical: str) -> None:
    assert canonical_language_tag(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    ["zz", "xx-YY", "", "en--US", "<script>", "und", "en-ZZ", "zh-Zzzz", "en-Qaaa", "root"],
)
def test_unknown_locales_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        canonical_language_tag(raw)


@pytest.mark.parametrize(
    ("wanted", "available", "picked"),
    [
        (["es-MX"], ["en", "es", "zh-Hant"], "es"),
        (["zh-Hant-TW"], ["en", "es", "zh-Hant"], "zh-Hant"),
        (["fr", "ES"], ["en", "es"], "es"),
        (["fr"], ["en", "es"], "en"),
        ([], ["en", "es"], "en"),
        # A Chinese reader gets their script: zh-TW, zh-HK and Cantonese read Traditional,
        # though zh-Hans sorts first and the tag's language matches both.
        (["zh-Hant-TW"], ["zh-Hans", "zh-Hant"], "zh-Hant"),
        (["zh-TW"], ["en", "zh-Hans", "zh-Hant"], "zh-Hant"),
        (["zh-HK", "zh-Hant"], ["zh-Hans", "zh-Hant"], "zh-Hant"),
        (["yue-HK"], ["en", "zh-CN", "zh-TW"], "zh-TW"),
        (["zh-CN"], ["zh-Hant", "zh-Hans"], "zh-Hans"),
        # ...and the other script only when their own is not there, before another language.
        (["zh-TW"], ["en", "zh"], "zh"),
        (["zh"], ["zh", "zh-Hant"], "zh"),
        # Every wanted tag has its own and its shorter forms' chance before any variant of a
        # language is taken; the order of the variants given changes nothing.
        (["pt-BR", "en"], ["pt-PT", "en"], "en"),
        (["pt-BR", "de"], ["pt-PT", "en"], "pt-PT"),
        (["es-mx"], ["es-US", "es-MX"], "es-MX"),
        (["es-AR"], ["es-US", "es-MX"], "es-MX"),
        (["es-AR"], ["es-MX", "es-US"], "es-MX"),
    ],
)
def test_the_best_variant_for_a_reader(
    wanted: list[str], available: list[str], picked: str
) -> None:
    assert best_match(wanted, available, "en") == picked
