"""Rules of partner webhooks: schedule and jitter, Retry-After, URL safety, consent filtering."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from services.notifications.webhooks import domain, signing
from services.notifications.webhooks.config import DEFAULT_SCHEDULE

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_retries_follow_the_schedule_within_twenty_percent_then_stop() -> None:
    rng = random.Random(7)
    for attempts, base in enumerate(DEFAULT_SCHEDULE, start=1):
        for _ in range(50):
            delay = domain.retry_delay(attempts, DEFAULT_SCHEDULE, 0.2, rng)
            assert delay is not None and 0.8 * base <= delay <= 1.2 * base
    assert domain.retry_delay(len(DEFAULT_SCHEDULE) + 1, DEFAULT_SCHEDULE, 0.2) is None


def test_retry_after_on_429_wins_when_longer_and_is_capped() -> None:
    assert domain.parse_retry_after("120", NOW) == 120.0
    http_date = "Sat, 28 Nov 2026 12:10:00 GMT"
    assert domain.parse_retry_after(http_date, NOW) == 600.0
    assert domain.parse_retry_after("garbage", NOW) is None
    assert domain.parse_retry_after("99999999", NOW) == domain.MAX_RETRY_AFTER
    later = domain.next_attempt_at(1, NOW, DEFAULT_SCHEDULE, 0.0, retry_after=600.0)
    assert later == NOW + timedelta(seconds=600)


def test_only_2xx_succeeds_and_redirects_fail() -> None:
    assert domain.is_success(200) and domain.is_success(204)
    assert not any(domain.is_success(s) for s in (None, 199, 301, 302, 308, 410, 429, 500))


def test_a_response_excerpt_is_text_postgresql_can_store() -> None:
    # PostgreSQL refuses NUL in text: one partner's reply would block recording every attempt.
    raw = b'{"ok":true}\x00\x00tail \xed\xa0\x80 \xff'
    text = domain.excerpt(raw, 1024)
    assert "\x00" not in text and text.startswith('{"ok":true}tail')
    text.encode("utf-8")  # no unpaired surrogate either
    assert domain.excerpt(b"abc\x00def", 4) == "abc"


def test_an_endpoint_failing_five_days_is_disabled() -> None:
    five_days = 5 * 86400.0
    assert not domain.should_disable(None, NOW, five_days)
    assert not domain.should_disable(NOW - timedelta(days=4, hours=23), NOW, five_days)
    assert domain.should_disable(NOW - timedelta(days=5), NOW, five_days)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "::1", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "224.0.0.1",
        "::ffff:0:127.0.0.1", "::ffff:0:a9fe:a9fe",
        "fec0::1",  # site-local: Python counts it global
    ],
)  # fmt: skip
def test_private_loopback_link_local_cgnat_and_metadata_addresses_are_refused(
    address: str,
) -> None:
    with pytest.raises(domain.UnsafeUrl):
        domain.check_address(address, ())


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254, the cloud metadata service
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::a00:1",  # a local network's own NAT64 prefix
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "::7f00:1",  # the old IPv4-compatible form of 127.0.0.1
        "::a00:1",
    ],
)
def test_an_ipv6_address_carrying_a_private_ipv4_one_is_refused(address: str) -> None:
    with pytest.raises(domain.UnsafeUrl):
        domain.check_address(address, ())


def test_an_ipv6_address_carrying_a_public_ipv4_one_passes() -> None:
    # An IPv6-only cluster reaches IPv4 partners through NAT64: those must still be deliverable.
    assert str(domain.check_address("64:ff9b::5db8:d822", ())) == "93.184.216.34"
    assert str(domain.check_address("2002:5db8:d822::1", ())) == "93.184.216.34"


def test_the_allow_list_admits_a_network_and_public_addresses_pass() -> None:
    allowed = domain.parse_networks(["127.0.0.1/32"])
    assert str(domain.check_address("127.0.0.1", allowed)) == "127.0.0.1"
    with pytest.raises(domain.UnsafeUrl):
        domain.check_address("127.0.0.2", allowed)
    assert str(domain.check_address("93.184.216.34", ())) == "93.184.216.34"


def test_urls_must_be_https_in_production_and_carry_no_credentials() -> None:
    assert domain.check_url("https://hooks.example.org/k", True) == (
        "https",
        "hooks.example.org",
        443,
    )
    assert domain.check_url("http://127.0.0.1:8080/", False) == ("http", "127.0.0.1", 8080)
    for bad in ("http://hooks.example.org/", "ftp://x.org/", "https://u:p@x.org/", "https:///x"):
        with pytest.raises(domain.UnsafeUrl):
            domain.check_url(bad, True)


SIGNATURE = {
    "signature_id": "sig-1",
    "petition_id": "pet-1",
    "campaign_id": "camp-1",
    "organization_id": "org-lead",
    "supporter_id": "sup-1",
    "duplicate": False,
    "double_opt_in": False,
    "locale": "en",
    "person": {
        "given_name": "Mei",
        "family_name": "Lin",
        "email": "mei@example.org",
        "phone": "+14155550100",
        "postal_code": "94601",
        "country": "US",
        "language": "en",
        "pronouns": "they/them",
        "discreet": True,
    },  # fmt: skip
    "consents": {"email": True, "sms": False, "partner_organization_ids": ["org-a"]},
    "attribution": {"source": "a-news", "partner_organization_id": "org-b"},
    "interests": ["queer-aapi"],
    "at": "2026-11-28T12:00:00Z",
}


def test_a_signature_reaches_its_owner_recruiter_and_the_partners_it_was_shared_with() -> None:
    assert domain.signature_recipients(SIGNATURE) == {"org-lead", "org-a", "org-b"}
    assert domain.signature_recipients({**SIGNATURE, "duplicate": True}) == set()


def test_personal_data_goes_only_to_a_partner_the_signer_chose() -> None:
    shared = domain.payload_data("signature.created", SIGNATURE, "org-a")
    assert shared["person"]["email"] == "mei@example.org" and shared["shared_with_you"]
    assert shared["supporter_id"] == "sup-1"
    for org in ("org-b", "org-lead"):
        withheld = domain.payload_data("signature.created", SIGNATURE, org)
        assert "person" not in withheld and "supporter_id" not in withheld
        assert "mei@example.org" not in repr(withheld) and "94601" not in repr(withheld)
        assert withheld["attribution"] == {"source": "a-news", "partner_organization_id": "org-b"}
        assert withheld["locale"] == "en" and withheld["petition_id"] == "pet-1"
    # Community identity never leaves, even to a partner the signer chose.
    assert "they/them" not in repr(shared) and "queer-aapi" not in repr(shared)
    assert "discreet" not in repr(shared)


def test_campaign_payloads_leave_communities_out() -> None:
    data = {
        "campaign_id": "c", "lead_organization_id": "l", "partner_organization_ids": ["a"],
        "communities": ["lgbtq"], "titles": {"en": "T"}, "status": "active", "at": "x",
    }  # fmt: skip
    out = domain.payload_data("campaign.launched", data, "a")
    assert "communities" not in out and out["titles"] == {"en": "T"}


def test_signatures_verify_with_the_standard_library_for_every_live_secret() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    assert new.startswith("whsec_")
    at = datetime.now(UTC)
    headers = signing.headers([new, old], "msg_1", at, '{"a":1}')
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}
