"""Language tags: checked against the languages, scripts and regions CLDR names, in
canonical case (shared.locales.canonical_language_tag, for campaigns and petitions alike)."""

from __future__ import annotations

import pytest

from shared.locales import canonical_language_tag


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
