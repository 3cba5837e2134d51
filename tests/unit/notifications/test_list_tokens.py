"""List tokens: one supporter's list with one organization, unforgeable without the hash key."""

from __future__ import annotations

import re

import pytest

from services.notifications.compliance import list_token, parse_list_token

KEY = "unit-test-hash-key"
# Shaped as audience makes them: secrets.token_urlsafe(24), and a keyed hash's first 12 hex digits.
ALICE = "q8Jd_0vX3nLr7Tz-Wb2YkPm5Hc9Ue1Ao"
BOB = "Lf4s-Nw8Rt2Qy6Zx0Vb9Kj3Hg7Dp1Mc_"
TAG_A, TAG_B = "0a1b2c3d4e5f", "5f4e3d2c1b0a"
URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_a_token_names_its_supporter_and_organization() -> None:
    token = list_token(KEY, ALICE, TAG_A)
    assert parse_list_token(KEY, token) == (ALICE, TAG_A)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)  # goes in a URL and a header as it is
    mac = token.split(".")[-1]
    assert len(mac) * 6 >= 128  # base64url characters


def test_every_organization_and_supporter_gets_its_own_mac() -> None:
    macs = {
        list_token(KEY, who, tag).split(".")[-1] for who in (ALICE, BOB) for tag in (TAG_A, TAG_B)
    }
    assert len(macs) == 4
    assert list_token("another-key", ALICE, TAG_A) != list_token(KEY, ALICE, TAG_A)


@pytest.mark.parametrize("position", range(22))
def test_one_changed_character_of_the_mac_is_refused(position: int) -> None:
    token = list_token(KEY, ALICE, TAG_A)
    head, mac = token.rsplit(".", 1)
    other = URL_SAFE[(URL_SAFE.index(mac[position]) + 1) % len(URL_SAFE)]
    tampered = f"{head}.{mac[:position]}{other}{mac[position + 1 :]}"
    assert parse_list_token(KEY, tampered) is None


def test_another_organizations_tag_is_refused() -> None:
    alices_a = list_token(KEY, ALICE, TAG_A)
    bobs_b = list_token(KEY, BOB, TAG_B)
    swapped_tag = alices_a.replace(TAG_A, TAG_B)
    bobs_mac = f"{ALICE}.{TAG_B}.{bobs_b.rsplit('.', 1)[1]}"
    for forged in (swapped_tag, bobs_mac, f"{ALICE}.{TAG_B}"):
        assert parse_list_token(KEY, forged) is None


def test_a_token_made_with_another_key_is_refused() -> None:
    assert parse_list_token(KEY, list_token("another-key", ALICE, TAG_A)) is None


MALFORMED = {
    "empty": "",
    "no-dot": "nodot",
    "old-two-part-form": f"{ALICE}.{TAG_A}",  # no grace period: Kinship is not released yet
    "no-mac": f"{ALICE}.{TAG_A}.",
    "no-supporter": f".{TAG_A}.{'A' * 22}",
    "no-tag": f"{ALICE}..{'A' * 22}",
    "four-parts": f"{ALICE}.{TAG_A}.{'A' * 22}.x",
    "not-ascii": f"{ALICE}.{TAG_A}." + "\u00e9" * 22,  # refused, not an error
    "too-long": f"{ALICE}.{TAG_A}.{'A' * 300}",
}


@pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_tokens_are_refused(token: str) -> None:
    assert parse_list_token(KEY, token) is None


def test_a_part_with_a_dot_cannot_make_a_token() -> None:
    with pytest.raises(ValueError):
        list_token(KEY, "a.b", TAG_A)
