"""The envelope and the registry: what producers and consumers agree on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.errors import InvalidEvent
from shared.events import Event, UnknownEventType, decode
from shared.events.catalog import CATALOG, type_name


def signature_event(**overrides: object) -> Event:
    data = {
        "signature_id": "s1",
        "petition_id": "p1",
        "campaign_id": "c1",
        "organization_id": "o1",
        "supporter_id": "u1",
        "duplicate": False,
        "double_opt_in": False,
        "confirm_url": None,
        "locale": "zh-Hant",
        "at": "2026-11-28T00:00:00Z",
        "person": {"email": "mei@example.org", "given_name": "Mei"},
        "consents": {"email": True, "sms": False, "partner_organization_ids": []},
        "attribution": {"source": "rainbow", "partner_organization_id": "o2"},
    }
    data.update(overrides)  # type: ignore[arg-type]
    return Event(type=type_name("signature.created"), key="u1", data=data, source="/petitions")


def test_an_event_survives_the_kafka_binary_binding() -> None:
    event = signature_event()
    event = Event(
        event.type,
        event.key,
        event.data,
        event.source,
        time=datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC),
        subject="p1",
    )
    back = decode(event.key.encode(), event.value(), event.headers())
    assert back == event
    headers = dict(event.headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_time"] == b"2026-11-28T01:02:03Z"
    assert headers["content-type"] == b"application/json"


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"{oops", None, "not JSON"),
        (b"[1, 2]", None, "JSON object"),
        (b"{}", [("ce_id", b"x")], "missing header"),
        (b"{}", "bad-time", "RFC 3339"),
        (b"{}", "naive-time", "no UTC offset"),
    ],
)
def test_records_that_are_not_events_are_refused(
    value: bytes, headers: object, reason: str
) -> None:
    event_headers = signature_event().headers()
    if headers in ("bad-time", "naive-time"):
        bad = b"yesterday" if headers == "bad-time" else b"2026-11-28T01:02:03"
        event_headers = [(k, bad if k == "ce_time" else v) for k, v in event_headers]
    elif headers is not None:
        event_headers = headers  # type: ignore[assignment]
    with pytest.raises(InvalidEvent, match=reason):
        decode(b"k", value, event_headers)


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("ce_id", b"", "missing header ce_id"),
        ("ce_id", b"x" * 65, "ce_id is longer than 64"),
        ("ce_id", b"abc\x00def", "ce_id .* not printable"),
        ("ce_id", b"abc\ndef", "ce_id .* not printable"),
        ("ce_source", b"/" * 201, "ce_source is longer than 200"),
        ("ce_subject", b"p1\x00", "ce_subject .* not printable"),
    ],
)
def test_attributes_the_consumer_stores_must_fit_their_columns(
    header: str, value: bytes, reason: str
) -> None:
    # An id the processed-events table (String(64)) refuses would make the runner's batch
    # transaction fail outside any handler, and the worker crash on that batch at every start.
    event = signature_event()
    headers = [(k, v) for k, v in event.headers() if k != header] + [(header, value)]
    with pytest.raises(InvalidEvent, match=reason):
        decode(b"u1", event.value(), headers)
    ok = [(k, b"x" * 64 if k == "ce_id" else v) for k, v in event.headers()]
    assert decode(b"u1", event.value(), ok).id == "x" * 64


def test_producers_cannot_publish_fields_outside_the_contract() -> None:
    with pytest.raises(InvalidEvent, match="ethnicity"):
        CATALOG.check_outgoing(signature_event(ethnicity="x"))


def test_consumers_accept_additive_changes_but_not_violations() -> None:
    CATALOG.check_incoming(signature_event(new_optional_field=1))
    with pytest.raises(InvalidEvent, match="duplicate"):
        CATALOG.check_incoming(signature_event(duplicate="maybe"))
    with pytest.raises(UnknownEventType):
        CATALOG.check_incoming(Event("kinship.nothing.happened.v1", "k", {}, "/x"))


def test_a_time_without_its_offset_is_refused_at_the_door() -> None:
    # Accepted, it failed every handler comparing it with an aware time, and reached the
    # dead-letter topic only after all its retries.
    with pytest.raises(InvalidEvent, match="at"):
        CATALOG.check_incoming(signature_event(at="2026-11-28T00:00:00"))
    CATALOG.check_incoming(signature_event(at="2026-11-28T09:00:00+09:00"))


def test_consumers_accept_a_field_added_inside_a_nested_object() -> None:
    """During a rolling deploy the producer may know a field its consumers do not yet: one
    inside `person` or an alert's `content` must not dead-letter the signature or the alert."""
    from tests.integration.notifications.harness import alert

    signed = signature_event()
    signed.data["person"]["middle_name"] = "Lan"
    signed.data["consents"]["newsletter"] = True
    CATALOG.check_incoming(signed)
    published = alert("a1", "c1", "o1", ["email"], push_text="Vote Tuesday")
    published.data["audience"]["cities"] = ["Oakland"]
    CATALOG.check_incoming(published)
    with pytest.raises(InvalidEvent, match="middle_name"):
        CATALOG.check_outgoing(signed)  # producers still keep to the contract
    with pytest.raises(InvalidEvent, match="push_text"):
        CATALOG.check_outgoing(published)


def test_every_type_follows_the_naming_rule_and_lives_on_its_owners_topics() -> None:
    owners = ("kinship.campaigns", "kinship.petitions", "kinship.notifications")
    for event_type in CATALOG:
        # An owner's topic, or one of its internal work topics (kinship.notifications.dispatch).
        assert any(event_type.topic == o or event_type.topic.startswith(f"{o}.") for o in owners)
        assert event_type.name.startswith("kinship.") and event_type.name.endswith(".v1")
