"""Partner webhooks end to end: real PostgreSQL, Kafka and HTTP receivers on loopback that
verify signatures with the `standardwebhooks` library."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from psycopg import sql as psql
from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql

from services.notifications import audience
from services.notifications.senders import PermanentSendError, TransientSendError
from services.notifications.store import campaigns, organizations, signatures, supporters
from services.notifications.webhooks import manage
from services.notifications.webhooks.dispatcher import Dispatcher, due_query
from services.notifications.webhooks.handlers import handlers as webhook_handlers
from services.notifications.webhooks.store import attempts, deletions, endpoints, messages
from services.notifications.webhooks.transport import Reply
from shared.errors import FieldError
from shared.events import Event
from shared.events.catalog import NOTIFICATIONS
from shared.events.envelope import format_time, utcnow
from tests.integration.notifications.harness import (
    HASH_KEY,
    Service,
    event,
    issue_key,
    organization,
    petition,
    signature,
)
from tests.integration.notifications.webhook_receiver import receivers
from tests.support.polling import eventually

pytestmark = pytest.mark.integration
LEAD, PARTNER_A, PARTNER_B = "org-lead", "org-a", "org-b"


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def register(svc: Service, key: dict[str, str], url: str, **extra: Any) -> dict[str, Any]:
    response = svc.client().post("/api/v1/webhooks/endpoints", json={"url": url, **extra},
                                 headers=key)  # fmt: skip
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def campaign(
    campaign_id: str = "camp-1", partners: tuple[str, ...] = (PARTNER_A, PARTNER_B)
) -> Event:
    return event(
        "campaign.launched", campaign_id, campaign_id=campaign_id, lead_organization_id=LEAD,
        partner_organization_ids=list(partners), communities=["lgbtq", "mixed-asian-heritage"],
        titles={"en": "Language access now"}, status="active",
    )  # fmt: skip


def signed(email: str, shared_with: list[str], attributed: str | None = None, **kw: Any) -> Event:
    sig = signature(email, "pet-1", "camp-1", LEAD, pronouns="they/them", **kw)
    data = dict(sig.data)
    data["consents"] = {**data["consents"], "partner_organization_ids": shared_with}
    data["attribution"] = {"source": "a-newsletter" if attributed else None,
                           "partner_organization_id": attributed}  # fmt: skip
    data["interests"] = ["queer-aapi-health"]
    return Event(type=sig.type, key=sig.key, data=data, source=sig.source)


def write_events(svc: Service, clock: Clock, *events: Event) -> None:
    """Run the webhook handlers as the consumer would, in one transaction."""
    table = webhook_handlers(clock, svc.deps.settings.hash_key)
    with svc.engine.begin() as conn:
        for e in events:
            for handle in table.get(e.type, []):
                handle(e, conn)


def dispatcher(svc: Service, clock: Clock, **config: Any) -> Dispatcher:
    return Dispatcher(
        svc.engine, svc.deps.webhooks.with_(**config), clock=clock, email=svc.deps.email,
        rng=random.Random(3),
    )  # fmt: skip


def message_rows(svc: Service, endpoint_id: str) -> list[Any]:
    return svc.rows(messages, messages.c.endpoint_id == endpoint_id)


def seed_projection(svc: Service) -> None:
    with svc.engine.begin() as conn:
        for org in (LEAD, PARTNER_A, PARTNER_B):
            audience.upsert_organization(
                conn, "k", {"organization_id": org, "name": org,
                            "contact_email": f"tech@{org}.example.org"}, utcnow(),
            )  # fmt: skip
        audience.upsert_campaign(conn, campaign().data, utcnow())


@contextmanager
def partner_endpoint(
    wh: Service, signers: int, prefix: str
) -> Iterator[tuple[Clock, Any, dict[str, str], dict[str, Any]]]:
    """Partner A's endpoint at a receiver, and `signers` signatures shared with A written:
    the clock, the receiver, A's key and the endpoint."""
    clock = Clock()
    seed_projection(wh)
    with receivers(1) as (rx,):
        key = issue_key(wh.engine, "partner", PARTNER_A)
        ep = register(wh, key, rx.url)
        emails = (f"{prefix}{i}@example.org" for i in range(signers))
        write_events(wh, clock, *(signed(email, [PARTNER_A]) for email in emails))
        yield clock, rx, key, ep


# -- the partner's path ----------------------------------------------------------------------------


def test_partner_registers_receives_signed_events_sees_attempts_and_replays(wh: Service) -> None:
    wh.start()
    key = issue_key(wh.engine, "partner", PARTNER_A)
    with receivers(1) as (rx,):
        ep = register(wh, key, rx.url, description="CRM sync",
                      event_types=["signature.created", "petition.milestone_reached"])  # fmt: skip
        assert ep["secret"].startswith("whsec_")
        wh.publish(organization(LEAD), organization(PARTNER_A), campaign(),
                   petition("pet-1", "camp-1", LEAD))  # fmt: skip
        sig = signed("ana@example.org", [PARTNER_A], attributed=PARTNER_A)
        wh.publish(sig)
        wh.publish(sig)  # redelivered: still one message
        got = eventually(lambda: rx.received, message="signature delivered")
        first = got[0]
        assert first.verifies(ep["secret"])
        assert first.message_id.startswith("msg_")
        body = first.json()
        assert body["type"] == "signature.created"
        assert body["timestamp"] == format_time(sig.time)
        assert body["data"]["person"]["email"] == "ana@example.org"
        assert body["data"]["attribution"]["partner_organization_id"] == PARTNER_A
        assert "they/them" not in first.body and "queer-aapi-health" not in first.body
        # The filter keeps campaign and petition lifecycle events away from this endpoint.
        milestone = event(
            "petition.milestone_reached", "pet-1", petition_id="pet-1", campaign_id="camp-1",
            milestone=100, total=101, next_goal=250,
        )  # fmt: skip
        wh.publish(milestone)
        eventually(lambda: len(rx.received) == 2, message="milestone delivered")
        assert [r.json()["type"] for r in rx.received] == [
            "signature.created",
            "petition.milestone_reached",
        ]
        client = wh.client()
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"

        def attempts() -> Any:
            return client.get(f"{base}/attempts", headers=key).get_json()

        # The dispatcher records attempts after the replies, on its recorder thread.
        logged = eventually(
            lambda: (page := attempts())["total_records"] == 2 and page, message="attempts logged"
        )
        attempt = logged["_embedded"]["attempts"][0]
        assert attempt["status_code"] == 200 and attempt["latency_ms"] >= 0
        assert attempt["response_excerpt"] == '{"ok":true}' and attempt["error"] is None
        # Test send, then replay of the first message with its same webhook-id.
        test = client.post(f"{base}/test", headers=key)
        assert test.status_code == 202
        eventually(lambda: test.get_json()["message_id"] in rx.ids(), message="test message")
        assert rx.received[-1].json()["type"] == "webhook.test"
        replay = client.post(f"{base}/messages/{first.message_id}/replay", headers=key)
        assert replay.status_code == 202
        eventually(lambda: rx.ids().count(first.message_id) == 2, message="replayed")
        assert rx.received[-1].verifies(ep["secret"]) and rx.received[-1].body == first.body
        page = client.get(f"{base}/messages?per_page=1", headers=key).get_json()
        assert page["total_records"] == 3 and "next" in page["_links"]


def test_personal_data_reaches_only_the_partners_a_signer_chose(wh: Service) -> None:
    wh.start()
    with receivers(3) as (lead_rx, a_rx, b_rx):
        eps = {
            org: register(wh, issue_key(wh.engine, "partner", org), rx.url)
            for org, rx in ((LEAD, lead_rx), (PARTNER_A, a_rx), (PARTNER_B, b_rx))
        }
        wh.publish(organization(LEAD), organization(PARTNER_A), organization(PARTNER_B))
        wh.publish(campaign())
        # Petition events learn the coalition from the campaign projection (another topic).
        eventually(lambda: wh.count(campaigns) == 1, message="campaign projected")
        wh.publish(petition("pet-1", "camp-1", LEAD))
        wh.publish(
            signed("shares.with.a@example.org", [PARTNER_A], attributed=PARTNER_B,
                   phone="+14155550111"),
            signed("shares.with.nobody@example.org", [], attributed=PARTNER_A,
                   phone="+14155550122"),
            signed("shares.with.b@example.org", [PARTNER_B]),
        )  # fmt: skip
        # campaign + petition to all three; then 2 signatures each to A and B, 3 to the lead.
        eventually(lambda: len(a_rx.received) == 4 and len(b_rx.received) == 4
                   and len(lead_rx.received) == 5, message="all deliveries")  # fmt: skip
        everything = [r for rx in (lead_rx, a_rx, b_rx) for r in rx.received]
        for delivered in everything:
            assert "shares.with.nobody" not in delivered.body
            assert "+14155550122" not in delivered.body
            assert "lgbtq" not in delivered.body and "mixed-asian-heritage" not in delivered.body
            assert "they/them" not in delivered.body and "queer-aapi" not in delivered.body
        a_bodies = " ".join(r.body for r in a_rx.received)
        b_bodies = " ".join(r.body for r in b_rx.received)
        lead_bodies = " ".join(r.body for r in lead_rx.received)
        assert "shares.with.a@example.org" in a_bodies and "+14155550111" in a_bodies
        assert "shares.with.a" not in b_bodies + lead_bodies
        assert "shares.with.b@example.org" in b_bodies and "shares.with.b" not in a_bodies
        # A is sent the person B recruited, but not that B did.
        [to_a] = [r.json()["data"] for r in a_rx.received if "shares.with.a" in r.body]
        assert "attribution" not in to_a and PARTNER_B not in json.dumps(to_a)
        withheld = [r.json()["data"] for r in a_rx.received
                    if r.json()["type"] == "signature.created"
                    and not r.json()["data"]["shared_with_you"]]  # fmt: skip
        # The one A recruited who shared with nobody: A learns a signature came through it,
        # never who signed.
        [kept] = withheld
        assert set(kept) == {
            "signature_id", "petition_id", "campaign_id", "organization_id", "locale", "at",
            "attribution", "double_opt_in", "shared_with_you",
        }  # fmt: skip
        assert kept["attribution"]["partner_organization_id"] == PARTNER_A
        assert (kept["shared_with_you"], kept["double_opt_in"]) == (False, False)
        for org, rx in ((LEAD, lead_rx), (PARTNER_A, a_rx), (PARTNER_B, b_rx)):
            assert all(r.verifies(eps[org]["secret"]) for r in rx.received)
        # Nothing stored for delivery holds it either.
        stored = " ".join(r.body for r in wh.rows(messages))
        assert "shares.with.nobody" not in stored


def test_a_partner_out_of_the_coalition_is_told_once_and_then_hears_nothing(wh: Service) -> None:
    wh.start()
    with receivers(3) as (lead_rx, a_rx, b_rx):
        for org, rx in ((LEAD, lead_rx), (PARTNER_A, a_rx), (PARTNER_B, b_rx)):
            register(wh, issue_key(wh.engine, "partner", org), rx.url)
        wh.publish(organization(LEAD), organization(PARTNER_A), organization(PARTNER_B))
        wh.publish(campaign())
        eventually(lambda: len(b_rx.received) == 1, message="campaign to B")
        removed = event(
            "campaign.partner_removed", "camp-1", campaign_id="camp-1",
            organization_id=PARTNER_B, left=False,
        )  # fmt: skip
        wh.publish(removed)
        eventually(lambda: len(b_rx.received) == 2, message="B told of its removal")
        assert b_rx.received[1].json()["data"] == {
            "campaign_id": "camp-1", "organization_id": PARTNER_B, "left": False,
            "at": removed.data["at"],
        }  # fmt: skip
        assert wh.rows(campaigns)[0].partner_organization_ids == [PARTNER_A]
        # What the coalition does next is no longer B's to hear; nor is a signature that
        # ticked B's box before the removal and is read after it (a double opt-in confirmed
        # late, a consumer behind): the lead took B out of the coalition.
        wh.publish(petition("pet-1", "camp-1", LEAD))
        wh.publish(signed("shared.with.b@example.org", [PARTNER_B], attributed=PARTNER_B))
        eventually(lambda: len(lead_rx.received) == 4 and len(a_rx.received) == 3,
                   message="the rest of the coalition hears on")  # fmt: skip
        time.sleep(1.0)  # the dispatcher works in ticks; nothing more may come to B
        assert [r.json()["type"] for r in b_rx.received] == [
            "campaign.launched",
            "campaign.partner_removed",
        ]
        assert "shared.with.b" not in " ".join(r.body for r in wh.rows(messages)
                                               if r.organization_id == PARTNER_B)  # fmt: skip


def test_a_partner_taken_out_is_sent_no_signer_still_waiting_for_it(wh: Service) -> None:
    """Signers who ticked a partner's box before the lead took it out: those its endpoint
    already received stay in its log but are not replayed; those still waiting (a retry, a
    failure a recovery would resend) never go."""
    with partner_endpoint(wh, 1, "early") as (clock, rx, key, ep):
        d = dispatcher(wh, clock, schedule=(60.0,))
        d.drain()
        [early] = [r for r in rx.received if "early0@example.org" in r.body]
        rx.default = (503, {}, b"")
        write_events(wh, clock, signed("waiting@example.org", [PARTNER_A]))
        d.drain()  # its first try fails; a retry is due in a minute
        assert len(rx.received) == 2
        removed = event(
            "campaign.partner_removed", "camp-1", campaign_id="camp-1",
            organization_id=PARTNER_A, left=False,
        )  # fmt: skip
        with wh.engine.begin() as conn:  # the projection's handler runs first in the consumer
            audience.set_campaign_partner(conn, "camp-1", PARTNER_A, member=False)
        write_events(wh, clock, removed)
        rx.default = (204, {}, b"")
        for _ in range(3):
            clock.advance(120)
            d.drain()
        assert [r.json()["type"] for r in rx.received[2:]] == ["campaign.partner_removed"]
        stored = message_rows(wh, ep["endpoint_id"])
        assert "waiting@example.org" not in " ".join(r.body for r in stored)
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        replay = wh.client().post(f"{base}/messages/{early.message_id}/replay", headers=key)
        assert replay.status_code == 409 and "message_id" in replay.get_json()["errors"]
        recovered = wh.client().post(
            f"{base}/recover", json={"since": format_time(clock.now - timedelta(days=1))},
            headers=key,
        )  # fmt: skip
        assert recovered.get_json() == {"recovered": 0}


def test_a_signer_written_for_a_partner_while_its_removal_is_handled_is_withdrawn(
    wh: Service,
) -> None:
    """Two consumers at once: one writes a signer's message for partner A (it read A as a
    partner), the other handles A's removal, which could not see that uncommitted message
    and left it to be sent. The first holds the campaign's row until it commits; the removal
    waits for it, then withdraws the message."""
    import threading

    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    ep = register(wh, key, "http://127.0.0.1:9/a")
    table = webhook_handlers(clock, wh.deps.settings.hash_key)
    removed = event(
        "campaign.partner_removed", "camp-1", campaign_id="camp-1",
        organization_id=PARTNER_A, left=False,
    )  # fmt: skip

    def handle_removal() -> None:
        with wh.engine.begin() as conn:  # the projection's handler, then the webhooks'
            audience.set_campaign_partner(conn, "camp-1", PARTNER_A, member=False)
            for handle in table[removed.type]:
                handle(removed, conn)

    sig = signed("racing@example.org", [PARTNER_A])
    with wh.engine.connect() as conn:
        writing = conn.begin()
        for handle in table[sig.type]:
            handle(sig, conn)
        removal = threading.Thread(target=handle_removal, daemon=True)
        removal.start()
        removal.join(1.0)
        assert removal.is_alive()  # waits for the signer's message to commit
        writing.commit()
    removal.join(10)
    bodies = " ".join(r.body for r in message_rows(wh, ep["endpoint_id"]))
    assert "racing@example.org" not in bodies and "campaign.partner_removed" in bodies


def test_a_partner_whose_join_is_not_read_yet_still_gets_the_signers_who_ticked_its_box(
    wh: Service,
) -> None:
    """Petitions offered B's box as soon as B joined; notifications reads the join on another
    topic, with no order against the signatures (a consumer catching up after an outage). A
    signer who ticked B's box in between is B's: only a partner the lead took out is dropped."""
    clock = Clock()
    with wh.engine.begin() as conn:
        for org in (LEAD, PARTNER_A, PARTNER_B):
            audience.upsert_organization(conn, "k", {"organization_id": org, "name": org}, utcnow())
        audience.upsert_campaign(conn, campaign(partners=(PARTNER_A,)).data, utcnow())
    a = register(wh, issue_key(wh.engine, "partner", PARTNER_A), "http://127.0.0.1:9/a",
                 event_types=["signature.created"])  # fmt: skip
    b = register(wh, issue_key(wh.engine, "partner", PARTNER_B), "http://127.0.0.1:9/b",
                 event_types=["signature.created"])  # fmt: skip
    write_events(wh, clock, signed("early@example.org", [PARTNER_B]))
    assert [m.supporter_id for m in message_rows(wh, b["endpoint_id"])] == [
        signed("early@example.org", []).key
    ]
    with wh.engine.begin() as conn:  # the join read at last; then the lead takes A out
        audience.set_campaign_partner(conn, "camp-1", PARTNER_B, member=True)
        audience.set_campaign_partner(conn, "camp-1", PARTNER_A, member=False)
    write_events(wh, clock, signed("late@example.org", [PARTNER_A, PARTNER_B]))
    assert len(message_rows(wh, b["endpoint_id"])) == 2
    assert message_rows(wh, a["endpoint_id"]) == []  # the lead took A out
    # Taken back in by a campaign event (its full list of partners), then out by the next:
    # what each says, in their order.
    with wh.engine.begin() as conn:
        audience.upsert_campaign(conn, campaign(partners=(PARTNER_A, PARTNER_B)).data, utcnow())
    write_events(wh, clock, signed("back@example.org", [PARTNER_A]))
    assert len(message_rows(wh, a["endpoint_id"])) == 1
    with wh.engine.begin() as conn:
        audience.upsert_campaign(conn, campaign(partners=(PARTNER_B,)).data, utcnow())
    assert wh.rows(campaigns)[0].removed_partner_ids == [PARTNER_A]
    write_events(wh, clock, signed("out.again@example.org", [PARTNER_A]))
    assert len(message_rows(wh, a["endpoint_id"])) == 1
    # A campaign projected before removals were recorded keeps the partners-as-known rule:
    # a partner it took out then, unrecorded, is never sent anything.
    with wh.engine.begin() as conn:
        conn.execute(update(campaigns).values(removed_partner_ids=None))
        audience.set_campaign_partner(conn, "camp-1", PARTNER_B, member=False)
        audience.upsert_campaign(conn, campaign(partners=()).data, utcnow())
    assert wh.rows(campaigns)[0].removed_partner_ids is None
    write_events(wh, clock, signed("later@example.org", [PARTNER_A, PARTNER_B]))
    assert len(message_rows(wh, b["endpoint_id"])) == 2
    assert len(message_rows(wh, a["endpoint_id"])) == 1  # only "back@" of before


def test_confirming_after_a_partner_left_shares_nothing_with_it(wh: Service) -> None:
    """A double opt-in signature ticked A's and B's boxes; B left the campaign before the
    link was used. The confirmation shares with A only: no consent to share with B, which
    would show on the preference page and list B among those holding the person."""
    wh.start()
    wh.publish(organization(LEAD), organization(PARTNER_A), organization(PARTNER_B),
               campaign(), petition("pet-1", "camp-1", LEAD, double_opt_in=True))  # fmt: skip
    sig = signed("late.confirm@example.org", [PARTNER_A, PARTNER_B], double_opt_in=True)
    wh.publish(sig)
    eventually(lambda: wh.count(signatures) == 1, message="pending signature projected")
    wh.publish(event("campaign.partner_removed", "camp-1", campaign_id="camp-1",
                     organization_id=PARTNER_B, left=True))  # fmt: skip
    eventually(lambda: wh.rows(campaigns)[0].removed_partner_ids == [PARTNER_B],
               message="B's leaving projected")  # fmt: skip
    wh.publish(event("signature.confirmed", sig.key, signature_id=sig.data["signature_id"],
                     petition_id="pet-1", campaign_id="camp-1", supporter_id=sig.key))  # fmt: skip
    eventually(lambda: wh.rows(signatures)[0].confirmed, message="confirmed")
    with wh.engine.connect() as conn:
        assert audience.shared_with(conn, sig.key) == [PARTNER_A]
    # Petitions says what a confirmation shares: that holds even where this projection has
    # not read the partner's leaving yet (campaign events come on another topic).
    other = signed("other.confirm@example.org", [PARTNER_A, PARTNER_B], double_opt_in=True)
    wh.publish(other)
    eventually(lambda: wh.count(signatures) == 2, message="second pending signature")
    with wh.engine.begin() as conn:  # B back, as far as this projection knows
        audience.set_campaign_partner(conn, "camp-1", PARTNER_B, member=True)
    wh.publish(event("signature.confirmed", other.key, signature_id=other.data["signature_id"],
                     petition_id="pet-1", campaign_id="camp-1", supporter_id=other.key,
                     partner_organization_ids=[PARTNER_A]))  # fmt: skip
    eventually(lambda: all(r.confirmed for r in wh.rows(signatures)), message="second confirmed")
    with wh.engine.connect() as conn:
        assert audience.shared_with(conn, other.key) == [PARTNER_A]


def test_a_confirmation_reaches_the_partners_petitions_names_whatever_this_view_says(
    wh: Service,
) -> None:
    """Petitions kept A's box when the signature was confirmed (A was a partner then); this
    projection has not read A's rejoining yet and counts it out. The confirmation's webhook
    goes to A all the same, with the share it now holds."""
    wh.start()
    wh.publish(organization(LEAD), organization(PARTNER_A), organization(PARTNER_B),
               campaign(), petition("pet-1", "camp-1", LEAD, double_opt_in=True))  # fmt: skip
    a = register(wh, issue_key(wh.engine, "partner", PARTNER_A), "http://127.0.0.1:9/a",
                 event_types=["signature.confirmed"])  # fmt: skip
    sig = signed("kept.by.petitions@example.org", [PARTNER_A], double_opt_in=True)
    wh.publish(sig)
    eventually(lambda: wh.count(signatures) == 1, message="pending signature projected")
    with wh.engine.begin() as conn:  # out, as far as this projection knows
        audience.set_campaign_partner(conn, "camp-1", PARTNER_A, member=False)
    wh.publish(event("signature.confirmed", sig.key, signature_id=sig.data["signature_id"],
                     petition_id="pet-1", campaign_id="camp-1", supporter_id=sig.key,
                     partner_organization_ids=[PARTNER_A]))  # fmt: skip
    eventually(lambda: message_rows(wh, a["endpoint_id"]), message="A's confirmation message")
    with wh.engine.connect() as conn:
        assert audience.shared_with(conn, sig.key) == [PARTNER_A]


def test_a_double_opt_in_signers_details_go_out_only_once_the_address_is_confirmed(
    wh: Service,
) -> None:
    """Anyone can type anyone's address: until its owner confirms, nobody gets the person."""
    wh.start()
    with receivers(3) as (lead_rx, a_rx, b_rx):
        for org, rx in ((LEAD, lead_rx), (PARTNER_A, a_rx), (PARTNER_B, b_rx)):
            register(wh, issue_key(wh.engine, "partner", org), rx.url,
                     event_types=["signature.created", "signature.confirmed"])  # fmt: skip
        wh.publish(organization(LEAD), organization(PARTNER_A), organization(PARTNER_B),
                   campaign(), petition("pet-1", "camp-1", LEAD, double_opt_in=True))  # fmt: skip
        sig = signed("doi@example.org", [PARTNER_A], attributed=PARTNER_B, double_opt_in=True,
                     phone="+14155550133")  # fmt: skip
        wh.publish(sig)
        for rx in (lead_rx, a_rx, b_rx):
            eventually(lambda rx=rx: rx.received, message="signature.created delivered")
        (pending,) = a_rx.received
        data = pending.json()["data"]
        assert pending.json()["type"] == "signature.created" and data["double_opt_in"] is True
        assert "person" not in data and "supporter_id" not in data and not data["shared_with_you"]
        assert "doi@example.org" not in pending.body and "+14155550133" not in pending.body
        stored = " ".join(r.body for r in wh.rows(messages))
        assert "doi@example.org" not in stored
        confirm = event(
            "signature.confirmed", sig.key, signature_id=sig.data["signature_id"],
            petition_id="pet-1", campaign_id="camp-1", supporter_id=sig.key,
        )  # fmt: skip
        wh.publish(confirm)
        confirmed = eventually(lambda: a_rx.received[1:], message="confirmation delivered")[0]
        body = confirmed.json()
        assert body["type"] == "signature.confirmed" and body["data"]["shared_with_you"] is True
        assert body["data"]["supporter_id"] == sig.key
        assert body["data"]["person"]["email"] == "doi@example.org"
        assert body["data"]["person"]["phone"] == "+14155550133"
        assert "they/them" not in confirmed.body and "queer-aapi" not in confirmed.body
        # The lead hears of the confirmation without the person; B (not ticked) never hears it.
        lead_confirmed = eventually(lambda: lead_rx.received[1:], message="lead told")[0]
        assert lead_confirmed.json()["type"] == "signature.confirmed"
        assert not lead_confirmed.json()["data"]["shared_with_you"]
        # Every endpoint's messages were written in one transaction: all are stored by now.
        by_org = {r.organization_id: [] for r in wh.rows(messages)}
        for row in wh.rows(messages):
            by_org[row.organization_id].append((row.event_type, row.body))
        assert sorted(t for t, _ in by_org[PARTNER_B]) == ["signature.created"]
        for _, stored_body in by_org[LEAD] + by_org[PARTNER_B]:
            assert "doi@example.org" not in stored_body and "+14155550133" not in stored_body
        assert len(a_rx.received) == 2


def test_a_confirmed_signature_shares_only_what_that_signature_gave(wh: Service) -> None:
    """The number Mi gave an earlier petition, shared with nobody, is not this partner's."""
    wh.start()
    with receivers(1) as (a_rx,):
        register(wh, issue_key(wh.engine, "partner", PARTNER_A), a_rx.url,
                 event_types=["signature.confirmed"])  # fmt: skip
        wh.publish(organization(LEAD), organization(PARTNER_A), campaign(),
                   petition("pet-0", "camp-1", LEAD),
                   petition("pet-1", "camp-1", LEAD, double_opt_in=True))  # fmt: skip
        wh.publish(signature("mi@example.org", "pet-0", "camp-1", LEAD, phone="+14155550155"))
        eventually(lambda: wh.rows(supporters), message="Mi on file with her number")
        sig = signed("mi@example.org", [PARTNER_A], double_opt_in=True, given_name="Mi")
        wh.publish(sig)
        eventually(lambda: wh.rows(signatures), message="the signature waits for its link")
        wh.publish(
            event("signature.confirmed", sig.key, signature_id=sig.data["signature_id"],
                  petition_id="pet-1", campaign_id="camp-1", supporter_id=sig.key)
        )  # fmt: skip
        [confirmed] = eventually(lambda: a_rx.received, message="confirmation delivered")
    person = confirmed.json()["data"]["person"]
    assert person["email"] == "mi@example.org" and person["given_name"] == "Mi"
    assert person["phone"] is None and "+14155550155" not in confirmed.body


# -- signatures and retries ------------------------------------------------------------------------


def test_rotation_signs_with_both_secrets_for_24_hours_then_only_the_new(wh: Service) -> None:
    clock = Clock()
    wh.deps.clock = clock  # the rotation's 24 hours are counted on the dispatcher's clock
    key = issue_key(wh.engine, "partner", PARTNER_A)
    seed_projection(wh)
    with receivers(1) as (rx,):
        ep = register(wh, key, rx.url)
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        rotated = wh.client().post(f"{base}/rotate-secret", headers=key).get_json()
        old, new = ep["secret"], rotated["secret"]
        assert new != old and "previous_secret" not in rotated
        d = dispatcher(wh, clock)
        write_events(wh, clock, signed("r1@example.org", [PARTNER_A]))
        d.drain()
        during = rx.received[-1]
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        assert during.verifies(old) and during.verifies(new)
        clock.advance(24 * 3600 + 1)
        write_events(wh, clock, signed("r2@example.org", [PARTNER_A]))
        d.drain()
        after = rx.received[-1]
        assert after.verifies(new) and not after.verifies(old)


def test_a_second_rotation_within_the_overlap_keeps_the_first_old_secret(wh: Service) -> None:
    """Rotated at 10:00 and again at 11:00 (the partner has not deployed the 10:00 secret yet):
    the original secret still signs until 10:00 the next day, the 10:00 one until 11:00."""
    clock = Clock()
    wh.deps.clock = clock
    key = issue_key(wh.engine, "partner", PARTNER_A)
    seed_projection(wh)
    with receivers(1) as (rx,):
        ep = register(wh, key, rx.url)
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        rotate = f"{base}/rotate-secret"
        first = wh.client().post(rotate, headers=key).get_json()["secret"]
        clock.advance(3600)
        second = wh.client().post(rotate, headers=key).get_json()
        expires = datetime.fromisoformat(second["previous_secret_expires_at"])
        assert expires == clock.now + timedelta(days=1)
        original, latest = ep["secret"], second["secret"]
        d = dispatcher(wh, clock)

        def delivered(email: str) -> Any:
            write_events(wh, clock, signed(email, [PARTNER_A]))
            d.drain()
            return rx.received[-1]

        now = delivered("t1@example.org")
        assert all(now.verifies(s) for s in (original, first, latest))
        clock.advance(23 * 3600 + 1)  # the original's day is over, the first's is not
        later = delivered("t2@example.org")
        assert later.verifies(first) and later.verifies(latest) and not later.verifies(original)
        clock.advance(3600)
        last = delivered("t3@example.org")
        assert last.verifies(latest) and not last.verifies(first)
        assert len(last.headers["webhook-signature"].split(" ")) == 1


def test_failures_retry_on_the_schedule_with_jitter_and_honour_retry_after(wh: Service) -> None:
    clock = Clock()
    seed_projection(wh)
    with receivers(1) as (rx,):
        ep = register(wh, issue_key(wh.engine, "partner", PARTNER_A), rx.url)
        schedule = wh.deps.webhooks.schedule
        d = dispatcher(wh, clock)
        rx.default = (500, {}, b"busy")
        rx.answer(429, headers={"Retry-After": "3600"})  # first answer: come back in an hour
        write_events(wh, clock, signed("retry@example.org", [PARTNER_A]))
        for attempt in range(1, len(schedule) + 2):
            assert d.drain() == 1
            (row,) = message_rows(wh, ep["endpoint_id"])
            assert row.attempts == attempt and len(rx.received) == attempt
            if attempt == len(schedule) + 1:
                assert row.status == "failed" and row.next_attempt_at is None
                break
            wait = (row.next_attempt_at - clock.now).total_seconds()
            base = schedule[attempt - 1]
            if attempt == 1:
                assert wait == pytest.approx(3600, abs=1)  # Retry-After beat the 5 s step
            else:
                assert 0.8 * base <= wait <= 1.2 * base
            clock.advance(wait - 1)
            assert d.drain() == 0  # not due yet: nothing sent early
            clock.advance(1)
        assert len(set(rx.ids())) == 1  # every retry carries the same webhook-id
        assert all(r.verifies(ep["secret"]) for r in rx.received)
        log = wh.rows(attempts, attempts.c.endpoint_id == ep["endpoint_id"])
        assert [a.status_code for a in log] == [429] + [500] * len(schedule)


def test_a_redirect_is_a_failure_and_is_not_followed(wh: Service) -> None:
    clock = Clock()
    seed_projection(wh)
    with receivers(2) as (rx, elsewhere):
        ep = register(wh, issue_key(wh.engine, "partner", PARTNER_A), rx.url)
        rx.answer(302, headers={"Location": elsewhere.url})
        write_events(wh, clock, signed("redirect@example.org", [PARTNER_A]))
        dispatcher(wh, clock).drain()
        (row,) = message_rows(wh, ep["endpoint_id"])
        assert row.status == "pending" and row.attempts == 1 and not elsewhere.received
        (attempt,) = wh.rows(attempts)
        assert attempt.status_code == 302 and "not followed" in attempt.error


def test_410_gone_disables_the_endpoint_at_once(wh: Service) -> None:
    clock = Clock()
    wh.deps.clock = clock  # `recover` schedules on the dispatcher's clock
    seed_projection(wh)
    with receivers(1) as (rx,):
        key = issue_key(wh.engine, "partner", PARTNER_A)
        ep = register(wh, key, rx.url)
        rx.answer(410)
        write_events(wh, clock, *(signed(f"g{i}@example.org", [PARTNER_A]) for i in range(5)))
        d = dispatcher(wh, clock, batch_per_endpoint=1, per_endpoint_concurrency=1)
        d.drain()
        assert len(rx.received) == 1  # nothing more after the 410
        got = wh.client().get(f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}", headers=key)
        assert got.get_json()["enabled"] is False and got.get_json()["disabled_reason"] == "gone"
        assert {r.status for r in message_rows(wh, ep["endpoint_id"])} == {"failed"}
        # Its organization is told, as the notice says: events while disabled are kept too.
        mails = [m for m in wh.fakes.sendgrid_requests()
                 if f"tech@{PARTNER_A}.example.org" in json.dumps(m.body)]  # fmt: skip
        assert len(mails) == 1 and "410 Gone" in json.dumps(mails[0].body)
        write_events(wh, clock, signed("later@example.org", [PARTNER_A]))
        kept = message_rows(wh, ep["endpoint_id"])
        assert len(kept) == 6 and {r.status for r in kept} == {"failed"}
        assert d.drain() == 0 and len(rx.received) == 1  # nothing sent while disabled
        # Enabled again, `recover` resends all of them, the one written while disabled too.
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        wh.client().patch(base, json={"enabled": True}, headers=key)
        since = format_time(clock.now - timedelta(minutes=1))
        answer = wh.client().post(f"{base}/recover", json={"since": since}, headers=key)
        assert answer.get_json() == {"recovered": 6}
        clock.advance(5)
        d.drain()
        assert len(rx.received) == 7
        assert any("later@example.org" in r.body for r in rx.received[1:])
        assert {r.status for r in message_rows(wh, ep["endpoint_id"])} == {"succeeded"}


def test_a_disabled_endpoints_backlog_is_failed_by_housekeeping_in_batches(
    wh: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disabling a dead endpoint flips its row only, in the transaction that records every
    endpoint's deliveries: failing its whole backlog there held up all partners' deliveries
    for as long as that took. Housekeeping fails the backlog a batch at a time; an endpoint
    enabled again before then gets the waiting messages sent, no recovery needed."""
    from services.notifications.webhooks import dispatcher as dispatching

    with partner_endpoint(wh, 7, "b") as (clock, rx, key, ep):
        with wh.engine.begin() as conn:
            dispatching.disable(conn, ep["endpoint_id"], "failing", clock.now)
        assert {r.status for r in message_rows(wh, ep["endpoint_id"])} == {"pending"}
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        assert wh.client().patch(base, json={"enabled": True}, headers=key).status_code == 200
        d = dispatcher(wh, clock)
        d.drain()
        assert len(rx.received) == 7  # enabled again in time: sent as they were
        write_events(wh, clock, *(signed(f"c{i}@example.org", [PARTNER_A]) for i in range(7)))
        with wh.engine.begin() as conn:
            dispatching.disable(conn, ep["endpoint_id"], "gone", clock.now)
        monkeypatch.setattr(dispatching, "PURGE_BATCH", 3)
        assert d.fail_disabled_backlogs() == 7
        waiting = [r for r in message_rows(wh, ep["endpoint_id"]) if r.status != "succeeded"]
        assert len(waiting) == 7 and {r.status for r in waiting} == {"failed"}
        assert d.fail_disabled_backlogs() == 0


def test_a_test_send_or_replay_goes_before_a_failing_endpoints_backlog(wh: Service) -> None:
    """A failing endpoint gets one message a round, oldest due first: a test send or a replay
    pressed while debugging it waited behind the whole backlog (hours), with nothing in the
    attempt log to show for it. They go first."""
    with partner_endpoint(wh, 4, "f") as (clock, rx, key, ep):
        with wh.engine.begin() as conn:
            conn.execute(
                update(endpoints)
                .where(endpoints.c.endpoint_id == ep["endpoint_id"])
                .values(failing_since=clock.now - timedelta(hours=1))
            )
        clock.advance(60)
        rx.default = (503, {}, b"")  # still failing: one message a round
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        assert wh.client().post(f"{base}/test", headers=key).status_code == 202
        d = dispatcher(wh, clock)
        d.tick(wait_for_results=True)
        assert [r.json()["type"] for r in rx.received] == ["webhook.test"]
        newest = max(message_rows(wh, ep["endpoint_id"]), key=lambda r: r.event_time)
        replay = wh.client().post(f"{base}/messages/{newest.message_id}/replay", headers=key)
        assert replay.status_code == 202
        d.tick(wait_for_results=True)
        assert [r.message_id for r in rx.received[1:]] == [newest.message_id]


def test_a_410_fails_the_rest_of_its_chunk_too(wh: Service) -> None:
    """The messages a chunk never tried once the endpoint said 410 are failed with the rest:
    none is left pending behind a disabled endpoint, where `?status=failed` and `recover`
    would not count it."""
    clock = Clock()
    seed_projection(wh)
    with receivers(1) as (rx,):
        key = issue_key(wh.engine, "partner", PARTNER_A)
        ep = register(wh, key, rx.url)
        rx.answer(410)
        write_events(wh, clock, *(signed(f"c{i}@example.org", [PARTNER_A]) for i in range(5)))
        d = dispatcher(wh, clock, per_endpoint_concurrency=1)  # one chunk of all five
        d.drain()
        assert len(rx.received) == 1
        assert [r.status for r in message_rows(wh, ep["endpoint_id"])] == ["failed"] * 5
        failed = wh.client().get(
            f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}/messages?status=failed", headers=key
        )
        assert failed.get_json()["total_records"] == 5


def test_a_retried_test_send_queues_one_message(wh: Service) -> None:
    key = issue_key(wh.engine, "partner", PARTNER_A)
    ep = register(wh, key, "http://127.0.0.1:9/hooks")
    client = wh.client()
    url = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}/test"
    first = client.post(url, headers={**key, "Idempotency-Key": "test-once"})
    again = client.post(url, headers={**key, "Idempotency-Key": "test-once"})
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    tests = [r for r in message_rows(wh, ep["endpoint_id"]) if r.event_type == "webhook.test"]
    assert [r.message_id for r in tests] == [first.get_json()["message_id"]]
    other = client.post(url, headers=key)  # no key: a new test each time
    assert other.status_code == 202
    assert other.get_json()["message_id"] != first.get_json()["message_id"]


def test_an_endpoint_its_owner_turned_off_gets_no_messages(wh: Service) -> None:
    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    ep = register(wh, key, "http://127.0.0.1:9/hooks", enabled=False)
    write_events(wh, clock, signed("off@example.org", [PARTNER_A]))
    assert message_rows(wh, ep["endpoint_id"]) == []


def test_failing_for_five_days_disables_and_emails_the_organization(wh: Service) -> None:
    clock = Clock()
    seed_projection(wh)
    with receivers(1) as (rx,):
        # The URL as its owner typed it goes into the email's HTML: escaped.
        typed = f"{rx.url}?tag=<b>x</b>"
        ep = register(wh, issue_key(wh.engine, "partner", PARTNER_A), typed)
        rx.default = (503, {}, b"down")
        d = dispatcher(wh, clock)
        for day in range(6):
            write_events(wh, clock, signed(f"day{day}@example.org", [PARTNER_A]))
            d.drain()
            clock.advance(86400)
        (row,) = wh.rows(endpoints, endpoints.c.endpoint_id == ep["endpoint_id"])
        assert not row.enabled and row.disabled_reason == "failing" and row.notice == "sent"
        mails = [
            m for m in wh.fakes.sendgrid_requests()
            if any(t["email"] == f"tech@{PARTNER_A}.example.org"
                   for p in m.body["personalizations"] for t in p["to"])
        ]  # fmt: skip
        assert len(mails) == 1 and "disabled" in mails[0].body["subject"]
        html = next(c["value"] for c in mails[0].body["content"] if c["type"] == "text/html")
        assert f"{rx.url}?tag=&lt;b&gt;x&lt;/b&gt;" in html and "<b>" not in html


class RefusingEmail:
    """An email sender whose provider refuses the address for good."""

    def __init__(self) -> None:
        self.calls = 0

    def send_batch(self, batch: Any) -> Any:
        self.calls += 1
        raise PermanentSendError("invalid address", "400")


class StuckEmail:
    """An email sender whose provider does not answer until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def send_batch(self, batch: Any) -> Any:
        self.calls += 1
        self.release.wait(120)
        raise TransientSendError("provider timed out")


def test_a_slow_email_provider_does_not_hold_up_deliveries(wh: Service) -> None:
    """Telling an owner its endpoint was disabled goes by email; while the provider hangs,
    other partners' deliveries go on."""
    clock = Clock()
    seed_projection(wh)
    with receivers(2) as (dead_rx, live_rx):
        dead = register(wh, issue_key(wh.engine, "partner", PARTNER_A), dead_rx.url)
        register(wh, issue_key(wh.engine, "partner", PARTNER_B), live_rx.url)
        dead_rx.answer(410)
        email = StuckEmail()
        d = Dispatcher(wh.engine, wh.deps.webhooks, clock=clock, email=email,
                       rng=random.Random(3))  # fmt: skip
        loop = threading.Thread(target=d.run, daemon=True)
        loop.start()
        try:
            write_events(wh, clock, signed("first@example.org", [PARTNER_A]))
            d.wake()

            def disabled() -> bool:
                (row,) = wh.rows(endpoints, endpoints.c.endpoint_id == dead["endpoint_id"])
                return row.disabled_reason == "gone"

            eventually(disabled, message="the 410 disabled the endpoint")
            eventually(lambda: email.calls == 1, message="the notice is being sent")
            write_events(wh, clock, signed("next@example.org", [PARTNER_B]))
            d.wake()
            eventually(lambda: live_rx.received, message="delivered while the email hangs")
            assert not email.release.is_set()
        finally:
            email.release.set()
            d.stop()
            loop.join(timeout=60)
        assert not loop.is_alive()


def test_a_notice_refused_for_good_is_final_and_one_left_sending_is_taken_back(
    wh: Service,
) -> None:
    clock = Clock()
    seed_projection(wh)
    with receivers(1) as (rx,):
        ep = register(wh, issue_key(wh.engine, "partner", PARTNER_A), rx.url)
        rx.answer(410)
        write_events(wh, clock, signed("notice@example.org", [PARTNER_A]))
        email = RefusingEmail()
        d = Dispatcher(wh.engine, wh.deps.webhooks, clock=clock, email=email,
                       rng=random.Random(3))  # fmt: skip
        d.drain()
        assert d.send_notices() == 0 and d.send_notices() == 0
        assert email.calls == 1  # not tried again every 5 s

        def notice() -> str | None:
            (row,) = wh.rows(endpoints, endpoints.c.endpoint_id == ep["endpoint_id"])
            return row.notice

        assert notice() == "failed"
        # A dispatcher that died between taking a notice and recording its result.
        with wh.engine.begin() as conn:
            conn.execute(endpoints.update().values(notice="sending", updated_at=clock.now))
        clock.advance(60)
        d.reclaim()
        assert notice() == "sending"  # maybe still being sent
        clock.advance(300)
        d.reclaim()
        assert notice() == "pending"
        # An organization with no contact address: recorded as such (the column is 8 wide).
        with wh.engine.begin() as conn:
            conn.execute(organizations.update().values(contact_email=None))
        assert d.send_notices() == 1 and notice() == "no_email" and email.calls == 1


def test_recovery_resends_exactly_the_failed_messages(wh: Service) -> None:
    clock = Clock()
    seed_projection(wh)
    with receivers(1) as (rx,):
        key = issue_key(wh.engine, "partner", PARTNER_A)
        ep = register(wh, key, rx.url)
        d = dispatcher(wh, clock, schedule=(60.0,))
        write_events(wh, clock, *(signed(f"ok{i}@example.org", [PARTNER_A]) for i in range(3)))
        d.drain()
        outage_start = clock.now
        clock.advance(10)
        rx.default = (503, {}, b"")
        write_events(wh, clock, *(signed(f"out{i}@example.org", [PARTNER_A]) for i in range(4)))
        for _ in range(3):
            d.drain()
            clock.advance(75)
        failed = {r.message_id for r in message_rows(wh, ep["endpoint_id"]) if r.status == "failed"}
        assert len(failed) == 4
        rx.default = (204, {}, b"")
        before = len(rx.received)
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        since = format_time(outage_start)
        answer = wh.client().post(f"{base}/recover", json={"since": since}, headers=key)
        assert answer.status_code == 202 and answer.get_json() == {"recovered": 4}
        d.drain()
        resent = rx.received[before:]
        assert sorted(r.message_id for r in resent) == sorted(failed)
        assert all(r.verifies(ep["secret"]) for r in resent)
        assert {r.status for r in message_rows(wh, ep["endpoint_id"])} == {"succeeded"}
        # Recovering again finds nothing more to send.
        again = wh.client().post(f"{base}/recover", json={"since": since}, headers=key)
        assert again.get_json() == {"recovered": 0}
        # A time that is no time once read as UTC, or a window ending before it starts.
        for body, field in (
            ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
            ({"since": since, "until": "9999-12-31T23:59:59-05:00"}, "until"),
            ({"since": since, "until": format_time(outage_start - timedelta(1))}, "until"),
        ):
            refused = wh.client().post(f"{base}/recover", json=body, headers=key)
            assert refused.status_code == 422 and field in refused.get_json()["errors"], body


def test_a_dead_endpoint_does_not_delay_a_healthy_one(wh: Service) -> None:
    clock = Clock()
    seed_projection(wh)
    with receivers(2) as (healthy, dead):
        register(wh, issue_key(wh.engine, "partner", PARTNER_A), healthy.url)
        register(wh, issue_key(wh.engine, "partner", PARTNER_B), dead.url)
        dead.delay = 30.0
        d = dispatcher(wh, clock, timeout=8.0)
        write_events(wh, clock, *(signed(f"h{i}@example.org", [PARTNER_A, PARTNER_B])
                                  for i in range(60)))  # fmt: skip
        started = utcnow()
        loop = threading.Thread(target=d.run, daemon=True)
        loop.start()
        try:
            eventually(lambda: len(healthy.received) == 60, timeout=60, message="healthy sent")
            # All 60 went before the dead one's first requests timed out (at 8 s), and those
            # took only its own slots (4): nothing of the healthy one waited on it.
            assert (utcnow() - started).total_seconds() < 8.0
            assert len(dead.received) <= 4, len(dead.received)
        finally:
            d.stop()
            loop.join(timeout=60)


# -- who may do what -------------------------------------------------------------------------------


def test_a_partner_cannot_read_or_change_another_partners_endpoints(wh: Service) -> None:
    a, b = issue_key(wh.engine, "partner", PARTNER_A), issue_key(wh.engine, "partner", PARTNER_B)
    client = wh.client()
    with receivers(1) as (rx,):
        ep = register(wh, a, rx.url)
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        for method, path, body in (
            ("get", base, None), ("patch", base, {"enabled": False}),
            ("delete", base, None), ("post", f"{base}/rotate-secret", None),
            ("post", f"{base}/test", None), ("get", f"{base}/attempts", None),
            ("get", f"{base}/messages", None),
            ("post", f"{base}/recover", {"since": format_time(utcnow())}),
        ):  # fmt: skip
            answer = getattr(client, method)(path, json=body, headers=b)
            assert answer.status_code == 404, (method, path)
        assert client.get("/api/v1/webhooks/endpoints", headers=b).get_json()["total_records"] == 0
        assert client.get("/api/v1/webhooks/endpoints", headers=a).get_json()["total_records"] == 1
        assert client.get(base).status_code == 401
        # Without a key, nothing is read first: no 422 tells an anonymous caller the API.
        for method, path, body in (
            ("post", "/api/v1/webhooks/endpoints", {"url": 5}),
            ("get", "/api/v1/webhooks/endpoints?page=0", None),
            ("patch", base, {"enabled": "nope"}),
            ("post", f"{base}/recover", {}),
        ):  # fmt: skip
            answer = getattr(client, method)(path, json=body)
            assert answer.status_code == 401 and answer.get_json()["errors"] == {}, path
        claim = client.post("/api/v1/webhooks/endpoints", headers=b,
                            json={"url": rx.url, "organization_id": PARTNER_A})  # fmt: skip
        assert claim.status_code == 422 and "organization_id" in claim.get_json()["errors"]
        (row,) = wh.rows(endpoints)
        assert row.enabled and row.organization_id == PARTNER_A
        # Its owner may change and delete it; a retried create with one Idempotency-Key is one.
        assert client.patch(base, json={"description": "x"}, headers=a).status_code == 200
        assert client.delete(base, headers=a).status_code == 204
        once = {**a, "Idempotency-Key": "abc"}
        first = client.post("/api/v1/webhooks/endpoints", json={"url": rx.url}, headers=once)
        second = client.post("/api/v1/webhooks/endpoints", json={"url": rx.url}, headers=once)
        assert first.status_code == second.status_code == 201
        assert first.get_json()["endpoint_id"] == second.get_json()["endpoint_id"]
        # The secret is shown on create and rotation only: a replay does not hand it out.
        assert first.get_json()["secret"].startswith("whsec_")
        assert second.get_json()["secret"] is None and second.headers["Idempotent-Replayed"]
        other = client.post(
            "/api/v1/webhooks/endpoints", json={"url": rx.url + "/other"}, headers=once
        )
        assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["errors"]
        assert [r.endpoint_id for r in wh.rows(endpoints)] == [first.get_json()["endpoint_id"]]
        bad = client.post("/api/v1/webhooks/endpoints", headers=a,
                          json={"url": rx.url, "event_types": ["person.erased"]})  # fmt: skip
        assert bad.status_code == 422 and "event_types" in bad.get_json()["errors"]
        # An admin registers for an organization by its id: a typo is refused, not left
        # registered where no event will ever reach it.
        seed_projection(wh)  # the organizations, as campaigns' events make them known
        admin = issue_key(wh.engine, "admin", LEAD)
        for org, status in (("org-typo", 422), (PARTNER_B, 201)):
            made = client.post("/api/v1/webhooks/endpoints", headers=admin,
                               json={"url": rx.url, "organization_id": org})  # fmt: skip
            assert made.status_code == status, made.get_json()
        assert "organization_id" in client.post("/api/v1/webhooks/endpoints", headers=admin,
            json={"url": rx.url, "organization_id": "org-typo"}).get_json()["errors"]  # fmt: skip


# -- SSRF ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook", "http://169.254.169.254/latest/meta-data", "http://100.64.1.1/",
        "http://[::1]:8080/", "http://192.168.1.10/", "http://127.0.0.2/", "http://0.0.0.0:8080/",
        "file:///etc/passwd", "http://user:pw@127.0.0.1/",
    ],
)  # fmt: skip
def test_urls_to_private_networks_are_refused_at_registration(wh: Service, url: str) -> None:
    answer = wh.client().post("/api/v1/webhooks/endpoints", json={"url": url},
                              headers=issue_key(wh.engine, "partner", PARTNER_A))  # fmt: skip
    assert answer.status_code == 422, url
    assert "url" in answer.get_json()["errors"]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:9/hooks/café", "ASCII"), ("http://127.0.0.1:9/hooks?to=José", "ASCII"),
        ("https://a..b.com/", "invalid host name"),
        (f"https://{'a' * 64}.example.org/", "invalid host name"),
    ],
)  # fmt: skip
def test_urls_that_could_never_be_delivered_are_refused_on_create_and_change(
    wh: Service, url: str, says: str
) -> None:
    key = issue_key(wh.engine, "partner", PARTNER_A)
    client = wh.client()
    created = client.post("/api/v1/webhooks/endpoints", json={"url": url}, headers=key)
    assert created.status_code == 422, created.get_json()
    assert says in created.get_json()["errors"]["url"][0]
    ep = register(wh, key, "http://127.0.0.1:9/hooks")
    changed = client.patch(f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}", json={"url": url},
                           headers=key)  # fmt: skip
    assert changed.status_code == 422 and says in changed.get_json()["errors"]["url"][0]


class RaisingTransport:
    """A transport that raises, as http.client did for a non-ASCII path (UnicodeEncodeError)."""

    def __init__(self) -> None:
        self.calls = 0

    def post(self, pool_key: str, url: str, headers: dict[str, str], body: bytes,
             timeout: float) -> Reply:  # fmt: skip
        self.calls += 1
        raise UnicodeEncodeError("ascii", url, 0, 1, "ordinal not in range(128)")


def test_a_delivery_that_raises_is_a_failed_attempt_on_the_schedule_not_a_hot_loop(
    wh: Service,
) -> None:
    clock = Clock()
    seed_projection(wh)
    ep = register(wh, issue_key(wh.engine, "partner", PARTNER_A), "http://127.0.0.1:9/hooks")
    write_events(wh, clock, signed("raise@example.org", [PARTNER_A]))
    transport = RaisingTransport()
    d = Dispatcher(wh.engine, wh.deps.webhooks, clock=clock, transport=transport,
                   rng=random.Random(3))  # fmt: skip
    assert d.drain() == 1
    assert d.drain() == 0 and transport.calls == 1  # not claimed again at once
    (row,) = message_rows(wh, ep["endpoint_id"])
    wait = (row.next_attempt_at - clock.now).total_seconds()
    assert row.status == "pending" and row.attempts == 1 and 4 <= wait <= 6
    (attempt,) = wh.rows(attempts, attempts.c.endpoint_id == ep["endpoint_id"])
    assert attempt.status_code is None and attempt.error == "internal error: UnicodeEncodeError"
    assert "raise@example.org" not in attempt.error
    # An endpoint stored with such a URL before it was refused fails the same way, for real.
    with wh.engine.begin() as conn:
        conn.execute(endpoints.update().values(url="http://127.0.0.1:9/hooks/café"))
    clock.advance(wait)
    assert dispatcher(wh, clock).drain() == 1
    (row,) = message_rows(wh, ep["endpoint_id"])
    assert row.status == "pending" and row.attempts == 2
    last = max(wh.rows(attempts, attempts.c.endpoint_id == ep["endpoint_id"]),
               key=lambda a: a.attempt_id)  # fmt: skip
    assert last.error.startswith("refused: URL must use only printable ASCII")


def test_the_address_is_checked_again_at_delivery_time(wh: Service) -> None:
    clock = Clock()
    seed_projection(wh)
    with receivers(1) as (rx,):
        ep = register(wh, issue_key(wh.engine, "partner", PARTNER_A), rx.url)
        write_events(wh, clock, signed("ssrf@example.org", [PARTNER_A]))
        # The allow-list no longer admits loopback (as if DNS now pointed somewhere private).
        dispatcher(wh, clock, allowed_networks=()).drain()
        assert not rx.received
        (attempt,) = wh.rows(attempts, attempts.c.endpoint_id == ep["endpoint_id"])
        assert attempt.status_code is None and attempt.error.startswith("refused")


def test_production_requires_https(wh: Service) -> None:
    ctx = manage.Context(wh.engine, wh.deps.webhooks, True, utcnow())
    secret = issue_key(wh.engine, "partner", PARTNER_A)["Authorization"].split(" ")[1]
    principal = wh.deps.verifier.verify(secret)
    assert principal is not None
    with pytest.raises(FieldError) as refused:
        manage.create(ctx, principal, {"url": "http://127.0.0.1:9/hook"})
    assert "HTTPS" in refused.value.errors["url"][0]
    assert not wh.rows(endpoints)


def test_erasure_removes_a_signers_details_from_stored_messages(wh: Service) -> None:
    """And the partners that were sent the details are told to delete them; others are not."""
    wh.start()
    key = issue_key(wh.engine, "partner", PARTNER_A)
    other_key = issue_key(wh.engine, "partner", PARTNER_B)
    with receivers(2) as (rx, other):
        ep = register(wh, key, rx.url, event_types=["signature.created"])
        register(wh, other_key, other.url, event_types=["signature.created"])
        wh.publish(organization(LEAD), organization(PARTNER_A), organization(PARTNER_B))
        wh.publish(campaign())
        sig = signed("erase.me@example.org", [PARTNER_A], attributed=PARTNER_B)
        wh.publish(sig)
        (first,) = eventually(lambda: rx.received, message="delivered")
        assert "erase.me@example.org" in first.body
        (seen,) = eventually(lambda: other.received, message="delivered to the recruiter")
        assert "erase.me" not in seen.body  # recruited, but not shared with
        erased = event("person.erased", sig.key, supporter_id=sig.key, email_hash=None,
                       phone_hash=None)  # fmt: skip
        wh.producer.send(NOTIFICATIONS, key=sig.key.encode(), value=erased.value(),
                         headers=erased.headers())  # fmt: skip
        wh.producer.flush(timeout=30)
        eventually(
            lambda: all("erase.me" not in r.body for r in message_rows(wh, ep["endpoint_id"])),
            message="stored body scrubbed",
        )
        # Subscribed to signatures only, the endpoint is still told, with the id it was given.
        (told,) = eventually(lambda: rx.received[1:], message="person.erased delivered")
        assert told.json()["type"] == "person.erased"
        assert told.json()["data"] == {"supporter_id": sig.key, "at": told.json()["timestamp"]}
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        wh.client().post(f"{base}/messages/{first.message_id}/replay", headers=key)
        again = eventually(lambda: rx.received[2:], message="replayed")[0]
        assert again.message_id == first.message_id
        assert "erase.me" not in again.body and again.json()["data"]["erased"] is True
        assert [m.json()["type"] for m in other.received] == ["signature.created"]


def test_a_supporter_who_stops_sharing_has_every_partner_told_to_delete(wh: Service) -> None:
    """Unticking "share my details" on the preference page withdraws each partner's share:
    each one that was sent the details is told to delete them (consent.withdrawn, whatever its
    filter), and the copies stored for its replays lose them."""
    from services.notifications.compliance import list_token

    wh.start()
    key = issue_key(wh.engine, "partner", PARTNER_A)
    other_key = issue_key(wh.engine, "partner", PARTNER_B)
    with receivers(2) as (rx, other):
        ep = register(wh, key, rx.url, event_types=["signature.created"])
        other_ep = register(wh, other_key, other.url, event_types=["signature.created"])
        wh.publish(organization(LEAD), organization(PARTNER_A), organization(PARTNER_B))
        wh.publish(campaign())
        sig = signed("share.me@example.org", [PARTNER_A, PARTNER_B])
        wh.publish(sig)
        for receiver in (rx, other):
            (got,) = eventually(lambda r=receiver: r.received, message="delivered")
            assert "share.me@example.org" in got.body
        person = wh.rows(supporters, supporters.c.supporter_id == sig.key)[0]
        tag = wh.rows(organizations, organizations.c.organization_id == LEAD)[0].token_tag
        token = list_token(HASH_KEY, person.token, tag)
        client = wh.client()
        assert 'name="share" checked' in client.get(f"/preferences/{token}").get_data(as_text=True)
        form = {"email": "on", "shares_offered": "1", "action": "save"}  # the box unticked
        assert client.post(f"/preferences/{token}", data=form).status_code == 200
        for receiver in (rx, other):
            (told,) = eventually(lambda r=receiver: r.received[1:], message="told to delete")
            assert told.json()["type"] == "consent.withdrawn"
            assert told.json()["data"] == {"supporter_id": sig.key, "at": told.json()["timestamp"]}
        for endpoint in (ep, other_ep):
            eventually(
                lambda e=endpoint: all(
                    "share.me" not in r.body for r in message_rows(wh, e["endpoint_id"])
                ),
                message="stored bodies scrubbed",
            )
        assert 'name="share"' not in client.get(f"/preferences/{token}").get_data(as_text=True)


def test_organizations_without_a_webhook_can_list_whom_to_delete(wh: Service) -> None:
    """A lead or partner that imports exports into its own records has no endpoint to be told
    by: it reads the deletions list, and finds the rows by the exports' supporter_id. Each
    organization finds an erasure there once, whether its export or its webhook held her."""
    wh.start()
    keys = {org: issue_key(wh.engine, "partner", org) for org in (LEAD, PARTNER_A, PARTNER_B)}
    wh.publish(organization(LEAD), organization(PARTNER_A), organization(PARTNER_B))
    wh.publish(campaign())
    eventually(lambda: wh.count(campaigns) == 1, message="campaign projected")
    with receivers(1) as (rx,):
        # The lead also takes signatures by webhook: its endpoint is told of the erasure by
        # person.erased's handler, which lists it then (and only then).
        register(wh, keys[LEAD], rx.url, event_types=["signature.created"])
        ana = signed("ana.forget@example.org", [PARTNER_A])
        bo = signed("bo.unshare@example.org", [PARTNER_B])
        wh.publish(ana, bo)
        eventually(lambda: wh.count(supporters) == 2, message="signers projected")
        eventually(lambda: wh.count(messages) == 2, message="the lead's messages")
        # Erased here, as an admin or the person's own link does: the erasure forgets which
        # campaigns she joined and whom she shared with before person.erased is handled.
        admin = issue_key(wh.engine, "admin", LEAD)
        body = {"email": "ana.forget@example.org"}
        assert wh.client().post("/api/v1/erasures", json=body, headers=admin).status_code == 202
        withdrawn = event("consent.changed", bo.key, supporter_id=bo.key, channel="share",
                          organization_id=PARTNER_B, change="unsubscribe")  # fmt: skip
        wh.producer.send(
            NOTIFICATIONS, key=withdrawn.key.encode(), value=withdrawn.value(),
            headers=withdrawn.headers(),
        )  # fmt: skip
        wh.producer.flush(timeout=30)

    def listed(org: str, query: str = "") -> list[tuple[str, str]]:
        got = wh.client().get(f"/api/v1/webhooks/deletions{query}", headers=keys[org])
        assert got.status_code == 200, got.get_json()
        return [(d["supporter_id"], d["reason"]) for d in got.get_json()["_embedded"]["deletions"]]

    eventually(lambda: listed(PARTNER_B), message="the withdrawal listed")
    eventually(lambda: listed(LEAD), message="the erasure handled")
    assert listed(LEAD) == [(ana.key, "erased")]  # its export and its webhook held her
    assert listed(PARTNER_A) == [(ana.key, "erased")]  # she shared with it
    assert listed(PARTNER_B) == [(bo.key, "withdrawn")]  # Bo unticked its box; Ana never ticked
    later = format_time(utcnow() + timedelta(minutes=1))
    assert listed(LEAD, f"?since={later.replace('+', '%2B')}") == []
    assert wh.client().get("/api/v1/webhooks/deletions").status_code == 401
    # An admin reads one organization's list, named; without one it is not "nobody".
    unnamed = wh.client().get("/api/v1/webhooks/deletions", headers=admin)
    assert unnamed.status_code == 422 and "organization_id" in unnamed.get_json()["errors"]
    keys[LEAD] = admin
    assert listed(LEAD, f"?organization_id={LEAD}") == [(ana.key, "erased")]


def test_a_deletion_listed_late_is_found_by_syncing_after_the_last_id(wh: Service) -> None:
    """A deletion's time is the erasure's; its row can be written minutes later (a consumer
    catching up after an outage). A partner syncing by time would skip it for good; syncing
    `after` the last deletion_id it handled finds it."""
    from services.notifications.webhooks.handlers import note_deletions

    key = issue_key(wh.engine, "partner", PARTNER_A)
    moment = utcnow()
    with wh.engine.begin() as conn:
        note_deletions(conn, [PARTNER_A], "sup-first", "erased", moment)

    def listed(query: str) -> list[dict[str, Any]]:
        got = wh.client().get(f"/api/v1/webhooks/deletions{query}", headers=key)
        assert got.status_code == 200, got.get_json()
        return list(got.get_json()["_embedded"]["deletions"])

    [first] = listed("")
    synced_at = format_time(moment + timedelta(seconds=1)).replace("+", "%2B")
    with wh.engine.begin() as conn:  # erased before the partner's last read, listed after it
        note_deletions(conn, [PARTNER_A], "sup-late", "erased", moment - timedelta(minutes=3))
    assert listed(f"?since={synced_at}") == []
    assert [d["supporter_id"] for d in listed(f"?after={first['deletion_id']}")] == ["sup-late"]
    for after in ("-1", str(2**63)):
        refused = wh.client().get(f"/api/v1/webhooks/deletions?after={after}", headers=key)
        assert refused.status_code == 422 and "after" in refused.get_json()["errors"]


def test_deletion_ids_become_visible_in_their_order_and_pages_follow_them(
    wh: Service,
) -> None:
    """A deletion numbered while an earlier-numbered one is still uncommitted would let a
    partner syncing `after` the last id pass the earlier one for good: writers of the list
    take turns until they commit. And the next page starts after the last id shown, so the
    rows purged from the head meanwhile skip nothing."""
    import threading

    from services.notifications.webhooks.handlers import note_deletions

    key = issue_key(wh.engine, "partner", PARTNER_A)
    moment = utcnow()
    with wh.engine.connect() as conn:
        first = conn.begin()  # an erasure's transaction, still at work after its row
        note_deletions(conn, [PARTNER_A], "sup-slow", "erased", moment)
        second = threading.Thread(
            target=lambda: _note_one(wh, note_deletions, "sup-quick", moment), daemon=True
        )
        second.start()
        second.join(1.0)
        assert second.is_alive()  # it waits for the first to commit
        first.commit()
    second.join(10)
    listed = wh.client().get("/api/v1/webhooks/deletions?per_page=1", headers=key).get_json()
    assert [d["supporter_id"] for d in listed["_embedded"]["deletions"]] == ["sup-slow"]
    href = listed["_links"]["next"]["href"]
    assert f"after={listed['_embedded']['deletions'][0]['deletion_id']}" in href
    with wh.engine.begin() as conn:  # the head purged before the next page is read
        conn.execute(delete(deletions).where(deletions.c.supporter_id == "sup-slow"))
    following = wh.client().get(href.replace("http://localhost", ""), headers=key).get_json()
    assert [d["supporter_id"] for d in following["_embedded"]["deletions"]] == ["sup-quick"]


def _note_one(wh: Service, note: Any, supporter: str, moment: datetime) -> None:
    with wh.engine.begin() as conn:
        note(conn, [PARTNER_A], supporter, "erased", moment)


def test_an_erasure_waits_for_a_paused_endpoint_and_reaches_a_deleted_ones_successor(
    wh: Service,
) -> None:
    """Each partner sent a person's details is told of the person's erasure: one that paused
    its endpoint once it turns it back on, one that replaced its endpoint on the new one."""
    clock = Clock()
    seed_projection(wh)
    key_a = issue_key(wh.engine, "partner", PARTNER_A)
    key_b = issue_key(wh.engine, "partner", PARTNER_B)
    client = wh.client()
    endpoint = "/api/v1/webhooks/endpoints"
    with receivers(3) as (a_rx, old_b_rx, new_b_rx):
        a = register(wh, key_a, a_rx.url, event_types=["signature.created"])
        old_b = register(wh, key_b, old_b_rx.url, event_types=["signature.created"])
        sig = signed("both@example.org", [PARTNER_A, PARTNER_B])
        write_events(wh, clock, sig)
        d = dispatcher(wh, clock)
        d.drain()
        assert "both@example.org" in a_rx.received[0].body
        assert "both@example.org" in old_b_rx.received[0].body
        paused = client.patch(f"{endpoint}/{a['endpoint_id']}", json={"enabled": False},
                              headers=key_a)  # fmt: skip
        assert paused.status_code == 200
        gone = client.delete(f"{endpoint}/{old_b['endpoint_id']}", headers=key_b)
        assert gone.status_code == 204
        new_b = register(wh, key_b, new_b_rx.url, event_types=["campaign.launched"])

        erased = event("person.erased", sig.key, supporter_id=sig.key, email_hash=None,
                       phone_hash=None)  # fmt: skip
        write_events(wh, clock, erased)
        d.drain()
        (told_b,) = new_b_rx.received
        assert told_b.verifies(new_b["secret"])
        assert told_b.json()["type"] == "person.erased"
        assert told_b.json()["data"]["supporter_id"] == sig.key
        assert len(a_rx.received) == 1  # paused: nothing goes out while it is off
        resumed = client.patch(f"{endpoint}/{a['endpoint_id']}", json={"enabled": True},
                               headers=key_a)  # fmt: skip
        assert resumed.status_code == 200
        d.drain()
        told_a = a_rx.received[1:]
        assert [r.json()["type"] for r in told_a] == ["person.erased"]
        assert told_a[0].json()["data"]["supporter_id"] == sig.key
        assert old_b_rx.received[1:] == []


class BlockingTransport:
    """Answers 200 at once for every URL but the held ones (with `held` in them), which it
    holds until released, counting them, then answers with `answer` (a timeout: failing; a
    200: an endpoint answering just inside the deadline, never marked failing)."""

    def __init__(self, held: str = "dead", answer: Reply | None = None) -> None:
        self.held, self.answer = held, answer or Reply(None, None, b"", "timeout")
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.held_now = self.held_most = self.healthy = 0

    def post(self, pool_key: str, url: str, headers: dict[str, str], body: bytes,
             timeout: float) -> Reply:  # fmt: skip
        if self.held not in url:
            with self.lock:
                self.healthy += 1
            return Reply(200, None, b"", None)
        with self.lock:
            self.held_now += 1
            self.held_most = max(self.held_most, self.held_now)
        self.release.wait(10)
        with self.lock:
            self.held_now -= 1
        return self.answer


def test_many_failing_endpoints_hold_at_most_half_the_pool(wh: Service) -> None:
    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    for i in range(5):
        register(wh, key, f"http://127.0.0.1:9/dead{i}")
    register(wh, key, "http://127.0.0.1:9/ok")
    with wh.engine.begin() as conn:
        conn.execute(
            endpoints.update()
            .where(endpoints.c.url.like("%dead%"))
            .values(failing_since=clock.now - timedelta(hours=1))
        )
    write_events(wh, clock, *(signed(f"m{i}@example.org", [PARTNER_A]) for i in range(30)))
    transport = BlockingTransport()
    d = Dispatcher(wh.engine, wh.deps.webhooks.with_(pool_size=4), clock=clock,
                   transport=transport)  # fmt: skip
    loop = threading.Thread(target=d.run, daemon=True)
    loop.start()
    try:
        eventually(lambda: transport.healthy == 30, message="healthy delivered")
        eventually(lambda: transport.held_now == 2, message="the dead endpoints tried too")
        assert transport.held_most == 2  # five dead endpoints, but only half of four threads
    finally:
        transport.release.set()
        d.stop()
        loop.join(timeout=15)


def test_one_organizations_slow_endpoints_hold_at_most_its_share_of_the_pool(
    wh: Service,
) -> None:
    """A partner registers several endpoints that answer 200 just inside the deadline: they
    never count as failing, and four chunks each would hold every thread. Its endpoints
    together hold a quarter of the pool; the other partner's deliveries go meanwhile."""
    clock = Clock()
    seed_projection(wh)
    slow_key = issue_key(wh.engine, "partner", PARTNER_A)
    for i in range(5):
        register(wh, slow_key, f"http://127.0.0.1:9/slow{i}")
    register(wh, issue_key(wh.engine, "partner", PARTNER_B), "http://127.0.0.1:9/ok")
    write_events(
        wh, clock,
        *(signed(f"s{i}@example.org", [PARTNER_A, PARTNER_B]) for i in range(20)),
    )  # fmt: skip
    transport = BlockingTransport(held="slow", answer=Reply(200, None, b"", None))
    config = wh.deps.webhooks.with_(pool_size=12, per_endpoint_concurrency=2, batch_per_endpoint=1)
    d = Dispatcher(wh.engine, config, clock=clock, transport=transport)
    loop = threading.Thread(target=d.run, daemon=True)
    loop.start()
    try:
        eventually(lambda: transport.healthy == 20, timeout=8, message="the other partner's")
        assert transport.held_most == config.organization_concurrency() == 3  # of 5 x 2
    finally:
        transport.release.set()
        d.stop()
        loop.join(timeout=15)


def test_an_endpoint_answering_slowly_is_limited_like_a_failing_one(wh: Service) -> None:
    """2xx just inside the deadline never counts as failing: four chunks of each of a few such
    partners (of different organizations) held every thread, and everyone else's deliveries,
    deletions among them, waited. An endpoint whose last chunk answered slowly takes one chunk
    at a time, within the half of the pool failing ones share; answering fast, its full room."""
    from services.notifications.webhooks.dispatcher import (
        SLOW_ANSWER_SECONDS,
        Outcome,
        _Finished,
    )

    clock = Clock()
    seed_projection(wh)
    slow = register(wh, issue_key(wh.engine, "partner", PARTNER_A), "http://127.0.0.1:9/slow")
    config = wh.deps.webhooks.with_(pool_size=16, per_endpoint_concurrency=4)
    d = Dispatcher(wh.engine, config, clock=clock, transport=BlockingTransport())

    def room_after(seconds: float) -> int:
        with wh.engine.connect() as conn:
            live = d._endpoints(conn)
        answer = Outcome("m", 0, "scheduled", clock.now, Reply(200, None, b"", None),
                         int(seconds * 1000))  # fmt: skip
        with d._lock:
            d._note_speed(_Finished(live[slow["endpoint_id"]], [], [answer], clock.now))
        with wh.engine.connect() as conn:
            return d._budgets(d._endpoints(conn))[slow["endpoint_id"]] // config.batch_per_endpoint

    assert room_after(SLOW_ANSWER_SECONDS + 1) == config.failing_endpoint_concurrency == 1
    assert room_after(0.2) == config.per_endpoint_concurrency == 4


def test_the_running_dispatcher_records_every_attempt_once_and_leaves_nothing_claimed(
    wh: Service,
) -> None:
    """Chunks finished by many threads are recorded together; stopping records what is left."""
    clock = Clock()
    seed_projection(wh)
    with receivers(3) as rxs:
        ids = [register(wh, issue_key(wh.engine, "partner", org), rx.url)["endpoint_id"]
               for org, rx in zip((PARTNER_A, PARTNER_B, LEAD), rxs, strict=True)]  # fmt: skip
        d = dispatcher(wh, clock, batch_per_endpoint=5)
        loop = threading.Thread(target=d.run, daemon=True)
        loop.start()
        try:
            for start in range(0, 120, 20):  # as the consumer would, in several commits
                write_events(wh, clock, *(signed(f"r{i}@example.org", [PARTNER_A, PARTNER_B])
                                          for i in range(start, start + 20)))  # fmt: skip
                d.wake()
            eventually(lambda: all(len(rx.received) >= 120 for rx in rxs[:2]),
                       message="all delivered")  # fmt: skip
        finally:
            d.stop()
            loop.join(timeout=20)
        assert not loop.is_alive()
        for endpoint_id, rx in zip(ids[:2], rxs[:2], strict=True):
            sent = [m.message_id for m in rx.received]
            assert len(sent) == len(set(sent)) == 120  # none twice
            rows = message_rows(wh, endpoint_id)
            assert {r.status for r in rows} == {"succeeded"}, {r.status for r in rows}
            assert all(r.attempts == 1 and r.last_status_code == 200 for r in rows)
            tried = wh.rows(attempts, attempts.c.endpoint_id == endpoint_id)
            assert sorted(a.message_id for a in tried) == sorted(sent)


def test_a_dead_endpoints_backlog_is_not_walked_to_claim_a_healthy_endpoints_messages(
    wh: Service,
) -> None:
    """The claim is a prepared statement: PostgreSQL may plan it once for every endpoint (a
    generic plan). That plan must look up the endpoint's own due rows, not walk all pending
    rows (thousands of them a dead endpoint's) and filter."""
    now = utcnow()

    def row(message_id: str, endpoint_id: str, due: datetime) -> dict[str, Any]:
        return {"message_id": message_id, "endpoint_id": endpoint_id, "organization_id": LEAD,
                "event_id": message_id, "event_type": "signature.created", "body": "{}",
                "status": "pending", "attempts": 0, "next_attempt_at": due,
                "trigger": "scheduled", "event_time": due, "created_at": due}  # fmt: skip

    backlog = [row(f"msg_dead_{i}", "ep_dead", now - timedelta(hours=1)) for i in range(3000)]
    mine = [row(f"msg_ok_{i}", "ep_ok", now) for i in range(3)]
    # What healthy endpoints leave behind: delivered messages, no longer due.
    done = [{**row(f"msg_done_{e}_{i}", f"ep_{e}", now), "status": "succeeded",
             "next_attempt_at": None} for e in range(10) for i in range(1500)]  # fmt: skip
    with wh.engine.begin() as conn:
        conn.execute(messages.insert(), backlog + mine + done)
    query = due_query(1).compile(dialect=postgresql.dialect(paramstyle="numeric_dollar"))
    values = {"endpoint_0": "ep_ok", "status_1": "pending", "now": now, "room_0": 100}
    types = {"endpoint_0": "varchar", "status_1": "varchar", "now": "timestamptz",
             "room_0": "integer"}  # fmt: skip
    names = list(query.positiontup or [])
    args = [values[name] for name in names]
    with wh.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("ANALYZE wh_messages")
        driver.execute(f"PREPARE claim({', '.join(types[n] for n in names)}) AS {query}")
        driver.execute("SET plan_cache_mode = force_generic_plan")
        explain = psql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim({})").format(
            psql.SQL(", ").join(psql.Literal(a) for a in args)
        )
        plan = driver.execute(explain).fetchone()[0][0]["Plan"]
        conn.rollback()

    def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    assert plan["Actual Rows"] == 3
    assert sum(n.get("Rows Removed by Filter", 0) for n in nodes(plan)) == 0, plan


def erasure_of(sig: Event) -> Event:
    return event("person.erased", sig.key, supporter_id=sig.key, email_hash=None, phone_hash=None)


def test_a_deletion_never_gives_up_while_its_endpoint_is_on(wh: Service) -> None:
    """A partner keeps a person's details until told to delete them: past the schedule the
    deletion goes again at its last interval (before, it failed for good after a day of
    outage, and nobody ever sent it again); a 410 disables the endpoint, which holds the
    deletion until its owner turns it back on."""
    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    with receivers(1) as (rx,):
        ep = register(wh, key, rx.url)
        sig = signed("keep.out@example.org", [PARTNER_A])
        write_events(wh, clock, sig)
        d = dispatcher(wh, clock, schedule=(60.0, 120.0))
        d.drain()
        rx.default = (503, {}, b"")
        write_events(wh, clock, erasure_of(sig))
        for _ in range(6):  # three times the schedule's length
            clock.advance(150)
            d.drain()
        (told,) = [
            r for r in message_rows(wh, ep["endpoint_id"]) if r.event_type == "person.erased"
        ]
        assert told.status == "pending" and told.attempts == 6
        assert clock.now < told.next_attempt_at <= clock.now + timedelta(seconds=120 * 1.2)
        rx.default = (410, {}, b"")
        clock.advance(150)
        d.drain()
        (row,) = wh.rows(endpoints, endpoints.c.endpoint_id == ep["endpoint_id"])
        assert not row.enabled and row.disabled_reason == "gone"
        (told,) = [
            r for r in message_rows(wh, ep["endpoint_id"]) if r.event_type == "person.erased"
        ]
        assert told.status == "pending"
        rx.default = (204, {}, b"")
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        assert wh.client().patch(base, json={"enabled": True}, headers=key).status_code == 200
        d.drain()  # at once: the deletion is due again when the endpoint is back
        assert rx.received[-1].json()["type"] == "person.erased"
        (told,) = [
            r for r in message_rows(wh, ep["endpoint_id"]) if r.event_type == "person.erased"
        ]
        assert told.status == "succeeded"


class HoldingTransport:
    """Answers 200 to every request, holding those whose body holds `held` until released;
    keeps each body as its answer goes back (what the partner has taken in), in order."""

    def __init__(self, held: str) -> None:
        self.held = held
        self.holding, self.release = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []
        self.urls: list[str] = []

    def post(self, pool_key: str, url: str, headers: dict[str, str], body: bytes,
             timeout: float) -> Reply:  # fmt: skip
        if self.held in body.decode():
            self.holding.set()
            self.release.wait(10)
        with self.lock:
            self.bodies.append(json.loads(body))
            self.urls.append(url)
        return Reply(200, None, b"", None)


def test_a_deletion_waits_for_the_details_already_on_their_way(wh: Service) -> None:
    """An erasure while a chunk carrying the person's details is in flight: the deletion must
    reach the partner after those details, or the partner deletes first and keeps them."""
    clock = Clock()
    seed_projection(wh)
    register(wh, issue_key(wh.engine, "partner", PARTNER_A), "http://127.0.0.1:9/hook")
    sig = signed("in.flight@example.org", [PARTNER_A])
    write_events(wh, clock, sig)
    transport = HoldingTransport("in.flight@example.org")
    d = Dispatcher(wh.engine, wh.deps.webhooks, clock=clock, transport=transport)
    try:
        assert d.tick() == 1
        assert transport.holding.wait(10)
        clock.advance(1)
        write_events(wh, clock, erasure_of(sig))
        assert d.tick() == 0  # the deletion waits for the chunk claimed before it
    finally:
        transport.release.set()
    eventually(lambda: len(transport.bodies) == 1, message="the details delivered")
    d.tick(wait_for_results=True)  # records the first chunk
    d.drain()
    assert [b["type"] for b in transport.bodies] == ["signature.created", "person.erased"]


def test_an_endpoint_failing_for_days_with_nothing_left_to_send_is_disabled(wh: Service) -> None:
    """Its last messages gave up after a day; nothing new failed since to disable it, so its
    owner never heard. The dispatcher's housekeeping disables it and tells the owner."""
    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    long_down = register(wh, key, "http://127.0.0.1:9/long")
    short_down = register(wh, key, "http://127.0.0.1:9/short")
    for ep, days in ((long_down, 6), (short_down, 1)):
        with wh.engine.begin() as conn:
            conn.execute(
                endpoints.update()
                .where(endpoints.c.endpoint_id == ep["endpoint_id"])
                .values(failing_since=clock.now - timedelta(days=days))
            )
    assert dispatcher(wh, clock).disable_failing() == 1
    rows = {r.endpoint_id: r for r in wh.rows(endpoints)}
    long_row, short_row = rows[long_down["endpoint_id"]], rows[short_down["endpoint_id"]]
    assert (long_row.enabled, long_row.disabled_reason, long_row.notice) == (
        False, "failing", "pending",
    )  # fmt: skip
    assert short_row.enabled


def test_an_endpoint_deleted_mid_delivery_leaves_no_attempts_behind(wh: Service) -> None:
    """Its attempt log could hold the partner's echo of the payload, under messages that no
    longer exist: no API shows such rows, and no erasure finds them."""
    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    ep = register(wh, key, "http://127.0.0.1:9/hook")
    write_events(wh, clock, signed("deleted.mid@example.org", [PARTNER_A]))
    transport = HoldingTransport("deleted.mid@example.org")
    d = Dispatcher(wh.engine, wh.deps.webhooks, clock=clock, transport=transport)
    try:
        assert d.tick() == 1
        assert transport.holding.wait(10)
        base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
        assert wh.client().delete(base, headers=key).status_code == 204
    finally:
        transport.release.set()
    eventually(lambda: len(transport.bodies) == 1, message="the request answered")
    d.tick(wait_for_results=True)  # records the chunk
    assert wh.rows(attempts, attempts.c.endpoint_id == ep["endpoint_id"]) == []
    assert wh.rows(messages, messages.c.endpoint_id == ep["endpoint_id"]) == []


@pytest.mark.parametrize("change", ["deleted", "turned off", "moved"])
def test_a_chunk_stops_when_its_endpoint_is_deleted_turned_off_or_moved(
    wh: Service, change: str
) -> None:
    """A partner deletes (or turns off, or moves) an endpoint while a chunk of its messages
    is going out: nothing more goes to it after the request in flight (before, the rest of the
    chunk, up to 25 people's details, went on to a URL its owner had just given up)."""
    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    ep = register(wh, key, "http://127.0.0.1:9/old")
    write_events(wh, clock, signed("first.of.chunk@example.org", [PARTNER_A]))
    clock.advance(1)
    write_events(wh, clock, signed("second.of.chunk@example.org", [PARTNER_A]))
    transport = HoldingTransport("first.of.chunk@example.org")
    d = Dispatcher(wh.engine, wh.deps.webhooks.with_(recheck_seconds=0), clock=clock,
                   transport=transport)  # fmt: skip
    base = f"/api/v1/webhooks/endpoints/{ep['endpoint_id']}"
    try:
        assert d.tick() == 2  # one chunk of two
        assert transport.holding.wait(10)
        if change == "deleted":
            response = wh.client().delete(base, headers=key)
        else:
            patch = (
                {"enabled": False} if change == "turned off" else {"url": "http://127.0.0.1:9/new"}
            )
            response = wh.client().patch(base, json=patch, headers=key)
        assert response.status_code in (200, 204), response.get_json()
    finally:
        transport.release.set()
    eventually(lambda: len(transport.bodies) == 1, message="the request in flight answered")
    d.tick(wait_for_results=True)  # records the chunk, and claims what is due
    d.drain()
    sent = [(url, b["data"]["person"]["email"])
            for url, b in zip(transport.urls, transport.bodies, strict=True)]  # fmt: skip
    first = ("http://127.0.0.1:9/old", "first.of.chunk@example.org")
    if change == "moved":
        assert sent == [first, ("http://127.0.0.1:9/new", "second.of.chunk@example.org")]
    else:
        assert sent == [first]
    if change == "turned off":
        waiting = message_rows(wh, ep["endpoint_id"])
        assert [(m.status, m.attempts) for m in waiting if m.status != "succeeded"] == [
            ("pending", 0)
        ]


def test_deletions_an_endpoint_holds_move_to_its_successor_when_it_is_deleted(
    wh: Service,
) -> None:
    """A partner paused its endpoint, an erasure waits on it, then the partner replaces it:
    the deletion goes to the new endpoint (before, it was deleted with the old one, and the
    partner kept the person's details). With no other endpoint to take it, the old one stays."""
    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    client = wh.client()
    endpoint = "/api/v1/webhooks/endpoints"
    with receivers(2) as (old_rx, new_rx):
        old = register(wh, key, old_rx.url, event_types=["signature.created"])
        sig = signed("moved.on@example.org", [PARTNER_A])
        write_events(wh, clock, sig)
        d = dispatcher(wh, clock)
        d.drain()
        assert "moved.on@example.org" in old_rx.received[0].body
        paused = client.patch(f"{endpoint}/{old['endpoint_id']}", json={"enabled": False},
                              headers=key)  # fmt: skip
        assert paused.status_code == 200
        write_events(wh, clock, erasure_of(sig))
        refused = client.delete(f"{endpoint}/{old['endpoint_id']}", headers=key)
        assert refused.status_code == 409 and "deletion" in refused.get_json()["message"]
        assert wh.rows(endpoints, endpoints.c.endpoint_id == old["endpoint_id"])
        new = register(wh, key, new_rx.url, event_types=["campaign.launched"])
        assert client.delete(f"{endpoint}/{old['endpoint_id']}", headers=key).status_code == 204
        d.drain()
        (told,) = new_rx.received
        assert told.verifies(new["secret"]) and told.json()["type"] == "person.erased"
        assert told.json()["data"]["supporter_id"] == sig.key
        assert len(old_rx.received) == 1


def test_messages_are_purged_with_their_attempts_once_past_the_retention(wh: Service) -> None:
    """A delivered or failed message kept a signer's details (and the partner's answer, which
    often echoes them) for ever. Past the retention they go; what is still to be sent, and a
    deletion notice waiting for its endpoint to come back, stay."""
    clock = Clock()
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    ep = register(wh, key, "http://127.0.0.1:9/hook")
    sigs = [signed(f"kept.{i}@example.org", [PARTNER_A]) for i in range(4)]
    write_events(wh, clock, *sigs)
    d = dispatcher(wh, clock, retention_seconds=30 * 86400.0)
    d.transport = HoldingTransport("nobody")  # answers 200 to all
    assert d.drain() == 4
    rows = message_rows(wh, ep["endpoint_id"])
    old, recent, failed_deletion, waiting = rows
    with wh.engine.begin() as conn:
        for row, days, values in (
            (old, 31, {}),
            (recent, 29, {}),
            (failed_deletion, 40, {"status": "failed", "event_type": "person.erased"}),
            (waiting, 40, {"status": "pending", "finished_at": None}),
        ):
            finished = clock.now - timedelta(days=days)
            conn.execute(
                messages.update()
                .where(messages.c.message_id == row.message_id)
                .values(**{"finished_at": finished, **values})
            )
    assert d.purge() == 1
    left = {r.message_id for r in message_rows(wh, ep["endpoint_id"])}
    assert left == {recent.message_id, failed_deletion.message_id, waiting.message_id}
    assert wh.rows(attempts, attempts.c.message_id == old.message_id) == []
    assert wh.rows(attempts, attempts.c.message_id == recent.message_id) != []


class _HoldingFirst:
    """Answers 200, holding its first POST until released (hold=True); keeps the URLs."""

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.holding, self.release = threading.Event(), threading.Event()
        self.urls: list[str] = []

    def post(self, pool_key: str, url: str, headers: dict[str, str], body: bytes,
             timeout: float) -> Reply:  # fmt: skip
        if self.hold and not self.holding.is_set():
            self.holding.set()
            self.release.wait(10)
        self.urls.append(url)
        return Reply(200, None, b"", None)


def two_endpoints(wh: Service) -> tuple[str, str]:
    """Register two endpoints of partner A, one chunk each a round; return their URLs."""
    seed_projection(wh)
    key = issue_key(wh.engine, "partner", PARTNER_A)
    urls = ("http://127.0.0.1:9/one", "http://127.0.0.1:9/two")
    for url in urls:
        register(wh, key, url)
    return urls


def test_a_deletion_of_an_endpoint_cut_short_is_finished_by_the_purge(wh: Service) -> None:
    """An endpoint's row goes at once and its messages and attempts a batch at a time: a
    deletion cut short (a restart) left the rest, signers' details among them, for ever."""
    from services.notifications.webhooks.store import removed_endpoints

    with partner_endpoint(wh, 3, "r") as (clock, _, _, ep):
        d = dispatcher(wh, clock)
        d.drain()
        write_events(wh, clock, signed("left@example.org", [PARTNER_A]))
    with wh.engine.begin() as conn:  # what remove() commits first; then it was cut short
        conn.execute(endpoints.delete().where(endpoints.c.endpoint_id == ep["endpoint_id"]))
        conn.execute(removed_endpoints.insert().values(endpoint_id=ep["endpoint_id"],
                                                       removed_at=clock.now))  # fmt: skip
    assert len(message_rows(wh, ep["endpoint_id"])) == 4
    assert d.drain() == 0  # nothing of it is claimed
    d.purge()
    assert message_rows(wh, ep["endpoint_id"]) == []
    assert wh.rows(attempts, attempts.c.endpoint_id == ep["endpoint_id"]) == []
    # Kept a day: a consumer batch that read the endpoint before may still commit for it.
    with wh.engine.begin() as conn:
        conn.execute(messages.insert().values(
            message_id="msg_late", endpoint_id=ep["endpoint_id"], organization_id=PARTNER_A,
            event_id="late", event_type="signature.created", body="{}", supporter_id="s",
            status="pending", attempts=0, trigger="scheduled", event_time=clock.now,
            created_at=clock.now,
        ))  # fmt: skip
    clock.advance(3600)
    d.purge()
    assert message_rows(wh, ep["endpoint_id"]) == [] and len(wh.rows(removed_endpoints)) == 1
    clock.advance(2 * 86400)
    d.purge()
    assert wh.rows(removed_endpoints) == []


def test_a_chunk_left_waiting_past_its_lease_sends_only_what_is_still_its_own(
    wh: Service,
) -> None:
    """Every delivery thread busy, a claimed chunk waits in the pool's queue past its lease;
    housekeeping hands its rows out again and another dispatcher sends them. When the chunk
    finally starts, it must not send them a second time."""
    clock = Clock()
    one, two = two_endpoints(wh)
    write_events(wh, clock, signed("queued@example.org", [PARTNER_A]))
    busy = _HoldingFirst(hold=True)
    first = dispatcher(wh, clock, pool_size=1, claim_lease_seconds=2.0)
    first.transport = busy
    other = dispatcher(wh, clock)
    other.transport = fresh = _HoldingFirst()
    try:
        assert first.tick() == 2  # two chunks, one thread: one held, the other waiting
        assert busy.holding.wait(10)
        clock.advance(3)
        assert first.reclaim() == 2  # both leases ran out
        assert other.tick(wait_for_results=True) == 2
        time.sleep(0.6)  # the waiting chunk has now waited past a quarter of its lease
    finally:
        busy.release.set()
    first._pool.shutdown(wait=True)
    first._record_waiting(raise_errors=True)
    assert len(busy.urls) == 1  # the held request, nothing more
    assert sorted(fresh.urls) == [one, two]
    assert {m.status for m in wh.rows(messages)} == {"succeeded"}


class _HoldingFirstKeepingBodies(_HoldingFirst):
    """_HoldingFirst that also keeps each body it was sent, with its URL."""

    def __init__(self, hold: bool = False) -> None:
        super().__init__(hold)
        self.bodies: list[tuple[str, str]] = []

    def post(self, pool_key: str, url: str, headers: dict[str, str], body: bytes,
             timeout: float) -> Reply:  # fmt: skip
        self.bodies.append((url, body.decode()))
        return super().post(pool_key, url, headers, body, timeout)


def test_a_chunk_that_waited_past_its_claim_sends_the_bodies_an_erasure_left(
    wh: Service,
) -> None:
    """A chunk waits in the pool's queue (every thread busy) while its signer is erased. When
    it starts it claims its rows anew, a claim later than the deletion, which then no longer
    waits for it: it must send the bodies as stored now, scrubbed, not the details it read
    when first claimed, or the partner gets them after being told to delete them."""
    clock = Clock()
    two_endpoints(wh)
    sig = signed("waiting.chunk@example.org", [PARTNER_A])
    write_events(wh, clock, sig)
    busy = _HoldingFirstKeepingBodies(hold=True)
    d = dispatcher(wh, clock, pool_size=1, claim_lease_seconds=2.0)
    d.transport = busy
    try:
        assert d.tick() == 2  # two chunks, one thread: one held, the other waiting
        assert busy.holding.wait(10)
        write_events(wh, clock, erasure_of(sig))
        time.sleep(0.6)  # past a quarter of the lease: the waiting chunk claims anew
    finally:
        busy.release.set()
    d._pool.shutdown(wait=True)
    d._record_waiting(raise_errors=True)
    print(
        "BODIES",
        busy.bodies,
        [(m.endpoint_id, m.event_type, m.status, m.claimed_at) for m in wh.rows(messages)],
    )
    (held_url, held_body), (waited_url, waited_body) = busy.bodies
    assert held_url != waited_url
    assert "waiting.chunk@example.org" in held_body  # on its way before the erasure
    assert "waiting.chunk@example.org" not in waited_body
    assert json.loads(waited_body)["data"]["erased"] is True


def test_a_success_clears_a_failure_recorded_after_its_chunk_was_claimed(wh: Service) -> None:
    """Two chunks of one healthy endpoint in a round: one fails and marks it failing, the
    other then succeeds. The endpoint answers again: it is not failing (the success, read
    against the endpoint as it was at the claim, left it failing and throttled)."""
    from services.notifications.webhooks.dispatcher import Endpoint, Outcome
    from services.notifications.webhooks.store import endpoints

    clock = Clock()
    seed_projection(wh)
    made = register(wh, issue_key(wh.engine, "partner", PARTNER_A), "http://127.0.0.1:9/hook")
    d = dispatcher(wh, clock)
    claimed = Endpoint(made["endpoint_id"], PARTNER_A, made["url"], "whsec_x", None, False)

    def answered(status: int) -> Outcome:
        return Outcome("msg", 0, "initial", clock(), Reply(status, None, b"", None), 5)

    with wh.engine.begin() as conn:
        d._record_health(conn, claimed, answered(503), clock())
    [row] = wh.rows(endpoints)
    assert row.failing_since is not None
    with wh.engine.begin() as conn:
        d._record_health(conn, claimed, answered(200), clock())
    [row] = wh.rows(endpoints)
    assert row.failing_since is None
    # The mirror: a probe claimed while it was failing fails after a success cleared the mark.
    probe = Endpoint(made["endpoint_id"], PARTNER_A, made["url"], "whsec_x", None, True)
    with wh.engine.begin() as conn:
        d._record_health(conn, probe, answered(503), clock())
    [row] = wh.rows(endpoints)
    assert row.failing_since is not None
