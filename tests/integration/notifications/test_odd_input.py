"""Input at the edges of what other services and partners may send, on real PostgreSQL.

What petitions accepts must fit here, and what a partner answers must be storable: an event or
an attempt that cannot be written fails every time, and its signer or its deliveries are lost.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from services.notifications.store import consents, supporters
from services.notifications.webhooks.dispatcher import Dispatcher
from services.notifications.webhooks.store import attempts, messages
from services.notifications.webhooks.transport import Reply
from shared.events import Event
from shared.events.catalog import NOTIFICATIONS
from tests.integration.notifications.harness import (
    Service,
    event,
    issue_key,
    organization,
    petition,
    signature,
)
from tests.integration.notifications.test_transactional import mails_to
from tests.integration.notifications.test_webhooks import (
    PARTNER_A,
    Clock,
    register,
    seed_projection,
    signed,
    write_events,
)
from tests.integration.notifications.webhook_receiver import receivers
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


def longest_signer(email: str) -> Event:
    """Return a signature whose names, email, postal code, region and pronouns are as long as
    the petitions API accepts."""
    sig = signature(email, "pet-odd", "camp-odd", "org-odd", phone="+14155550123")
    person = {
        **sig.data["person"],
        "given_name": "M" * 100,
        "family_name": "\u962e" * 100,  # characters, not bytes: 300 bytes in UTF-8
        "postal_code": "94612-" + "0" * 14,
        "region": ("\u65b0\u7586\u7dad\u543e\u723e\u81ea\u6cbb\u5340" * 13)[:100],
        "pronouns": "they/them/theirs, she/her/hers or ze/zir",
    }
    assert len(email) == 254 and len(person["pronouns"]) == 40
    return Event(type=sig.type, key=sig.key, data={**sig.data, "person": person}, source=sig.source)


def test_a_signer_at_every_length_petitions_accepts_joins_the_audience(service: Service) -> None:
    service.start()
    service.publish(organization("org-odd"), petition("pet-odd", "camp-odd", "org-odd"))
    email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".org"
    sig = longest_signer(email)
    service.publish(sig)
    eventually(lambda: mails_to(service, email), message="thank-you sent")
    (person,) = service.rows(supporters)
    typed = sig.data["person"]
    assert (person.given_name, person.family_name) == (typed["given_name"], typed["family_name"])
    assert (person.region, person.postal_code) == (typed["region"], typed["postal_code"])
    assert person.pronouns == typed["pronouns"] and person.email == email
    assert person.time_zone == "America/Los_Angeles"
    granted = service.rows(consents, consents.c.supporter_id == person.supporter_id)
    assert [(c.channel, c.granted) for c in granted] == [("email", True)]


def test_a_postal_code_that_folding_lengthens_still_joins_the_audience(
    service: Service,
) -> None:
    """NFKC turns U+FDFA into 18 characters: 20 of them, which petitions accept, used to
    overflow the column, and the signer was dead-lettered, never thanked."""
    service.start()
    service.publish(organization("org-odd"), petition("pet-odd", "camp-odd", "org-odd"))
    sig = signature("long.post@example.org", "pet-odd", "camp-odd", "org-odd")
    person = {**sig.data["person"], "postal_code": "\ufdfa" * 20}
    service.publish(Event(type=sig.type, key=sig.key, data={**sig.data, "person": person},
                          source=sig.source))  # fmt: skip
    eventually(lambda: mails_to(service, "long.post@example.org"), message="thank-you sent")
    (row,) = service.rows(supporters)
    assert row.postal_code and len(row.postal_code) <= 32


def test_a_partner_answering_with_a_nul_byte_gets_its_attempt_recorded_once(
    wh: Service,
) -> None:
    clock = Clock()
    seed_projection(wh)
    with receivers(1) as (rx,):
        ep = register(wh, issue_key(wh.engine, "partner", PARTNER_A), rx.url)
        rx.default = (200, {}, b'{"ok":true}\x00')
        write_events(wh, clock, signed("nul@example.org", [PARTNER_A]))
        dispatch = Dispatcher(wh.engine, wh.deps.webhooks, clock=clock,
                              rng=random.Random(3))  # fmt: skip
        assert dispatch.drain() == 1
        clock.advance(3600)  # long past any lease: a message not recorded would go again
        assert dispatch.drain() == 0
        assert len(rx.received) == 1
    (row,) = wh.rows(messages, messages.c.endpoint_id == ep["endpoint_id"])
    assert row.status == "succeeded" and row.attempts == 1
    (attempt,) = wh.rows(attempts, attempts.c.endpoint_id == ep["endpoint_id"])
    assert attempt.status_code == 200 and attempt.response_excerpt == '{"ok":true}'


class EchoTransport:
    """A partner whose endpoint answers with the payload it was sent, as many CRMs do."""

    def post(self, pool_key: str, url: str, headers: dict[str, str], body: bytes,
             timeout: float) -> Reply:  # fmt: skip
        return Reply(200, None, b'{"received":' + body + b"}", None)


def test_erasure_clears_partner_responses_that_echo_the_persons_details(
    wh: Service,
) -> None:
    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    ep = register(wh, key, "http://127.0.0.1:9/hooks", event_types=["signature.created"])
    gone, kept = (
        signed("erase.me@example.org", [PARTNER_A]),
        signed("keep@example.org", [PARTNER_A]),
    )
    write_events(wh, clock, gone, kept)
    dispatch = Dispatcher(wh.engine, wh.deps.webhooks, clock=clock,
                          transport=EchoTransport(), rng=random.Random(3))  # fmt: skip
    assert dispatch.drain() == 2
    (gone_id,) = [m.message_id for m in wh.rows(messages, messages.c.supporter_id == gone.key)]
    (kept_id,) = [m.message_id for m in wh.rows(messages, messages.c.supporter_id == kept.key)]
    url = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}/attempts"

    def excerpts() -> dict[str, Any]:
        page = wh.client().get(url, headers=key).get_json()
        return {a["message_id"]: a["response_excerpt"] for a in page["_embedded"]["attempts"]}

    before = excerpts()
    assert "erase.me@example.org" in before[gone_id] and "keep@example.org" in before[kept_id]
    wh.start()
    erased = event("person.erased", gone.key, supporter_id=gone.key, email_hash=None,
                   phone_hash=None)  # fmt: skip
    wh.producer.send(NOTIFICATIONS, key=gone.key.encode(), value=erased.value(),
                           headers=erased.headers())  # fmt: skip
    wh.producer.flush(timeout=30)
    eventually(
        lambda: not wh.rows(messages, messages.c.supporter_id == gone.key),
        message="erasure processed",
    )
    # The scrub and the excerpts' clearing commit together: the partner's echo is gone too.
    after = excerpts()
    assert {gone_id: after[gone_id], kept_id: after[kept_id]} == {
        gone_id: None,
        kept_id: before[kept_id],
    }
    # The endpoint is told to delete what it was sent (its own message, and attempts).
    notices = wh.rows(messages, messages.c.event_type == "person.erased")
    assert [(n.endpoint_id, n.supporter_id) for n in notices] == [(ep["endpoint_id"], None)]
    assert set(after) <= {gone_id, kept_id, notices[0].message_id}


class ErasedInFlight:
    """Echoes the payload, as EchoTransport, but the person is erased while the request is out."""

    def __init__(self, service: Service, supporter_id: str) -> None:
        self.service = service
        self.supporter_id = supporter_id

    def post(self, pool_key: str, url: str, headers: dict[str, str], body: bytes,
             timeout: float) -> Reply:  # fmt: skip
        from services.notifications.webhooks.handlers import scrub

        with self.service.engine.begin() as conn:
            assert scrub(conn, self.supporter_id) == 1
        return Reply(200, None, b'{"received":' + body + b"}", None)


def test_a_response_that_returns_after_the_erasure_is_not_kept(wh: Service) -> None:
    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    ep = register(wh, key, "http://127.0.0.1:9/hooks", event_types=["signature.created"])
    gone = signed("erased.in.flight@example.org", [PARTNER_A])
    write_events(wh, clock, gone)
    dispatch = Dispatcher(wh.engine, wh.deps.webhooks, clock=clock,
                          transport=ErasedInFlight(wh, gone.key),
                          rng=random.Random(3))  # fmt: skip
    assert dispatch.drain() == 1
    (attempt,) = wh.rows(attempts, attempts.c.endpoint_id == ep["endpoint_id"])
    assert attempt.status_code == 200 and attempt.response_excerpt is None
    (message,) = wh.rows(messages, messages.c.endpoint_id == ep["endpoint_id"])
    assert message.status == "succeeded" and "erased.in.flight" not in message.body


def test_bodies_that_are_too_big_too_deep_or_not_json_are_refused_before_any_work(
    service: Service,
) -> None:
    client = service.client()
    admin = issue_key(service.engine, "admin", "org-odd")
    # Gigantic: refused by its length, never read into the worker's memory; without a key,
    # refused before anything is read at all.
    huge = b"x" * (3 * 1024 * 1024)
    anonymous = client.post("/api/v1/erasures", data=huge, content_type="application/json")
    assert anonymous.status_code == 401
    too_big = client.post(
        "/api/v1/erasures", data=huge, content_type="application/json", headers=admin
    )
    assert too_big.status_code == 413
    deep = client.post(
        "/api/v1/erasures",
        data="[" * 50_000 + "]" * 50_000,
        content_type="application/json",
        headers=admin,
    )
    assert deep.status_code == 400 and "body" in deep.get_json()["errors"]
    plain = client.post(
        "/api/v1/erasures",
        data='{"email": "a@example.org"}',
        content_type="text/plain",
        headers=admin,
    )
    assert plain.status_code == 415 and "Content-Type" in plain.get_json()["errors"]


def test_webhook_inputs_the_database_cannot_store_are_a_422_naming_the_field(wh: Service) -> None:
    partner = issue_key(wh.engine, "partner", PARTNER_A)
    client = wh.client()
    created = client.post(
        "/api/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hook", "description": "ours\x00"},
        headers=partner,
    )
    assert created.status_code == 422 and "description" in created.get_json()["errors"]
    listed = client.get(
        "/api/v1/webhooks/endpoints/ep-1/attempts?message_id=msg%00", headers=partner
    )
    assert listed.status_code == 422 and "message_id" in listed.get_json()["errors"]
