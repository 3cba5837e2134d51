"""Erasure: by an admin or by the person (confirmed by email); only keyed hashes remain."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest

from services.notifications.audience import EVERY_ORG
from services.notifications.store import (
    alerts,
    consents,
    deliveries,
    organizations,
    signatures,
    supporter_campaigns,
    supporters,
    suppressions,
)
from shared.events import Event
from shared.events.catalog import NOTIFICATIONS
from shared.privacy import email_hash, phone_hash, supporter_id
from tests.integration.notifications.harness import (
    HASH_KEY,
    Service,
    alert,
    issue_key,
    organization,
    petition,
    seed_audience,
    sendgrid_signature,
    signature,
)
from tests.support.kafka import headers_of, read_all
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


def erased_events(service: Service) -> list[dict]:
    return [
        json.loads(r.value)
        for r in read_all(service.bootstrap, NOTIFICATIONS, timeout=60)
        if headers_of(r)["ce_type"] == "kinship.person.erased.v1"
    ]


def signed_up(service: Service, email: str, org_id: str) -> str:
    """Start the service, let email sign a petition of org_id; return the path of the
    preference page its thank-you links to."""
    service.start()
    service.publish(organization(org_id))
    service.publish(signature(email, "pet-" + org_id, "camp-" + org_id, org_id))
    eventually(lambda: service.fakes.sendgrid_requests(), message="thank-you sent")
    eventually(lambda: service.rows(organizations), message="organization projected")
    thanks = service.fakes.sendgrid_requests()[0].body["content"][0]["value"]
    prefs = re.search(r"https://notify\.example\.org(/preferences/\S+)", thanks)
    assert prefs, thanks
    return prefs.group(1)


def test_admin_erasure_removes_personal_data_and_keeps_a_hash(service: Service) -> None:
    # Ids of this run's own: the topic may be a long-lived broker's (KINSHIP_TEST_KAFKA).
    prefix = f"x{uuid.uuid4().hex[:8]}-"
    people = seed_audience(service.engine, "camp-x", "org-x", 3, phone_every=1, prefix=prefix)
    target = people[1]
    client = service.client()
    body = {"email": target["email"]}
    assert client.post("/api/v1/erasures", json=body).status_code == 401
    organizer = issue_key(service.engine, "organizer", "org-admin")
    assert client.post("/api/v1/erasures", json=body, headers=organizer).status_code == 403
    admin = issue_key(service.engine, "admin", "org-admin")
    bad = client.post("/api/v1/erasures", json={"email": "not-an-address"}, headers=admin)
    assert bad.status_code == 422 and "email" in bad.get_json()["errors"]
    response = client.post("/api/v1/erasures", json=body, headers=admin)
    assert response.status_code == 202 and response.get_json()["count"] == 1
    sid = target["supporter_id"]
    for table in (supporters, consents, supporter_campaigns):
        assert service.count(table, table.c.supporter_id == sid) == 0
    assert service.count(supporters) == 2
    kept = {(s.contact_hash, s.channel, s.scope, s.reason) for s in service.rows(suppressions)}
    assert kept == {
        (email_hash(HASH_KEY, target["email"]), "email", EVERY_ORG, "erased"),
        (phone_hash(HASH_KEY, target["phone"]), "sms", EVERY_ORG, "erased"),
    }
    service.start()
    # The topic is the session's: other tests' erasures are on it too.
    events = eventually(
        lambda: [e for e in erased_events(service) if e["supporter_id"] == sid],
        message="person.erased published",
    )
    assert len(events) == 1 and target["email"] not in json.dumps(events[0])
    # A repeat of an old event cannot bring the person back into an alert by accident.
    service.publish(alert("alert-x", "camp-x", "org-x", ["email"]))
    eventually(lambda: (r := service.rows(alerts)) and r[0].status == "done", message="alert done")
    sent = {e for e, _ in service.fakes.sendgrid_recipients()}
    assert target["email"] not in sent and len(sent) == 2


def test_after_an_erasure_no_message_to_the_person_alone_still_points_at_them(
    service: Service,
) -> None:
    """The ledger keeps its rows (counts stay right), but a thank-you's row kept the erased
    person's supporter id (with the key and a guessed address, proof they signed that
    petition) and the provider's message id (their record at SendGrid). Alert rows keep the
    id: a batch delivered again after the erasure must find its rows, or count them twice."""
    from services.notifications import ledger
    from services.notifications.store import outbox_table

    [mei] = seed_audience(service.engine, "camp-m", "org-m", 1, prefix="mei")
    sid, now = mei["supporter_id"], service.deps.clock()
    thanks = ledger.new_row(message_key="thanks:sig-m", recipient_id=sid, channel="email",
                            kind="thank_you", status="sent", now=now)  # fmt: skip
    thanks["provider_message_id"] = "sg-thanks-m"
    alerted = ledger.new_row(message_key="alert-m", recipient_id=sid, channel="email",
                             kind="alert", status="sent", alert_id="alert-m", now=now)  # fmt: skip
    with service.engine.begin() as conn:
        ledger.insert_new(conn, [thanks, alerted])
    admin = issue_key(service.engine, "admin", "org-admin")
    erased = service.client().post("/api/v1/erasures", json={"email": mei["email"]}, headers=admin)
    assert erased.status_code == 202
    rows = {r.delivery_id: r for r in service.rows(deliveries)}
    kept = rows[thanks["delivery_id"]]
    assert kept.status == "sent"  # still counted
    assert kept.recipient_id != sid and kept.provider_message_id is None
    assert rows[alerted["delivery_id"]].recipient_id == sid
    # SendGrid then reports the address unsubscribed, naming the thank-you: no event may name
    # the row's recipient as a supporter (it is none now).
    before = {r.event_id for r in service.rows(outbox_table)}
    payload = json.dumps([{"email": mei["email"], "event": "unsubscribe",
                           "notification_id": thanks["delivery_id"]}])  # fmt: skip
    callback = service.client().post(
        "/api/v1/callbacks/sendgrid/events", data=payload, headers=sendgrid_signature(payload)
    )
    assert callback.status_code == 204
    later = [r for r in service.rows(outbox_table) if r.event_id not in before]
    assert not [r for r in later if kept.recipient_id.encode() in bytes(r.data)], later


def test_a_bounce_after_an_erasure_tells_no_other_service_about_the_person(
    service: Service,
) -> None:
    """An alert's email bounces an hour after its recipient was erased: the address is held
    as a bounce (stronger than the tombstone), but the consent.changed it used to publish, for
    the id derived from the address, put a row about the person back in petitions."""
    from services.notifications.store import outbox_table

    [ana] = seed_audience(service.engine, "camp-b", "org-b", 1, prefix="ana")
    admin = issue_key(service.engine, "admin", "org-admin")
    erased = service.client().post("/api/v1/erasures", json={"email": ana["email"]}, headers=admin)
    assert erased.status_code == 202
    before = {r.event_id for r in service.rows(outbox_table)}
    payload = json.dumps([{"email": ana["email"], "event": "bounce", "type": "bounce"}])
    callback = service.client().post(
        "/api/v1/callbacks/sendgrid/events", data=payload, headers=sendgrid_signature(payload)
    )
    assert callback.status_code == 204
    assert [r.reason for r in service.rows(suppressions, suppressions.c.channel == "email")] == [
        "bounce"
    ]
    later = [r.type for r in service.rows(outbox_table) if r.event_id not in before]
    assert "kinship.consent.changed.v1" not in later


def test_admin_erases_addresses_in_any_script_and_by_supporter_id(service: Service) -> None:
    # Petitions accepts addresses such as these (email-validator); the admin must be able to
    # erase what was accepted, and a person partners know only by their supporter id.
    people = seed_audience(
        service.engine, "camp-i", "org-i", 3, prefix="priya.\u0936\u0930\u094d\u092e\u093e"
    )
    admin = issue_key(service.engine, "admin", "org-admin")
    client = service.client()
    by_email = client.post("/api/v1/erasures", json={"email": people[0]["email"]}, headers=admin)
    assert by_email.status_code == 202 and by_email.get_json()["count"] == 1
    by_id = {"supporter_id": people[1]["supporter_id"]}
    assert client.post("/api/v1/erasures", json=by_id, headers=admin).get_json()["count"] == 1
    left = {row.supporter_id for row in service.rows(supporters)}
    assert left == {people[2]["supporter_id"]}
    nothing = client.post("/api/v1/erasures", json={}, headers=admin)
    assert nothing.status_code == 422 and "email" in nothing.get_json()["errors"]


def test_erasure_by_a_supporter_id_unknown_here_still_reaches_the_other_services(
    service: Service,
) -> None:
    """A partner knows a person by the supporter id it was sent; notifications may not know
    them (consumer lag, a signature event that never arrived here). Petitions still holds
    their signatures: the erasure must go out, not answer "erased" and do nothing."""
    from services.notifications.store import outbox_table

    seed_audience(service.engine, "camp-u", "org-u", 1, prefix="kept")
    admin = issue_key(service.engine, "admin", "org-admin")
    unknown = {"supporter_id": "3f1c0a9e" * 8, "email": "elsewhere@example.org"}
    erased = service.client().post("/api/v1/erasures", json=unknown, headers=admin)
    assert erased.status_code == 202 and erased.get_json()["count"] == 2
    published = {
        r.key: json.loads(r.data)
        for r in service.rows(outbox_table)
        if r.type == "kinship.person.erased.v1"
    }
    by_email = supporter_id(HASH_KEY, "elsewhere@example.org")
    assert set(published) == {unknown["supporter_id"], by_email}
    assert published[by_email]["email_hash"] == email_hash(HASH_KEY, "elsewhere@example.org")
    assert len(service.rows(supporters)) == 1  # nobody else erased


def test_erasure_by_phone_reaches_an_unconfirmed_signature_made_with_it(service: Service) -> None:
    # Hana is on file with another number: the unconfirmed signature's number is in what it
    # says about her, which waits for its confirmation, and in no supporter row.
    service.start()
    service.publish(
        organization("org-p"),
        petition("pet-o", "camp-p", "org-p"),
        petition("pet-p", "camp-p", "org-p", True),
    )
    service.publish(signature("hana@example.org", "pet-o", "camp-p", "org-p", phone="+14155550999"))
    eventually(lambda: service.rows(supporters), message="Hana on file")
    service.publish(
        signature("hana@example.org", "pet-p", "camp-p", "org-p", double_opt_in=True,
                  phone="+1 415 555 2671")
    )  # fmt: skip
    eventually(lambda: service.rows(signatures), message="pending signature recorded")
    admin = issue_key(service.engine, "admin", "org-admin")
    erased = service.client().post(
        "/api/v1/erasures", json={"phone": "+14155552671"}, headers=admin
    )
    assert erased.status_code == 202
    assert service.rows(signatures) == []  # what it said about its signer is gone


@pytest.mark.parametrize("bounced_before", [False, True], ids=["plain", "bounced before"])
def test_a_signature_made_before_an_erasure_and_delivered_after_brings_nobody_back(
    wh: Service, bounced_before: bool
) -> None:
    """Consumer lag, a retried event or an outbox row not yet relayed: the signature is older
    than the erasure, and must not recreate, thank or share the person (also when the address
    had bounced before, when its suppression says bounce, not erased)."""
    from services.notifications.audience import suppress
    from tests.integration.notifications.test_webhooks import PARTNER_A, register

    wh.start()
    register(wh, issue_key(wh.engine, "partner", PARTNER_A), "http://127.0.0.1:9/hooks",
             event_types=["signature.created"])  # fmt: skip
    wh.publish(organization("org-r"), organization(PARTNER_A), petition("pet-r", "camp-r", "org-r"))
    [ren] = seed_audience(wh.engine, "camp-r", "org-r", 1, prefix="ren")
    late = signature(ren["email"], "pet-r", "camp-r", "org-r")  # made now, before the erasure
    late.data["consents"]["partner_organization_ids"] = [PARTNER_A]
    if bounced_before:
        with wh.engine.begin() as conn:
            suppress(conn, email_hash(HASH_KEY, ren["email"]), "email", EVERY_ORG, "bounce",
                     late.time)  # fmt: skip
    _erase_then_deliver_late(wh, {"email": ren["email"]}, late)


@pytest.mark.parametrize("erased_by", ["phone", "supporter_id"])
def test_a_late_signature_of_someone_erased_by_number_or_id_brings_nobody_back(
    wh: Service, erased_by: str
) -> None:
    """Erased by number, or by the id a partner knows them by, before their signature reached
    this service: the signature, made before the erasure, must not recreate, thank, text or
    share them (before, only an erasure by address voided it, and they came back whole)."""
    from tests.integration.notifications.test_webhooks import PARTNER_A, register

    wh.start()
    register(wh, issue_key(wh.engine, "partner", PARTNER_A), "http://127.0.0.1:9/hooks",
             event_types=["signature.created"])  # fmt: skip
    wh.publish(organization("org-r"), organization(PARTNER_A), petition("pet-r", "camp-r", "org-r"))
    late = signature("kai@example.org", "pet-r", "camp-r", "org-r", phone="+1 415 555 0177")
    late.data["consents"].update(sms=True, partner_organization_ids=[PARTNER_A])
    given = {"phone": "+14155550177", "supporter_id": late.data["supporter_id"]}[erased_by]
    _erase_then_deliver_late(wh, {erased_by: given}, late)


def _erase_then_deliver_late(wh: Service, erasure: dict[str, str], late: Event) -> None:
    """Erase (the admin API), then deliver a signature made before: nobody comes back, no
    message is queued, no partner is sent anything."""
    from services.notifications.store import processed_table
    from services.notifications.webhooks.store import messages

    admin = issue_key(wh.engine, "admin", "org-admin")
    assert wh.client().post("/api/v1/erasures", json=erasure, headers=admin).status_code == 202
    wh.publish(late)
    eventually(
        lambda: wh.rows(processed_table, processed_table.c.event_id == late.id),
        message="the late signature handled",
    )
    assert wh.rows(supporters) == []
    assert wh.rows(deliveries) == [] and wh.rows(messages) == []


def test_person_erases_themselves_from_the_preference_page(service: Service) -> None:
    prefs = signed_up(service, "ren@example.org", "org-y")
    client = service.client()
    page = client.post(prefs, data={"action": "erase"})
    assert page.status_code == 200
    assert service.count(supporters) == 1  # nothing happens before the owner confirms
    # Asked again and again (by whoever holds a forwarded email): one link an hour, no flood.
    for _ in range(3):
        assert client.post(prefs, data={"action": "erase"}).status_code == 200
    assert service.count(deliveries, deliveries.c.kind == "erase") == 1
    eventually(lambda: len(service.fakes.sendgrid_requests()) == 2, message="confirmation email")
    confirm = service.fakes.sendgrid_requests()[1].body["content"][0]["value"]
    link = re.search(r"https://notify\.example\.org(/erase/\S+)", confirm)
    assert link, confirm
    # Sent, the link is kept nowhere: whoever can read the ledger cannot erase them with it.
    eventually(
        lambda: [d for d in service.rows(deliveries) if d.kind == "erase" and d.status == "sent"],
        message="erase email recorded sent",
    )
    assert all(link.group(1) not in json.dumps(d.params) for d in service.rows(deliveries))
    assert client.get(link.group(1)).status_code == 200
    assert client.post(link.group(1)).status_code == 200
    assert service.count(supporters) == 0
    assert client.post(link.group(1)).status_code == 404  # the link is spent
    assert all(d.params is None for d in service.rows(deliveries))
    hashed = email_hash(HASH_KEY, "ren@example.org")
    eventually(
        lambda: [e for e in erased_events(service) if e.get("email_hash") == hashed],
        message="person.erased published",
    )


def test_an_erasure_link_older_than_a_day_erases_nothing(service: Service) -> None:
    prefs = signed_up(service, "old@example.org", "org-x")
    client = service.client()
    assert client.post(prefs, data={"action": "erase"}).status_code == 200
    eventually(lambda: len(service.fakes.sendgrid_requests()) == 2, message="confirmation email")
    confirm = service.fakes.sendgrid_requests()[1].body["content"][0]["value"]
    link = re.search(r"https://notify\.example\.org(/erase/\S+)", confirm)
    assert link, confirm
    now = service.deps.clock()
    service.deps.clock = lambda: now + timedelta(hours=24, minutes=1)
    assert client.get(link.group(1)).status_code == 404
    assert client.post(link.group(1)).status_code == 404
    assert service.count(supporters) == 1  # still there: the person may ask again


def test_alert_progress_is_shown_to_its_organization_only(service: Service) -> None:
    from services.notifications.handlers import handle_alert_published

    with service.engine.begin() as conn:
        handle_alert_published(
            service.deps, alert("alert-v", "camp-v", "org-admin", ["email"]), conn
        )
    client = service.client()
    assert client.get("/api/v1/alerts/alert-v/progress").status_code == 401
    own = issue_key(service.engine, "organizer", "org-admin")
    body = client.get("/api/v1/alerts/alert-v/progress", headers=own).get_json()
    assert body["status"] == "expanding" and body["total"] == 0 and body["queued"] == 0
    other = issue_key(service.engine, "organizer", "org-other")
    assert client.get("/api/v1/alerts/alert-v/progress", headers=other).status_code == 404
    spec = client.get("/api/v1/openapi.json").get_json()
    assert (
        "/api/v1/erasures" in spec["paths"] and "/api/v1/callbacks/sendgrid/events" in spec["paths"]
    )


def test_an_erased_person_who_signs_up_again_can_be_texted_again(service: Service) -> None:
    from services.notifications import erasure
    from services.notifications.handlers import handle_signature_created

    first = signature("ana@example.org", "pet-v", "camp-v", "org-v", phone="+14155550188", sms=True)
    with service.engine.begin() as conn:
        handle_signature_created(service.deps, first, conn)
        erasure.apply_erasure(service.deps, conn, {"supporter_id": first.key})
    number = phone_hash(HASH_KEY, "+14155550188")
    assert {(s.channel, s.reason) for s in service.rows(suppressions)} == {
        ("email", "erased"),
        ("sms", "erased"),
    }
    again = signature("ana@example.org", "pet-v", "camp-v", "org-v", phone="+14155550188", sms=True)
    with service.engine.begin() as conn:
        handle_signature_created(service.deps, again, conn)
    assert service.rows(suppressions) == []  # a fresh opt-in on both channels lifts both
    welcomes = service.rows(deliveries, deliveries.c.kind == "sms_welcome")
    assert len(welcomes) == 2  # and the number is welcomed (with STOP and HELP) again
    # Without an SMS opt-in the number's tombstone stays.
    with service.engine.begin() as conn:
        erasure.apply_erasure(service.deps, conn, {"supporter_id": again.key})
        handle_signature_created(
            service.deps,
            signature("ana@example.org", "pet-v", "camp-v", "org-v", phone="+14155550188"),
            conn,
        )
    assert [s.contact_hash for s in service.rows(suppressions)] == [number]


def test_a_stop_after_an_erasure_is_kept_when_someone_signs_them_up_again(
    service: Service,
) -> None:
    """A text already in flight at the erasure reaches the phone; its owner replies STOP. That
    must hold: a later single opt-in, which anyone can type, lifts an erasure's tombstone, and
    with the STOP lost the number was texted again."""
    from services.notifications import compliance, erasure
    from services.notifications.handlers import handle_signature_created

    number = "+14155550199"
    first = signature("bo@example.org", "pet-s", "camp-s", "org-s", phone=number, sms=True)
    with service.engine.begin() as conn:
        handle_signature_created(service.deps, first, conn)
        erasure.apply_erasure(service.deps, conn, {"supporter_id": first.key})
        assert compliance.sms_stop(conn, service.deps.outbox, phone_hash(HASH_KEY, number),
                                   first.time)  # fmt: skip
    again = signature("bo@example.org", "pet-s", "camp-s", "org-s", phone=number, sms=True)
    with service.engine.begin() as conn:
        handle_signature_created(service.deps, again, conn)
    kept = {(s.channel, s.reason) for s in service.rows(suppressions)}
    assert kept == {("sms", "stop")}  # the email's tombstone lifted by the opt-in; STOP stands


def test_a_person_who_reported_spam_can_still_erase_themselves(service: Service) -> None:
    from datetime import UTC, datetime

    from services.notifications import audience

    prefs = signed_up(service, "lee@example.org", "org-w")
    contact = email_hash(HASH_KEY, "lee@example.org")
    with service.engine.begin() as conn:  # a spam report: no more mail from anyone
        audience.suppress(conn, contact, "email", EVERY_ORG, "complaint", datetime.now(UTC))
    assert service.client().post(prefs, data={"action": "erase"}).status_code == 200
    eventually(
        lambda: len(service.fakes.sendgrid_requests()) == 2, message="the erasure link still sent"
    )
    confirm = service.fakes.sendgrid_requests()[1].body["content"][0]["value"]
    assert re.search(r"https://notify\.example\.org/erase/\S+", confirm), confirm


def test_a_number_held_for_an_owner_to_confirm_goes_with_its_erasure(service: Service) -> None:
    """A number typed with Kim's address waits, in plain text, for Kim to confirm it. Its
    owner asks to be erased by it: it goes now, and Kim's link can no longer bring it back."""
    from services.notifications.handlers import handle_signature_created
    from services.notifications.store import preference_requests

    number = "+14155550142"
    for signed in (
        signature("kim@example.org", "pet-n", "camp-n", "org-n"),
        signature("kim@example.org", "pet-n2", "camp-n", "org-n", phone=number, sms=True),
    ):
        with service.engine.begin() as conn:
            handle_signature_created(service.deps, signed, conn)
    [held] = service.rows(preference_requests)
    assert held.changes["phone"] == number and service.rows(supporters)[0].phone is None
    admin = issue_key(service.engine, "admin", "org-admin")
    erased = service.client().post("/api/v1/erasures", json={"phone": number}, headers=admin)
    assert erased.status_code == 202
    assert service.rows(preference_requests) == []
    assert len(service.rows(supporters)) == 1  # Kim stays, without the number


def test_a_typed_number_does_not_replace_a_change_the_owner_asked_for(service: Service) -> None:
    """Kim asked on the preference page for texts to her number and has the link. A signature
    with her address and a stranger's number comes within the hour: her link confirms texts
    to her number, not to the stranger's."""
    from services.notifications.handlers import handle_signature_created
    from services.notifications.store import preference_requests
    from tests.integration.notifications.harness import project_org, token_of

    project_org(service, "org-n")
    [kim] = seed_audience(service.engine, "camp-n", "org-n", 1, phone_every=1, sms_consent=False)
    token = token_of(service, kim, "org-n")
    service.client().post(f"/preferences/{token}", data={"email": "on", "sms": "on"})
    typed = signature(kim["email"], "pet-n", "camp-n", "org-n", phone="+14155550143", sms=True)
    with service.engine.begin() as conn:
        handle_signature_created(service.deps, typed, conn)
    [held] = service.rows(preference_requests)
    assert held.changes == {"sms": True}
    assert service.rows(supporters)[0].phone == kim["phone"]
