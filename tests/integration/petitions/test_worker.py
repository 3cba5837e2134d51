"""The worker's side: milestones once per rung, erasure, and projections fed through Kafka."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kafka import KafkaProducer

from services.petitions import store, usecases
from services.petitions.handlers import TOPICS, handlers
from services.petitions.worker import Housekeeping
from shared.auth import generate_key
from shared.events import Event
from shared.events.catalog import CAMPAIGNS, type_name
from shared.kafka import ensure_topics, make_producer
from shared.privacy import email_hash, phone_hash, supporter_id
from shared.service import worker_parts
from tests.integration.petitions.conftest import HASH_KEY, Petitions, at
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


def test_each_milestone_is_published_once_and_the_goal_climbs(svc: Petitions) -> None:
    petition_id = svc.open_petition(goal=3)
    for i in range(2):
        svc.sign(petition_id, f"m{i}@example.org")
    assert usecases.advance_milestones(svc.deps) == 0
    svc.sign(petition_id, "m2@example.org")

    # Several housekeepers at once (two workers, say) still publish the rung once.
    with ThreadPoolExecutor(max_workers=4) as pool:
        published = list(pool.map(lambda _: usecases.advance_milestones(svc.deps), range(4)))
    assert sum(published) == 1
    assert usecases.advance_milestones(svc.deps) == 0
    [event] = svc.outbox_events("petition.milestone_reached")
    assert (event["milestone"], event["total"], event["next_goal"]) == (3, 3, 100)
    public = svc.client.get(f"/api/v1/petitions/{petition_id}").get_json()
    assert public["goal"] == 100


def test_a_petition_closed_at_its_goal_before_housekeeping_still_has_its_milestone(
    svc: Petitions,
) -> None:
    petition_id = svc.open_petition(goal=3)
    for i in range(3):
        svc.sign(petition_id, f"c{i}@example.org")
    closed = svc.client.post(f"/api/v1/petitions/{petition_id}/close", headers=svc.auth("lead"))
    assert closed.status_code == 200
    assert usecases.advance_milestones(svc.deps) == 1
    [event] = svc.outbox_events("petition.milestone_reached")
    assert (event["milestone"], event["total"]) == (3, 3)
    assert usecases.advance_milestones(svc.deps) == 0


def test_a_petition_closed_meanwhile_is_announced_closed_once(svc: Petitions) -> None:
    """A campaign's closing reads its open petitions while an organizer closes one of them:
    the one read open, but closed by the time it is written, is not closed again."""
    petition_id = svc.open_petition()
    with svc.deps.engine.connect() as conn:
        [seen_open] = store.open_petitions_of_campaign(conn, svc.campaign_id)
    closed = svc.client.post(f"/api/v1/petitions/{petition_id}/close", headers=svc.auth("lead"))
    assert closed.status_code == 200
    with svc.deps.engine.begin() as conn:
        usecases.close_open_petition(svc.deps, conn, seen_open)
    assert len(svc.outbox_events("petition.closed")) == 1
    assert svc.rows(store.petitions, petition_id=petition_id)[0].closed_at is not None


def test_a_jump_past_several_rungs_publishes_each_rung(svc: Petitions) -> None:
    petition_id = svc.open_petition()
    with svc.deps.engine.begin() as conn:
        store.bump(conn, petition_id, [("total", "", 600)], shards=4)
    Housekeeping(svc.deps).run_once()
    milestones = [e["milestone"] for e in svc.outbox_events("petition.milestone_reached")]
    assert milestones == [100, 250, 500]
    assert svc.counts(petition_id)["goal"] == 1000


def test_erasure_removes_personal_data_and_keeps_the_counts(svc: Petitions) -> None:
    confirmed_id = svc.open_petition()
    doi_id = svc.open_petition(double_opt_in=True)
    for petition_id in (confirmed_id, doi_id):
        svc.sign(
            petition_id,
            "Noor@Example.org",
            person={"email": "Noor@Example.org", "given_name": "Noor", "phone": "+14155552671"},
            consents={"partners": {"rainbow": True}},
            comment="personal story",
            headers={"Idempotency-Key": f"noor-{petition_id}"},
        )
    svc.sign(confirmed_id, "other@example.org")
    noor = supporter_id(HASH_KEY, "noor@example.org")
    assert len(svc.outbox_events("signature.created")) == 3  # the relay has not run yet
    svc.deliver("consent.changed", {"supporter_id": noor, "channel": "email", "at": at(),
                                    "organization_id": None, "change": "unsubscribe"})  # fmt: skip

    svc.deliver(
        "person.erased",
        {
            "supporter_id": supporter_id(HASH_KEY, "noor@example.org"),
            "email_hash": email_hash(HASH_KEY, "noor@example.org"),
            "at": at(),
        },
    )

    rows = svc.rows(store.signatures, petition_id=confirmed_id)
    erased = next(r for r in rows if r.email != "other@example.org")
    assert erased.status == "erased"
    assert all(getattr(erased, name) is None for name in store.PERSONAL_COLUMNS)
    assert erased.email_hash is None and erased.supporter_id is None
    assert svc.rows(store.signatures, petition_id=doi_id) == []  # never counted: gone
    assert svc.rows(store.partner_consents) == []
    assert svc.rows(store.consent_changes) == []  # what they chose goes with them
    # Her signatures' events, not yet relayed, would publish what she typed after the erasure.
    unsent = svc.outbox_events("signature.created")
    assert [e["person"]["email"] for e in unsent] == ["other@example.org"]
    # A retried request's key was kept under her address's keyed hash: it would still say
    # that the address signed.
    assert svc.rows(store.idempotency_keys) == []
    counts = svc.counts(confirmed_id)
    assert counts["total"] == 2
    assert svc.counts(doi_id)["pending"] == 0
    export = svc.client.get(
        f"/api/v1/petitions/{confirmed_id}/exports/signers.csv", headers=svc.auth("lead")
    ).get_data(as_text=True)
    assert "Noor" not in export and "other@example.org" in export


def test_a_signature_committed_during_an_erasure_keeps_its_event(
    svc: Petitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same address signs another petition between the erasure's read of the person's
    signatures and its removal of their unpublished events: that signature stays (counted,
    exported), so its event must stay too, or it is never thanked and never projected."""
    first, second = svc.open_petition(), svc.open_petition()
    assert svc.sign(first, "kai@example.org").status_code == 202
    read = store.signatures_of_person

    def read_then_sign(*args: Any) -> Any:
        rows = read(*args)
        assert svc.sign(second, "kai@example.org").status_code == 202  # commits meanwhile
        return rows

    monkeypatch.setattr(store, "signatures_of_person", read_then_sign)
    svc.deliver(
        "person.erased",
        {
            "supporter_id": supporter_id(HASH_KEY, "kai@example.org"),
            "email_hash": email_hash(HASH_KEY, "kai@example.org"),
            "at": at(),
        },
    )
    [kept] = svc.rows(store.signatures, petition_id=second)
    assert kept.status == "confirmed" and kept.email == "kai@example.org"
    events = svc.outbox_events("signature.created")
    assert [(e["petition_id"], e["signature_id"]) for e in events] == [(second, kept.signature_id)]
    assert svc.rows(store.signatures, petition_id=first)[0].status == "erased"


def test_erasure_by_phone_reaches_each_signature_made_with_that_number(svc: Petitions) -> None:
    """Notifications knows a person's latest phone only: a number given on an earlier signature
    reaches petitions as its keyed hash alone, under no supporter id of ours."""
    first, second = svc.open_petition(), svc.open_petition(double_opt_in=True)
    svc.sign(first, "kim@example.org", person={"email": "kim@example.org", "given_name": "Kim",
             "phone": "+1 415 555 2671"}, comment="my story")  # fmt: skip
    svc.sign(second, "kim@example.org", person={"email": "kim@example.org", "given_name": "Kim",
             "phone": "+14155550999"})  # fmt: skip
    svc.sign(first, "other@example.org", person={"email": "other@example.org",
             "given_name": "Other", "phone": "+14155550999"})  # fmt: skip
    kim = supporter_id(HASH_KEY, "kim@example.org")
    svc.deliver("consent.changed", {"supporter_id": kim, "channel": "email", "at": at(),
                                    "organization_id": None, "change": "unsubscribe"})  # fmt: skip
    erased_number = phone_hash(HASH_KEY, "+14155552671")
    svc.deliver(
        "person.erased",
        {"supporter_id": erased_number, "phone_hash": erased_number, "at": at()},
    )
    rows = {r.given_name: r for r in svc.rows(store.signatures, petition_id=first)}
    assert set(rows) == {None, "Other"}
    assert rows[None].status == "erased" and rows[None].comment is None
    assert [r.given_name for r in svc.rows(store.signatures, petition_id=second)] == ["Kim"]
    assert svc.counts(first)["total"] == 2
    # The number's owner is not Kim: the signature typed with it goes, from the outbox too,
    # but Kim's other signature and her unsubscribe stay (or she would be thanked for
    # nothing, and marked reachable again in the export).
    unsent = [(e["person"]["email"], e["petition_id"]) for e in svc.outbox_events(
        "signature.created")]  # fmt: skip
    assert sorted(unsent) == [("kim@example.org", second), ("other@example.org", first)]
    assert [r.supporter_id for r in svc.rows(store.consent_changes)] == [kim]


def test_a_closed_campaign_closes_its_open_petitions(svc: Petitions) -> None:
    open_id = svc.open_petition()
    svc.sign(open_id, "z@example.org")
    draft_id = svc.create_petition()
    svc.deliver(
        "campaign.closed",
        {
            "campaign_id": svc.campaign_id,
            "lead_organization_id": svc.lead,
            "partner_organization_ids": [svc.p1, svc.p2],
            "status": "closed",
            "at": at(),
        },
    )
    [closed] = svc.outbox_events("petition.closed")
    assert (closed["petition_id"], closed["total"]) == (open_id, 1)
    assert svc.sign(open_id, "y@example.org").status_code == 409
    publish = svc.client.post(f"/api/v1/petitions/{draft_id}/publish", headers=svc.auth("lead"))
    assert publish.status_code == 409


def test_a_partner_out_of_the_coalition_loses_its_box_credit_and_exports(svc: Petitions) -> None:
    """The lead removes a partner (or it leaves): signers are no longer offered its box nor
    credited to it, and it no longer reads, exports or manages the campaign's petitions."""
    petition_id = svc.open_petition()
    shared = svc.sign(petition_id, "ana@example.org", consents={"partners": {"rainbow": True}})
    assert shared.status_code == 202
    # A double opt-in signature ticking its box, still to be confirmed when it is removed.
    pending_id = svc.open_petition(double_opt_in=True)
    svc.sign(pending_id, "lin@example.org", consents={"partners": {"rainbow": True}})
    [created] = [
        e for e in svc.outbox_events("signature.created") if e["petition_id"] == pending_id
    ]
    link = created["confirm_url"].removeprefix("https://act.example.org")
    assert "Rainbow Alliance" in svc.client.get(link).get_data(as_text=True)
    export = f"/api/v1/petitions/{petition_id}/exports/partners/{svc.p1}.csv"
    before = svc.client.get(export, headers=svc.auth("p1"))
    assert before.status_code == 200 and "ana@example.org" in before.get_data(as_text=True)
    counts = f"/api/v1/petitions/{petition_id}/counts"
    assert svc.client.get(counts, headers=svc.auth("p1")).status_code == 200
    public = f"/api/v1/petitions/{petition_id}"
    assert "rainbow" in str(svc.client.get(public).get_json())

    svc.deliver(
        "campaign.partner_removed",
        {"campaign_id": svc.campaign_id, "organization_id": svc.p1, "left": False, "at": at()},
    )
    svc.deps.coalitions.clear()  # what the web processes cache of a campaign lives 5 s
    # Confirming now shares nothing with it, and the page no longer says it would.
    assert "Rainbow Alliance" not in svc.client.get(link).get_data(as_text=True)
    after = svc.client.get(export, headers=svc.auth("p1"))
    assert after.status_code == 404 and "ana@example.org" not in after.get_data(as_text=True)
    assert "rainbow" not in str(svc.client.get(public).get_json())
    ticked = svc.sign(petition_id, "cai@example.org", consents={"partners": {"rainbow": True}})
    assert ticked.status_code == 422 and "consents.partners.rainbow" in ticked.get_json()["errors"]
    # A form not yet updated still sends the removed partner's box, unticked: that asks for
    # nothing, and the signer must not be turned away for it.
    unticked = svc.sign(petition_id, "fay@example.org", consents={"partners": {"rainbow": False}})
    assert unticked.status_code == 202, unticked.get_json()
    assert (
        svc.sign(petition_id, "dee@example.org", referrer_data={"source": "rb"}).status_code == 202
    )
    assert (
        svc.sign(petition_id, "eve@example.org", referrer_data={"source": "kp"}).status_code == 202
    )
    seen = svc.counts(petition_id)
    assert seen["total"] == 4, seen
    assert seen["by_partner"].get(svc.p2) == 1 and svc.p1 not in seen["by_partner"], seen
    for who in ("p1_organizer", "p1"):
        assert svc.client.get(counts, headers=svc.auth(who)).status_code == 403, who
    body = {"campaign_id": svc.campaign_id, "default_locale": "en",
            "texts": {"en": {"title": "T", "text": "X"}}}  # fmt: skip
    made = svc.client.post("/api/v1/petitions", json=body, headers=svc.auth("p1_organizer"))
    assert made.status_code == 403, made.get_json()
    # Lin confirms on a page that no longer names Rainbow: that shares nothing with it, not
    # even once it joins the campaign again.
    confirmed = svc.client.post(link, headers={"Accept": "application/json"})
    assert confirmed.status_code == 200, confirmed.get_data(as_text=True)
    # The event says so, for notifications and the webhooks (whatever their view of the
    # coalition at the time).
    [announced] = svc.outbox_events("signature.confirmed")
    assert announced["partner_organization_ids"] == []
    svc.deliver(
        "campaign.partner_joined",
        {"campaign_id": svc.campaign_id, "organization_id": svc.p1, "at": at()},
    )
    svc.deps.coalitions.clear()
    back = svc.client.get(
        f"/api/v1/petitions/{pending_id}/exports/partners/{svc.p1}.csv", headers=svc.auth("p1")
    )
    assert back.status_code == 200, back.get_data(as_text=True)
    assert "lin@example.org" not in back.get_data(as_text=True)


def test_keys_and_campaigns_arrive_through_kafka(svc: Petitions) -> None:
    """The real path: campaigns' events on Kafka, the worker's consumer, then the API."""
    ensure_topics(svc.bootstrap, list(TOPICS))
    _, runner = worker_parts(
        svc.deps.settings,
        svc.deps.engine,
        store.outbox,
        store.processed,
        TOPICS,
        handlers(svc.deps),
        group=f"petitions-test-{uuid.uuid4().hex[:6]}",
    )
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    producer: KafkaProducer = make_producer(svc.bootstrap, "campaigns-test", linger_ms=0)
    try:
        org, campaign = f"org-{uuid.uuid4().hex[:6]}", f"camp-{uuid.uuid4().hex[:6]}"
        new = generate_key("organizer")
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "organization.created",
                {"organization_id": org, "slug": org, "name": "New Org", "at": at()},
            ),
            (
                "apikey.issued",
                {
                    "key_id": new.key_id,
                    "prefix": new.prefix,
                    "key_hash": new.key_hash,
                    "role": "organizer",
                    "organization_id": org,
                    "at": at(),
                },
            ),
            (
                "campaign.created",
                {
                    "campaign_id": campaign,
                    "lead_organization_id": org,
                    "partner_organization_ids": [],
                    "status": "active",
                    "at": at(),
                },
            ),
        ]
        for short, data in events:
            event = Event(type=type_name(short), key=org, data=data, source="/services/campaigns")
            producer.send(CAMPAIGNS, key=org.encode(), value=event.value(), headers=event.headers())
        producer.flush(timeout=30)

        headers = {"Authorization": f"Bearer {new.secret}"}
        body = {
            "campaign_id": campaign,
            "default_locale": "en",
            "texts": {"en": {"title": "T", "text": "X"}},
        }
        created = eventually(
            lambda: (
                r
                if (
                    r := svc.client.post("/api/v1/petitions", json=body, headers=headers)
                ).status_code
                == 201
                else None
            ),
            timeout=180,  # a new group: it reads every earlier test's campaign events first
            message="key and campaign projected from Kafka",
        )
        assert created.get_json()["organization_id"] == org

        revoked = Event(
            type=type_name("apikey.revoked"),
            key=org,
            data={"key_id": new.key_id, "organization_id": org, "at": at()},
            source="/services/campaigns",
        )
        producer.send(CAMPAIGNS, key=org.encode(), value=revoked.value(), headers=revoked.headers())
        producer.flush(timeout=30)
        eventually(
            lambda: svc.client.get("/api/v1/petitions", headers=headers).status_code == 401,
            timeout=60,
            message="revoked key refused",
        )
    finally:
        producer.close(timeout=5)
        runner.stop()
        thread.join(timeout=30)
