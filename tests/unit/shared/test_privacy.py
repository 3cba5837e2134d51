"""Keyed hashes and address normalization: one person, one signature."""

from __future__ import annotations

import pytest

from shared.privacy import email_hash, normalize_email, supporter_id


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  Mei.Lin+petition@GMail.com ", "meilin@gmail.com"),
        ("mei.lin@googlemail.com", "meilin@gmail.com"),
        ("Kai+news@outlook.com", "kai@outlook.com"),
        ("first.last@example.org", "first.last@example.org"),  # dots matter elsewhere
        ("a+b@example.org", "a+b@example.org"),  # so do tags at unknown providers
    ],
)
def test_addresses_that_reach_one_mailbox_normalize_alike(raw: str, normal: str) -> None:
    assert normalize_email(raw) == normal


def test_hashes_are_keyed_and_stable() -> None:
    assert email_hash("k1", "MeiLin@gmail.com") == email_hash("k1", "mei.lin+x@gmail.com")
    assert email_hash("k1", "meilin@gmail.com") != email_hash("k2", "meilin@gmail.com")
    assert supporter_id("k1", "a@example.org") == supporter_id("k1", " A@example.org")
    assert supporter_id("k1", "a@example.org") != supporter_id("k1", "b@example.org")


def test_keyed_hashes_stay_hmac_sha256_of_purpose_and_value() -> None:
    """Every stored hash (suppressions, dedupe keys, supporter ids) depends on this: however
    it is computed, it is HMAC-SHA256(key, purpose NUL value), for any key and purpose mix."""
    import hashlib
    import hmac

    from shared.privacy import keyed_digest, keyed_hash

    for key, purpose, value in [
        ("k1", "email", "meilin@gmail.com"),
        ("k2", "email", "meilin@gmail.com"),
        ("k1", "phone", b"+14155550100"),
        ("k1", "list-token", "s3cr3t.tag"),
        ("k1", "email", "meilin@gmail.com"),  # a state used before, copied again
    ]:
        data = value.encode() if isinstance(value, str) else value
        expected = hmac.new(key.encode(), purpose.encode() + b"\x00" + data, hashlib.sha256)
        assert keyed_digest(key, purpose, value) == expected.digest()
        assert keyed_hash(key, purpose, value) == expected.hexdigest()
