"""Compliance: one-click unsubscribe, preferences, inbound STOP/START/HELP, signed callbacks."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from services.notifications.audience import EVERY_ORG
from services.notifications.messages import CATALOGUE
from services.notifications.store import (
    alerts,
    consents,
    deliveries,
    erasure_requests,
    inbound_sms,
    organizations,
    outbox_table,
    supporters,
    suppressions,
)
from shared.privacy import email_hash, phone_hash
from tests.integration.notifications.harness import (
    HASH_KEY,
    Service,
    alert,
    project_org,
    seed_audience,
    sendgrid_signature,
    token_of,
    twilio_signature,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.integration
NOON_UTC = datetime(2026, 11, 28, 12, tzinfo=UTC)
INBOUND = "/api/v1/callbacks/twilio/inbound"
EVENTS = "/api/v1/callbacks/sendgrid/events"


def outbox_types(service: Service) -> list[str]:
    with service.engine.connect() as conn:
        return list(conn.execute(select(outbox_table.c.type)).scalars())


def consent_events(service: Service) -> list[dict]:
    with service.engine.connect() as conn:
        rows = conn.execute(
            select(outbox_table.c.data).where(outbox_table.c.type == "kinship.consent.changed.v1")
        ).scalars()
        return [json.loads(bytes(r)) for r in rows]


def test_one_click_unsubscribe_is_idempotent_cookieless_and_sticks(service: Service) -> None:
    project_org(service, "org-u")
    people = seed_audience(service.engine, "camp-u", "org-u", 3)
    token = token_of(service, people[0], "org-u")
    client = service.client()
    for _ in range(2):
        response = client.post(
            f"/unsubscribe/{token}",
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers and "Location" not in response.headers
    # An unknown token gets the same answer and changes nothing.
    assert client.post("/unsubscribe/nope.nope").status_code == 200
    assert len(consent_events(service)) == 1
    assert consent_events(service)[0]["change"] == "unsubscribe"
    contact = email_hash(HASH_KEY, people[0]["email"])
    assert service.count(suppressions, suppressions.c.contact_hash == contact) == 1
    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and b"Erase my data" in page.data
    assert people[0]["email"].encode() not in page.data  # the page masks the address

    service.start()
    service.publish(alert("alert-u", "camp-u", "org-u", ["email"]))
    eventually(
        lambda: (
            (r := service.rows(alerts, alerts.c.alert_id == "alert-u")) and r[0].status == "done"
        ),
        message="alert done",
    )
    got = Counter(e for e, _ in service.fakes.sendgrid_recipients())
    assert people[0]["email"] not in got and got[people[1]["email"]] == 1
    row = service.rows(alerts)[0]  # an unsubscriber has left the audience altogether
    assert (row.total, row.sent) == (2, 2)
    # The page's own button, pressed by a Japanese reader, is answered with a page in
    # Japanese, not the one-click endpoint's bare English line (still no cookie, no redirect).
    with service.engine.begin() as conn:
        conn.execute(
            update(supporters)
            .where(supporters.c.supporter_id == people[1]["supporter_id"])
            .values(locale="ja")
        )
    other = token_of(service, people[1], "org-u")
    form = re.search(r'<form method="post" action="(/unsubscribe/[^"]+)">(.*?)</form>',
                     client.get(f"/preferences/{other}").get_data(as_text=True))  # fmt: skip
    assert form is not None
    fields = dict(re.findall(r'name="(\w+)" value="(\w+)"', form.group(2)))
    pressed = client.post(form.group(1), data=fields)
    assert pressed.status_code == 200 and pressed.mimetype == "text/html"
    assert "Set-Cookie" not in pressed.headers and "Location" not in pressed.headers
    assert CATALOGUE["ja"]["page_saved_body"] in pressed.get_data(as_text=True)
    contact = email_hash(HASH_KEY, people[1]["email"])
    assert service.count(suppressions, suppressions.c.contact_hash == contact) == 1


def test_a_list_token_opens_only_its_own_organizations_list(service: Service) -> None:
    """Bob, on org B's list, knows B's tag from his own footer; with Alice's org-A link from a
    forwarded alert he must learn nothing of her and change nothing for B."""
    from services.notifications.audience import set_consent
    from shared.events.envelope import utcnow

    project_org(service, "org-a", "Housing Now")
    project_org(service, "org-b", "Rainbow Bridge")
    alice = seed_audience(service.engine, "camp-a", "org-a", 1, prefix="alice", phone_every=1)[0]
    bob = seed_audience(service.engine, "camp-b", "org-b", 1, prefix="bob")[0]
    with service.engine.begin() as conn:  # Alice signed one of B's petitions too
        for channel in ("email", "sms"):
            set_consent(conn, alice["supporter_id"], "org-b", channel, True, utcnow(),
                        alice["phone_hash"])  # fmt: skip
    alices_a, alices_b = token_of(service, alice, "org-a"), token_of(service, alice, "org-b")
    tag_a, tag_b = (
        service.rows(organizations, organizations.c.organization_id == org)[0].token_tag
        for org in ("org-a", "org-b")
    )
    bobs_b = token_of(service, bob, "org-b")
    forged = [
        f"{alice['token']}.{tag_b}",  # her secret with B's tag
        alices_a.replace(tag_a, tag_b),  # her org-A link with B's tag swapped in
        f"{alice['token']}.{tag_b}.{bobs_b.rsplit('.', 1)[-1]}",  # ... and Bob's own MAC
    ]
    unknown = [f"{'0' * 32}.{tag_b}", f"{'0' * 32}.{tag_b}.{'A' * 22}", "nope.nope.nope"]
    watched = (consents, suppressions, erasure_requests, deliveries, outbox_table, supporters)

    def state() -> list[list[Any]]:
        return [sorted(map(tuple, service.rows(table)), key=repr) for table in watched]

    def answer(method: str, path: str, **form: str) -> tuple[int, bytes]:
        response = service.client().open(path, method=method, data=form)
        return response.status_code, response.data

    requests: list[tuple[str, str, dict[str, str]]] = [
        ("GET", "/preferences/{}", {}),
        ("GET", "/unsubscribe/{}", {}),
        ("POST", "/preferences/{}", {}),  # save with every box cleared
        ("POST", "/preferences/{}", {"action": "erase"}),  # erase my data
        ("POST", "/unsubscribe/{}", {}),  # one-click
    ]
    before = state()
    for method, path, form in requests:
        expected = answer(method, path.format(unknown[0]), **form)
        for token in unknown[1:] + forged:
            assert answer(method, path.format(token), **form) == expected, (method, path, token)
    assert state() == before  # nothing changed for Alice at B, no erasure mail, no event

    own = service.client().get(f"/preferences/{alices_b}")
    assert own.status_code == 200 and b"Rainbow Bridge" in own.data
    assert b'name="email" checked' in own.data and b'name="sms" checked' in own.data
    assert service.client().get(f"/preferences/{alices_a}").status_code == 200
    assert service.client().post(f"/unsubscribe/{alices_b}").status_code == 200
    assert [(e["organization_id"], e["change"]) for e in consent_events(service)] == [
        ("org-b", "unsubscribe")
    ]


def test_preferences_resubscribe_and_discreet_mode(service: Service) -> None:
    """Discreet mode on applies at once. Email back on waits for the emailed link: whoever
    holds a forwarded email (a relative, a shared computer) could otherwise undo the owner's
    unsubscribe, and the organization's mail would come to the inbox again."""
    project_org(service, "org-p")
    people = seed_audience(service.engine, "camp-p", "org-p", 1)
    token = token_of(service, people[0], "org-p")
    client = service.client()
    client.post(f"/unsubscribe/{token}")
    response = client.post(f"/preferences/{token}", data={"email": "on", "discreet": "on"})
    assert response.status_code == 200
    person = service.rows(supporters)[0]
    assert person.discreet is True
    assert service.count(suppressions) == 1  # still unsubscribed
    assert [e["change"] for e in consent_events(service)] == ["unsubscribe"]
    link = confirm_link(service, people[0]["supporter_id"])
    assert "Email on" in client.get(link).get_data(as_text=True)
    assert confirm_held(client, link).status_code == 200
    assert service.count(suppressions) == 0
    assert [e["change"] for e in consent_events(service)] == ["unsubscribe", "subscribe"]
    # Saving the page while receiving email holds nothing and sends no link.
    client.post(f"/preferences/{token}", data={"email": "on", "discreet": "on"})
    assert service.count(deliveries, deliveries.c.kind == "confirm_preferences") == 1


def confirm_held(client: Any, link: str) -> Any:
    """Open a confirmation link's page and press its button, as a browser does (the form
    posts back what the page showed)."""
    page = client.get(link).get_data(as_text=True)
    shown = re.search(r'name="shown" value="([0-9a-f]+)"', page)
    return client.post(link, data={"shown": shown.group(1) if shown else ""})


def confirm_link(service: Service, supporter: str) -> str:
    """The path of the link last emailed to confirm a supporter's held preference changes."""
    rows = service.rows(
        deliveries,
        deliveries.c.kind == "confirm_preferences",
        deliveries.c.recipient_id == supporter,
    )
    row = max(rows, key=lambda r: r.created_at)
    return str(row.params["confirm_url"]).removeprefix("https://notify.example.org")


def test_the_name_and_pronouns_we_use_can_be_changed_on_the_page(service: Service) -> None:
    """Every thank-you says so ("You can change this any time"). The page is reached from a
    link in every email, and emails get forwarded: a new name or pronouns takes effect only
    once the link emailed to the address confirms it."""
    project_org(service, "org-n")
    people = seed_audience(service.engine, "camp-n", "org-n", 1)
    token = token_of(service, people[0], "org-n")
    client = service.client()
    form = {"email": "on", "given_name": " Rin <3 ", "pronouns": "ze/zir", "action": "save"}
    held = client.post(f"/preferences/{token}", data=form)
    assert held.status_code == 200 and "emailed you a link" in held.get_data(as_text=True)
    assert (service.rows(supporters)[0].given_name, service.rows(supporters)[0].pronouns) == (
        "P0",
        None,
    )
    link = confirm_link(service, people[0]["supporter_id"])
    shown = client.get(link).get_data(as_text=True)
    assert "Rin &lt;3" in shown and "ze/zir" in shown
    assert confirm_held(client, link).status_code == 200
    person = service.rows(supporters)[0]
    assert (person.given_name, person.pronouns) == ("Rin <3", "ze/zir")
    assert confirm_held(client, link).status_code == 404  # spent
    # The page asks, never shows: whoever holds a forwarded email can open it.
    page = client.get(f"/preferences/{token}").get_data(as_text=True)
    assert "Rin" not in page and "ze/zir" not in page
    blank = {"email": "on", "given_name": " ", "pronouns": "", "action": "save"}
    assert "are saved" in client.post(f"/preferences/{token}", data=blank).get_data(as_text=True)
    person = service.rows(supporters)[0]
    assert (person.given_name, person.pronouns) == ("Rin <3", "ze/zir")  # blank keeps them
    too_long = {**form, "pronouns": "x" * 41}
    refused = client.post(f"/preferences/{token}", data=too_long)
    assert refused.status_code == 422 and "pronouns" in refused.get_data(as_text=True)
    # The same again is held again: an answer that differed would tell whoever holds the link
    # that they guessed the name or pronouns on file.
    again = client.post(f"/preferences/{token}", data=form)
    assert "emailed you a link" in again.get_data(as_text=True)
    cleared = client.post(f"/preferences/{token}", data={**blank, "clear_names": "on"})
    assert "emailed you a link" in cleared.get_data(as_text=True)
    assert confirm_held(client, confirm_link(service, people[0]["supporter_id"])).status_code == 200
    person = service.rows(supporters)[0]
    assert (person.given_name, person.pronouns) == (None, None)


def test_a_forwarded_email_cannot_turn_discreet_mode_off_or_texts_on(service: Service) -> None:
    """Whoever holds a forwarded email can open the page: what makes the supporter easier to
    identify or reach waits for the inbox; what makes them harder to reach applies at once."""
    project_org(service, "org-q")
    people = seed_audience(
        service.engine, "camp-q", "org-q", 1, phone_every=1, discreet_every=1, sms_consent=False
    )
    token = token_of(service, people[0], "org-q")
    client = service.client()
    client.post(f"/preferences/{token}", data={"email": "on", "sms": "on", "action": "save"})
    person = service.rows(supporters)[0]
    assert person.discreet is True
    assert service.rows(consents, consents.c.channel == "sms", consents.c.granted) == []
    assert service.rows(deliveries, deliveries.c.kind == "sms_welcome") == []
    link = confirm_link(service, people[0]["supporter_id"])
    # Asked again within the hour: the same link confirms the latest ask, no second email.
    client.post(f"/preferences/{token}", data={"email": "on", "sms": "on", "action": "save"})
    assert service.count(deliveries, deliveries.c.kind == "confirm_preferences") == 1
    shown = client.get(link).get_data(as_text=True)
    assert "Discreet mode off" in shown and "Text messages on" in shown
    assert confirm_held(client, link).status_code == 200
    assert service.rows(supporters)[0].discreet is False
    assert len(service.rows(consents, consents.c.channel == "sms", consents.c.granted)) == 1
    assert len(service.rows(deliveries, deliveries.c.kind == "sms_welcome")) == 1
    # Turning discreet mode back on needs no email.
    client.post(f"/preferences/{token}", data={"email": "on", "discreet": "on", "action": "save"})
    assert service.rows(supporters)[0].discreet is True
    # A change held and never confirmed goes with an erasure, names and all.
    from services.notifications import erasure
    from services.notifications.store import preference_requests

    client.post(f"/preferences/{token}", data={"email": "on", "given_name": "Kim"})
    assert service.count(preference_requests) == 1
    with service.engine.begin() as conn:
        erasure.apply_erasure(service.deps, conn, {"supporter_id": people[0]["supporter_id"]})
    assert service.count(preference_requests) == 0


def test_a_confirmation_applies_what_its_page_showed(service: Service) -> None:
    """A change asked for within the hour replaces what the emailed link confirms. Someone
    holding a forwarded email could ask for their own while the owner has the page open: the
    owner's button then confirms nothing it did not show, and the page shows what is held."""
    project_org(service, "org-r")
    people = seed_audience(service.engine, "camp-r", "org-r", 1)
    token = token_of(service, people[0], "org-r")
    client = service.client()
    client.post(f"/preferences/{token}", data={"email": "on", "given_name": "Rin"})
    link = confirm_link(service, people[0]["supporter_id"])
    page = client.get(link).get_data(as_text=True)
    shown = re.search(r'name="shown" value="([0-9a-f]+)"', page)
    assert shown and "Rin" in page
    client.post(f"/preferences/{token}", data={"email": "on", "given_name": "Someone else"})
    pressed = client.post(link, data={"shown": shown.group(1)})
    assert pressed.status_code == 200 and "changed after you opened it" in pressed.text
    assert "Someone else" in pressed.text  # shown now, to confirm or not
    assert service.rows(supporters)[0].given_name == "P0"  # nothing applied
    assert confirm_held(client, link).status_code == 200
    assert service.rows(supporters)[0].given_name == "Someone else"


def test_email_back_on_is_confirmed_for_the_organization_the_page_showed(
    service: Service,
) -> None:
    """Kim unsubscribed from two organizations and asks the first's page for its email again.
    Within the hour, whoever holds a forwarded email of the second asks the same there: the
    link now holds the second organization. Kim's button, pressed on the page that named the
    first, undoes neither unsubscribe; the page is shown again, naming the second."""
    project_org(service, "org-a", name="Asian Health Alliance")
    project_org(service, "org-b", name="Rainbow Bridge")
    [kim] = seed_audience(service.engine, "camp-a", "org-a", 1)
    client = service.client()
    tokens = {org: token_of(service, kim, org) for org in ("org-a", "org-b")}
    for token in tokens.values():
        client.post(f"/unsubscribe/{token}")
    client.post(f"/preferences/{tokens['org-a']}", data={"email": "on"})
    link = confirm_link(service, kim["supporter_id"])
    page = client.get(link).get_data(as_text=True)
    assert "Asian Health Alliance" in page
    shown = re.search(r'name="shown" value="([0-9a-f]+)"', page)
    assert shown
    client.post(f"/preferences/{tokens['org-b']}", data={"email": "on"})
    pressed = client.post(link, data={"shown": shown.group(1)})
    assert "changed after you opened it" in pressed.text and "Rainbow Bridge" in pressed.text
    assert service.count(suppressions) == 2  # both unsubscribes stand


def test_an_unsubscribe_outweighs_an_email_on_still_waiting_for_its_link(
    service: Service,
) -> None:
    """Kim asks for email back, then unsubscribes again before clicking the link: the old
    link must not undo the later unsubscribe."""
    project_org(service, "org-u")
    [kim] = seed_audience(service.engine, "camp-u", "org-u", 1)
    token = token_of(service, kim, "org-u")
    client = service.client()
    client.post(f"/unsubscribe/{token}")
    client.post(f"/preferences/{token}", data={"email": "on"})
    link = confirm_link(service, kim["supporter_id"])
    client.post(f"/unsubscribe/{token}")
    assert confirm_held(client, link).status_code == 404  # nothing left to confirm
    assert service.count(suppressions) == 1


def test_the_pages_an_email_links_to_are_in_the_supporters_language(service: Service) -> None:
    """A supporter who reads their emails in Traditional Chinese gets the preference page, its
    answers and the confirmation page in it; a spent link answers in the browser's language."""
    from sqlalchemy import update

    from services.notifications.messages import text

    project_org(service, "org-l")
    people = seed_audience(service.engine, "camp-l", "org-l", 1, discreet_every=1)
    with service.engine.begin() as conn:
        conn.execute(update(supporters).values(locale="zh-Hant"))
    token = token_of(service, people[0], "org-l")
    client = service.client()
    page = client.get(f"/preferences/{token}").get_data(as_text=True)
    assert '<html lang="zh-Hant">' in page
    assert text("zh-Hant", "page_prefs_title") in page and "Discreet mode" not in page
    held = client.post(f"/preferences/{token}", data={"email": "on", "action": "save"})
    assert text("zh-Hant", "page_held") in held.get_data(as_text=True)  # discreet mode off
    shown = client.get(confirm_link(service, people[0]["supporter_id"])).get_data(as_text=True)
    assert text("zh-Hant", "page_discreet_off") in shown
    gone = client.get("/preferences/nope.nope.nope", headers={"Accept-Language": "ko-KR,en;q=0.5"})
    assert gone.status_code == 404 and text("ko", "page_gone") in gone.get_data(as_text=True)
    # q=0 refuses a language: French is not written, Chinese was refused, so English.
    refused = client.get("/preferences/nope.nope.nope", headers={"Accept-Language": "fr, zh;q=0"})
    assert text("en", "page_gone") in refused.get_data(as_text=True)


def test_the_preferences_page_shows_texts_off_after_stop(service: Service) -> None:
    project_org(service, "org-t")
    people = seed_audience(service.engine, "camp-t", "org-t", 1, phone_every=1)
    token = token_of(service, people[0], "org-t")
    client = service.client()
    sms_box = b'name="sms" checked'
    before = client.get(f"/preferences/{token}")
    assert sms_box in before.data and b"replied STOP" not in before.data
    stop = {"From": people[0]["phone"], "Body": "STOP"}
    assert (
        client.post(INBOUND, data=stop, headers=twilio_signature(INBOUND, stop)).status_code == 200
    )
    after = client.get(f"/preferences/{token}")
    assert sms_box not in after.data and b"replied STOP" in after.data
    start = {"From": people[0]["phone"], "Body": "START"}
    client.post(INBOUND, data=start, headers=twilio_signature(INBOUND, start))
    assert sms_box in client.get(f"/preferences/{token}").data  # the consent given still holds


def test_an_opt_out_in_other_words_is_applied_and_answered_in_the_persons_language(
    service: Service,
) -> None:
    """A Korean supporter answers '그만 보내세요' ('stop sending'): not a word Twilio acts on,
    so Kinship suppresses the number itself and says so, once, in Korean. A plain STOP,
    which Twilio answers (and blocks) itself, gets no second reply."""
    project_org(service, "org-ko")
    people = seed_audience(service.engine, "camp-ko", "org-ko", 2, phone_every=1)
    with service.engine.begin() as conn:
        conn.execute(update(supporters).values(locale="ko"))
    client = service.client()
    polite = {"From": people[0]["phone"], "Body": "\uadf8\ub9cc \ubcf4\ub0b4\uc138\uc694",
              "MessageSid": "SM" + "1" * 32}  # fmt: skip
    answer = client.post(INBOUND, data=polite, headers=twilio_signature(INBOUND, polite))
    assert answer.status_code == 200
    assert CATALOGUE["ko"]["sms_stopped"].format(org="Kinship") in answer.get_data(as_text=True)
    reasons = {s.contact_hash: s.reason for s in service.rows(suppressions)}
    assert reasons == {phone_hash(HASH_KEY, people[0]["phone"]): "stop"}
    again = client.post(INBOUND, data=polite, headers=twilio_signature(INBOUND, polite))
    assert "<Message>" not in again.get_data(as_text=True)  # a replay: applied once, said once
    # Said again in a new text: stopped already, and told so already.
    twice = {**polite, "MessageSid": "SM" + "3" * 32}
    repeat = client.post(INBOUND, data=twice, headers=twilio_signature(INBOUND, twice))
    assert repeat.status_code == 200 and "<Message>" not in repeat.get_data(as_text=True)
    plain = {"From": people[1]["phone"], "Body": "STOP", "MessageSid": "SM" + "2" * 32}
    quiet = client.post(INBOUND, data=plain, headers=twilio_signature(INBOUND, plain))
    assert "<Message>" not in quiet.get_data(as_text=True)
    assert len(service.rows(suppressions)) == 2


def test_a_supporter_chooses_the_language_of_their_messages(service: Service) -> None:
    """Signed on an English form (or a relative's phone): the page offers each language
    Kinship writes in, named in itself, and the choice holds for their pages and messages."""
    project_org(service, "org-lang")
    people = seed_audience(service.engine, "camp-lang", "org-lang", 1)
    token = token_of(service, people[0], "org-lang")
    client = service.client()
    page = client.get(f"/preferences/{token}").get_data(as_text=True)
    assert '<option value="en" lang="en" selected>English</option>' in page
    assert "Ti\u1ebfng Vi\u1ec7t" in page and "\ud55c\uad6d\uc5b4" in page
    form = {"email": "on", "locale": "vi", "action": "save"}
    saved = client.post(f"/preferences/{token}", data=form)
    assert saved.status_code == 200 and 'lang="vi"' in saved.get_data(as_text=True)
    [row] = service.rows(supporters, supporters.c.supporter_id == people[0]["supporter_id"])
    assert (row.locale, row.language) == ("vi", "vi")
    again = client.get(f"/preferences/{token}").get_data(as_text=True)
    assert '<option value="vi" lang="vi" selected>' in again
    assert "Ng\u00f4n ng\u1eef c\u1ee7a tin nh\u1eafn" in again  # the page itself in Vietnamese
    odd = client.post(f"/preferences/{token}", data={**form, "locale": "xx"})
    assert odd.status_code == 200
    [row] = service.rows(supporters, supporters.c.supporter_id == people[0]["supporter_id"])
    assert row.locale == "vi"  # an unknown choice changes nothing


def test_saving_preferences_after_stop_keeps_the_consent_start_brings_back(
    service: Service,
) -> None:
    project_org(service, "org-k")
    people = seed_audience(service.engine, "camp-k", "org-k", 1, phone_every=1)
    token = token_of(service, people[0], "org-k")
    client = service.client()
    stop = {"From": people[0]["phone"], "Body": "STOP"}
    client.post(INBOUND, data=stop, headers=twilio_signature(INBOUND, stop))
    # The page shows texts unticked (STOP); saving the other boxes must not withdraw them.
    saved = client.post(f"/preferences/{token}", data={"email": "on", "action": "save"})
    assert saved.status_code == 200
    start = {"From": people[0]["phone"], "Body": "START"}
    client.post(INBOUND, data=start, headers=twilio_signature(INBOUND, start))
    assert b'name="sms" checked' in client.get(f"/preferences/{token}").data
    assert [e["change"] for e in consent_events(service)] == ["stop", "start"]


def test_texts_chosen_on_the_page_get_the_welcome_and_no_number_no_box(service: Service) -> None:
    project_org(service, "org-w")
    people = seed_audience(
        service.engine, "camp-w", "org-w", 2, phone_every=2, sms_consent=False
    )  # the first has a number, the second none
    with_phone, without = (token_of(service, p, "org-w") for p in people)
    client = service.client()
    assert b'name="sms"' not in client.get(f"/preferences/{without}").data
    client.post(f"/preferences/{without}", data={"email": "on", "sms": "on"})
    client.post(f"/preferences/{with_phone}", data={"email": "on", "sms": "on"})
    assert consent_events(service) == []  # texts on wait for the link emailed to confirm them
    assert confirm_held(client, confirm_link(service, people[0]["supporter_id"])).status_code == 200
    assert [(e["supporter_id"], e["change"]) for e in consent_events(service)] == [
        (people[0]["supporter_id"], "subscribe")
    ]
    [welcome] = service.rows(deliveries, deliveries.c.kind == "sms_welcome")
    assert welcome.recipient_id == people[0]["supporter_id"]


def test_inbound_stop_start_help_are_verified_and_applied(service: Service) -> None:
    number = "+14155550100"
    client = service.client()
    contact = phone_hash(HASH_KEY, number)
    stop = {"From": number, "Body": "  stop ", "To": "+15557654321"}
    forged = client.post(INBOUND, data=stop, headers={"X-Twilio-Signature": "bm9wZQ=="})
    unsigned = client.post(INBOUND, data=stop)
    wrong_key = client.post(INBOUND, data=stop, headers=twilio_signature(INBOUND, stop, "other"))
    assert {forged.status_code, unsigned.status_code, wrong_key.status_code} == {403}
    assert service.count(suppressions) == 0
    ok = client.post(INBOUND, data=stop, headers=twilio_signature(INBOUND, stop))
    assert ok.status_code == 200 and b"<Response" in ok.data
    row = service.rows(suppressions)[0]
    assert (row.contact_hash, row.channel, row.scope) == (contact, "sms", EVERY_ORG)
    help_form = {"From": number, "Body": "HELP"}
    help_reply = client.post(INBOUND, data=help_form, headers=twilio_signature(INBOUND, help_form))
    assert b"STOP" in help_reply.data and b"<Message>" in help_reply.data
    start = {"From": number, "Body": "UNSTOP"}
    client.post(INBOUND, data=start, headers=twilio_signature(INBOUND, start))
    assert service.count(suppressions) == 0


def test_a_replayed_start_does_not_lift_a_later_stop(service: Service) -> None:
    """Twilio's signature covers no time: a signed START captured on its way (a proxy's body
    log) and sent again after the person texted STOP must not subscribe them again."""
    number = "+14155550166"
    client = service.client()

    def text(body: str, sid: str) -> None:
        form = {"From": number, "Body": body, "MessageSid": sid}
        assert (
            client.post(INBOUND, data=form, headers=twilio_signature(INBOUND, form)).status_code
            == 200
        )

    text("STOP", "SM" + "a" * 32)
    text("START", "SM" + "b" * 32)
    assert service.count(suppressions) == 0
    text("STOP", "SM" + "c" * 32)
    assert service.count(suppressions) == 1
    text("START", "SM" + "b" * 32)  # the first START again
    [row] = service.rows(suppressions)
    assert (row.contact_hash, row.reason) == (phone_hash(HASH_KEY, number), "stop")
    text("START", "SM" + "d" * 32)  # a new START is theirs to send
    assert service.count(suppressions) == 0
    assert all("SM" not in str(tuple(r)) for r in service.rows(inbound_sms))


def test_twilios_own_reading_of_an_opt_out_is_honoured(service: Service) -> None:
    """With Twilio's Advanced Opt-Out, a custom keyword (set in the console, in any language)
    reaches us as OptOutType: Twilio blocks the number already, and the preference page must
    say so too."""
    number = "+14155550111"
    client = service.client()
    custom = {"From": number, "Body": "\u9000\u8ba2", "OptOutType": "STOP"}
    told = client.post(INBOUND, data=custom, headers=twilio_signature(INBOUND, custom))
    assert told.status_code == 200
    [row] = service.rows(suppressions)
    assert (row.contact_hash, row.reason) == (phone_hash(HASH_KEY, number), "stop")
    back = {"From": number, "Body": "\u8ba2\u9605", "OptOutType": "START"}
    client.post(INBOUND, data=back, headers=twilio_signature(INBOUND, back))
    assert service.count(suppressions) == 0
    # Twilio answered a HELP itself (its console's reply): a second, billed answer would
    # only repeat it.
    helped = {"From": number, "Body": "info", "OptOutType": "HELP"}
    answer = client.post(INBOUND, data=helped, headers=twilio_signature(INBOUND, helped))
    assert answer.status_code == 200 and b"<Message>" not in answer.data


def test_a_supporter_who_asks_for_no_more_texts_in_other_words_gets_none(
    service: Service,
) -> None:
    """Opt-outs as supporters write them, in the language of their texts or in a sentence,
    which Twilio's keyword list does not catch (no OptOutType comes with them)."""
    client = service.client()
    for i, body in enumerate(("\u8bf7\u9000\u8ba2", "please stop", "Wrong number, stop texting")):
        number = f"+1415555012{i}"
        form = {"From": number, "Body": body}
        assert (
            client.post(INBOUND, data=form, headers=twilio_signature(INBOUND, form)).status_code
            == 200
        )
        reasons = {r.contact_hash: r.reason for r in service.rows(suppressions)}
        assert reasons.get(phone_hash(HASH_KEY, number)) == "stop", body


def test_help_is_answered_in_the_language_of_the_numbers_supporter(service: Service) -> None:
    from services.notifications.handlers import handle_signature_created
    from tests.integration.notifications.harness import signature

    number = "+14155550177"
    signed = signature("yu@example.org", "pet-h", "camp-h", "org-h", phone=number, locale="ja")
    with service.engine.begin() as conn:
        handle_signature_created(service.deps, signed, conn)
    client = service.client()
    replies = {}
    for sender in (number, "+14155550178"):  # a supporter's number, and a stranger's
        form = {"From": sender, "Body": "help"}
        answer = client.post(INBOUND, data=form, headers=twilio_signature(INBOUND, form))
        replies[sender] = answer.get_data(as_text=True)
    assert "STOP" in replies[number] and "\u3054\u652f\u63f4" in replies[number]  # Japanese
    assert "alerts about campaigns you support" in replies["+14155550178"]


def test_sms_alert_skips_a_number_that_texted_stop(service: Service) -> None:
    project_org(service, "org-s")
    people = seed_audience(
        service.engine, "camp-s", "org-s", 5, phone_every=1, email_consent=False,
        time_zone="UTC",
    )  # fmt: skip
    stop = {"From": people[2]["phone"], "Body": "STOPALL"}
    client = service.client()
    assert (
        client.post(INBOUND, data=stop, headers=twilio_signature(INBOUND, stop)).status_code == 200
    )
    service.deps.clock = lambda: NOON_UTC
    service.start()
    service.publish(alert("alert-s", "camp-s", "org-s", ["sms"]))
    eventually(
        lambda: (
            (r := service.rows(alerts, alerts.c.alert_id == "alert-s")) and r[0].status == "done"
        ),
        message="alert done",
    )
    sent_to = [m.body["To"] for m in service.fakes.twilio_messages()]
    assert people[2]["phone"] not in sent_to and len(sent_to) == 4


def email_alert_sent(service: Service, name: str, n: int) -> tuple[list[dict], dict[str, str]]:
    """Send an email alert of org-<name> to n supporters; return them and each address's
    notification id (the workers are stopped: what follows is only the callbacks)."""
    org, camp, alert_id = f"org-{name}", f"camp-{name}", f"alert-{name}"
    project_org(service, org)
    people = seed_audience(service.engine, camp, org, n)
    service.start()
    service.publish(alert(alert_id, camp, org, ["email"]))
    eventually(
        lambda: (
            (r := service.rows(alerts, alerts.c.alert_id == alert_id)) and r[0].status == "done"
        ),
        message="alert done",
    )
    service.stop()
    return people, {e: a["notification_id"] for e, a in service.fakes.sendgrid_recipients()}


def test_sendgrid_events_are_verified_then_bounce_suppresses_and_delivered_counts(
    service: Service,
) -> None:
    people, ids = email_alert_sent(service, "w", 3)

    def receipt(person: dict, kind: str, **extra: str) -> dict:
        address = person["email"]
        return {"email": address, "event": kind, "notification_id": ids[address], **extra}

    payload = json.dumps(
        [
            receipt(people[0], "delivered", alert_id="alert-w"),
            receipt(people[1], "bounce", type="bounce", alert_id="alert-w"),
            receipt(people[2], "spamreport"),
        ]
    )
    client = service.client()
    headers = sendgrid_signature(payload)
    tampered = client.post(EVENTS, data=payload.replace("bounce", "open"), headers=headers)
    unsigned = client.post(EVENTS, data=payload, content_type="application/json")
    stale = client.post(EVENTS, data=payload, headers=sendgrid_signature(payload, "1000000000"))
    assert {tampered.status_code, unsigned.status_code, stale.status_code} == {403}
    assert service.count(suppressions) == 0
    assert service.count(deliveries, deliveries.c.status == "delivered") == 0
    assert client.post(EVENTS, data=payload, headers=headers).status_code == 204
    reasons = {r.contact_hash: r.reason for r in service.rows(suppressions)}
    assert reasons == {
        email_hash(HASH_KEY, people[1]["email"]): "bounce",
        email_hash(HASH_KEY, people[2]["email"]): "complaint",
    }
    row = service.rows(alerts)[0]
    assert (row.sent, row.delivered, row.failed, row.suppressed) == (1, 1, 2, 0)
    assert row.total == row.sent + row.failed + row.suppressed
    changes = sorted(e["change"] for e in consent_events(service))
    assert changes == ["bounce", "complaint"]


def test_an_account_wide_unsubscribe_posted_again_is_announced_once(service: Service) -> None:
    """SendGrid posts an event again until it is answered (and a signed post can come twice
    within its window): the second changes nothing, and must say nothing."""
    people = seed_audience(service.engine, "camp-g", "org-g", 2)
    payload = json.dumps([{"email": people[0]["email"], "event": "unsubscribe"}])
    client = service.client()
    for _ in range(2):
        answer = client.post(EVENTS, data=payload, headers=sendgrid_signature(payload))
        assert answer.status_code == 204
    mine = [e for e in consent_events(service) if e["supporter_id"] == people[0]["supporter_id"]]
    assert [(e["change"], e["organization_id"]) for e in mine] == [("unsubscribe", None)]


def test_sendgrid_unsubscribes_drops_and_blocks_each_do_what_they_mean(service: Service) -> None:
    people, ids = email_alert_sent(service, "u", 7)
    events = [
        {"event": "unsubscribe"},  # SendGrid's own unsubscribe link: this organization only
        {"event": "group_unsubscribe", "asm_group_id": 7},
        {"event": "dropped", "reason": "Bounced Address"},  # a dead address: for everyone
        {"event": "bounce", "type": "blocked"},  # the receiving server said "not now"
        # Dropped for the message, not the address: suppressing it would have cut the whole
        # audience of an alert the spam checker caught off for good.
        {"event": "dropped", "reason": "Spam Content"},
        # On the account's lists: an unsubscribe its owner can take back, and a complaint.
        {"event": "dropped", "reason": "Unsubscribed Address"},
        {"event": "dropped", "reason": "Spam Reporting Address"},
    ]
    payload = json.dumps(
        [
            {"email": p["email"], "notification_id": ids[p["email"]], **e}
            for p, e in zip(people, events, strict=True)
        ]
    )
    client = service.client()
    assert client.post(EVENTS, data=payload, headers=sendgrid_signature(payload)).status_code == 204
    found = {(r.contact_hash, r.scope, r.reason) for r in service.rows(suppressions)}
    hashes = [email_hash(HASH_KEY, p["email"]) for p in people]
    assert found == {
        (hashes[0], "org-u", "unsubscribe"),
        (hashes[1], "org-u", "unsubscribe"),
        (hashes[2], EVERY_ORG, "dropped"),
        (hashes[5], EVERY_ORG, "unsubscribe"),
        (hashes[6], EVERY_ORG, "complaint"),
    }
    granted = {
        r.supporter_id
        for r in service.rows(consents, consents.c.channel == "email", consents.c.granted)
    }
    assert granted == {p["supporter_id"] for p in people[2:]}
    codes = {r.recipient_id: r.error_code for r in service.rows(deliveries)}
    assert codes[people[3]["supporter_id"]] == "blocked"
    assert codes[people[4]["supporter_id"]] == "dropped"
    row = service.rows(alerts)[0]
    assert (row.sent, row.failed) == (2, 5) and row.total == row.sent + row.failed
    changes = sorted(e["change"] for e in consent_events(service))
    assert changes == ["bounce", "complaint", "unsubscribe", "unsubscribe", "unsubscribe"]


def test_an_undelivered_text_fails_and_21610_stops_the_number(service: Service) -> None:
    project_org(service, "org-f")
    people = seed_audience(
        service.engine, "camp-f", "org-f", 2, phone_every=1, email_consent=False, time_zone="UTC"
    )
    service.deps.clock = lambda: NOON_UTC
    service.start()
    service.publish(alert("alert-f", "camp-f", "org-f", ["sms"]))
    eventually(lambda: len(service.fakes.twilio_messages()) == 2, message="texts sent")
    eventually(lambda: service.count(deliveries, deliveries.c.status == "sent") == 2)
    client = service.client()
    by_number = {m.body["To"]: m for m in service.fakes.twilio_messages()}
    # Meanwhile the second supporter's number changed: the one texted is the one that
    # opted out, not the new one, which never sent STOP.
    with service.engine.begin() as conn:
        conn.execute(
            update(supporters)
            .where(supporters.c.supporter_id == people[1]["supporter_id"])
            .values(phone="+14155550999", phone_hash=phone_hash(HASH_KEY, "+14155550999"))
        )
    for person, form_extra in (
        (people[0], {"MessageStatus": "undelivered", "ErrorCode": "30003"}),  # phone off
        (people[1], {"MessageStatus": "failed", "ErrorCode": "21610"}),  # the number opted out
    ):
        message = by_number[person["phone"]]
        path = message.body["StatusCallback"].removeprefix("https://notify.example.org")
        form = {"MessageSid": message.resource_id, "To": person["phone"], **form_extra}
        assert client.post(path, data=form, headers=twilio_signature(path, form)).status_code == 204
    codes = {r.recipient_id: (r.status, r.error_code) for r in service.rows(deliveries)}
    assert codes == {
        people[0]["supporter_id"]: ("failed", "30003"),
        people[1]["supporter_id"]: ("failed", "21610"),
    }
    stopped = [(r.contact_hash, r.reason) for r in service.rows(suppressions)]
    assert stopped == [(phone_hash(HASH_KEY, people[1]["phone"]), "stop")]
    row = service.rows(alerts)[0]
    assert (row.sent, row.failed) == (0, 2)


def test_twilio_status_callback_is_verified_and_marks_delivered(service: Service) -> None:
    project_org(service, "org-t")
    seed_audience(
        service.engine, "camp-t", "org-t", 1, phone_every=1, email_consent=False, time_zone="UTC"
    )
    service.deps.clock = lambda: NOON_UTC
    service.start()
    service.publish(alert("alert-t", "camp-t", "org-t", ["sms"]))
    eventually(lambda: service.fakes.twilio_messages(), message="sms sent")
    message = service.fakes.twilio_messages()[0]
    path = message.body["StatusCallback"].removeprefix("https://notify.example.org")
    form = {"MessageSid": message.resource_id, "MessageStatus": "delivered"}
    client = service.client()
    eventually(lambda: service.count(deliveries, deliveries.c.status == "sent") == 1)
    assert client.post(path, data=form).status_code == 403
    assert (
        client.post(path, data=form, headers=twilio_signature(path, {"x": "1"})).status_code == 403
    )
    assert service.count(deliveries, deliveries.c.status == "delivered") == 0
    # Word of another send of this row (an earlier attempt whose fate was unknown, which
    # Twilio took too) fails nothing: the row counts the text it was sent as.
    earlier = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    answer = client.post(path, data=earlier, headers=twilio_signature(path, earlier))
    assert answer.status_code == 204
    assert [r.status for r in service.rows(deliveries)] == ["sent"]
    assert client.post(path, data=form, headers=twilio_signature(path, form)).status_code == 204
    assert service.count(deliveries, deliveries.c.status == "delivered") == 1
    assert (service.rows(alerts)[0].sent, service.rows(alerts)[0].failed) == (1, 0)


def test_a_status_callback_that_beats_the_senders_record_still_counts(service: Service) -> None:
    # Twilio can call back before the sender has recorded that Twilio took the text. The
    # fake holds the request 3 s; both callbacks come in that time, while the rows are
    # `queued` or `sending`, and are applied once the rows are settled: none is lost. One
    # speaks of another send (its MessageSid is not the one the row was sent as): that is not
    # applied to this one. (The fake's ids are only known once it answers; a callback
    # without one is applied to its row.)
    from services.notifications.store import early_outcomes

    project_org(service, "org-e")
    people = seed_audience(
        service.engine, "camp-e", "org-e", 2, phone_every=1, email_consent=False, time_zone="UTC"
    )
    service.deps.clock = lambda: NOON_UTC
    service.fakes.set_faults("twilio", {"rules": [{"kind": "delay", "delay_ms": 3000}]})
    service.start()
    service.publish(alert("alert-e", "camp-e", "org-e", ["sms"]))
    eventually(lambda: service.count(deliveries, deliveries.c.status == "sending") >= 1)
    client = service.client()
    outcomes = {
        people[0]["supporter_id"]: {"MessageStatus": "undelivered", "ErrorCode": "30003"},
        people[1]["supporter_id"]: {
            "MessageStatus": "failed",
            "ErrorCode": "30005",
            "MessageSid": "SM" + "0" * 32,
        },  # fmt: skip
    }
    for row in service.rows(deliveries):
        path = f"/api/v1/callbacks/twilio/status/{row.delivery_id}"
        form = outcomes[row.recipient_id]
        assert client.post(path, data=form, headers=twilio_signature(path, form)).status_code == 204
    in_flight = deliveries.c.status.in_(["queued", "sending"])
    assert service.count(deliveries, in_flight) == 2  # neither text is recorded as sent yet
    assert service.count(early_outcomes) == 2
    eventually(lambda: len(service.fakes.twilio_messages()) == 2, message="texts taken")

    def settled() -> dict[str, tuple[str, str | None]]:
        return {r.recipient_id: (r.status, r.error_code) for r in service.rows(deliveries)}

    applied = {
        people[0]["supporter_id"]: ("failed", "30003"),
        people[1]["supporter_id"]: ("sent", None),
    }
    eventually(
        lambda: settled() == applied and service.count(early_outcomes) == 0,
        message="early callbacks applied",
    )
    row = service.rows(alerts)[0]
    assert (row.sent, row.failed) == (1, 1)
    assert row.total == row.sent + row.failed + row.suppressed


def test_a_later_signature_never_turns_discreet_mode_off(service: Service) -> None:
    from services.notifications.handlers import handle_signature_created
    from tests.integration.notifications.harness import signature

    careful = signature("kim@example.org", "pet-d1", "camp-d", "org-d", discreet=True)
    later = signature("kim@example.org", "pet-d2", "camp-d", "org-d", given_name="Kim")
    for signed in (careful, later):
        with service.engine.begin() as conn:
            handle_signature_created(service.deps, signed, conn)
    person = service.rows(supporters)[0]
    assert person.discreet is True


def test_a_signature_anyone_could_type_never_renames_or_regenders_a_supporter(
    service: Service,
) -> None:
    """Anyone who knows an address can sign a single opt-in petition with it. Had that signature
    replaced the name and pronouns held, every later email would greet the owner by a name
    they no longer use: a deadname, a wrong gender, sent on by the person who typed it."""
    from services.notifications.handlers import handle_signature_created
    from tests.integration.notifications.harness import signature

    own = signature("kai@example.org", "pet-n1", "camp-n", "org-n", given_name="Kai",
                    pronouns="they/them")  # fmt: skip
    own.data["person"]["family_name"] = None
    typed = signature("kai@example.org", "pet-n2", "camp-n", "org-n", given_name="Katherine",
                      pronouns="she/her")  # fmt: skip
    for signed in (own, typed):
        with service.engine.begin() as conn:
            handle_signature_created(service.deps, signed, conn)
    person = service.rows(supporters)[0]
    # A blank is filled; what the person goes by is kept.
    assert (person.given_name, person.family_name, person.pronouns) == (
        "Kai",
        "Nguyen",
        "they/them",
    )
    # The second signature still thanks the owner: by the name they go by (filled at sending).
    thanks = service.rows(deliveries, deliveries.c.kind == "thank_you")
    assert len(thanks) == 2 and all("name" not in (row.params or {}) for row in thanks)


def test_a_confirmed_signature_is_the_persons_own_word_on_their_name(service: Service) -> None:
    from services.notifications.handlers import handle_signature_confirmed, handle_signature_created
    from tests.integration.notifications.harness import confirmation, signature

    own = signature("kai@example.org", "pet-n1", "camp-n", "org-n", given_name="Katherine",
                    pronouns="she/her")  # fmt: skip
    renamed = signature("kai@example.org", "pet-n2", "camp-n", "org-n", given_name="Kai",
                        pronouns="they/them", double_opt_in=True)  # fmt: skip
    confirmed = confirmation(renamed)
    with service.engine.begin() as conn:
        handle_signature_created(service.deps, own, conn)
        handle_signature_created(service.deps, renamed, conn)
    assert service.rows(supporters)[0].given_name == "Katherine"  # not before the link's click
    with service.engine.begin() as conn:
        handle_signature_confirmed(service.deps, confirmed, conn)
    person = service.rows(supporters)[0]
    assert (person.given_name, person.pronouns) == ("Kai", "they/them")


def test_a_renamed_campaign_is_named_anew_in_later_alerts(service: Service) -> None:
    from services.notifications.handlers import handlers
    from services.notifications.store import campaigns
    from tests.integration.notifications.harness import event

    table = handlers(service.deps)
    fields = {"campaign_id": "camp-n", "lead_organization_id": "org-n", "status": "active"}
    for short, title in (("campaign.created", "Old name"), ("campaign.updated", "New name")):
        update = event(short, "camp-n", titles={"en": title}, **fields)
        with service.engine.begin() as conn:
            for handle in table[update.type]:
                handle(update, conn)
    assert service.rows(campaigns)[0].titles == {"en": "New name"}


def test_opting_in_on_a_signature_publishes_each_new_consent_once(service: Service) -> None:
    from services.notifications.handlers import handle_signature_created
    from tests.integration.notifications.harness import signature

    def signed(petition_id: str) -> None:
        event = signature(
            "joy@example.org", petition_id, "camp-c", "org-c", phone="+14155550142", sms=True
        )
        with service.engine.begin() as conn:
            handle_signature_created(service.deps, event, conn)

    signed("pet-c1")
    signed("pet-c2")  # the same boxes again: nothing changes, nothing is published
    events = consent_events(service)
    changes = sorted((e["channel"], e["organization_id"], e["change"]) for e in events)
    assert changes == [("email", "org-c", "subscribe"), ("sms", "org-c", "subscribe")]


def test_a_signature_anyone_could_type_is_not_published_as_lifting_an_unsubscribe(
    service: Service,
) -> None:
    """An unsubscribe holds against a later single opt-in signature ticking email: we go on not
    emailing, and no `subscribe` tells petitions' export (and the tools organizers import it
    into) otherwise. Only the person (the preference page, a confirmed signature) lifts it."""
    from services.notifications.handlers import handle_signature_confirmed, handle_signature_created
    from tests.integration.notifications.harness import confirmation, signature

    project_org(service, "org-w")
    people = seed_audience(service.engine, "camp-w", "org-w", 1, sms_consent=False)
    email = people[0]["email"]
    client = service.client()
    client.post(f"/unsubscribe/{token_of(service, people[0], 'org-w')}")
    with service.engine.begin() as conn:
        handle_signature_created(service.deps, signature(email, "pet-w1", "camp-w", "org-w"), conn)
    changes = [(e["channel"], e["change"]) for e in consent_events(service)]
    assert changes == [("email", "unsubscribe")]
    contact = email_hash(HASH_KEY, email)
    assert service.count(suppressions, suppressions.c.contact_hash == contact) == 1
    # Their own double opt-in signature, confirmed: the unsubscribe is lifted, and published.
    own = signature(email, "pet-w2", "camp-w", "org-w", double_opt_in=True)
    confirmed = confirmation(own)
    with service.engine.begin() as conn:
        handle_signature_created(service.deps, own, conn)
        handle_signature_confirmed(service.deps, confirmed, conn)
    changes = [(e["channel"], e["change"]) for e in consent_events(service)]
    assert changes == [("email", "unsubscribe"), ("email", "subscribe")]
    assert service.count(suppressions, suppressions.c.contact_hash == contact) == 0


@pytest.mark.parametrize("change", ["consent", "suppression"])
def test_two_opt_outs_at_once_are_announced_once(service: Service, change: str) -> None:
    """A mail client's one-click POST and the footer's button a moment later (or two STOPs):
    both read the consent as given, and each published consent.changed. The change is now
    decided on the row as committed: the second waits for the first and finds nothing to do."""
    import threading

    from sqlalchemy import text

    from services.notifications import audience

    [person] = seed_audience(service.engine, "camp-2x", "org-2x", 1)
    from shared.events.envelope import utcnow

    now = utcnow()

    def opt_out(conn: Any) -> bool:
        if change == "consent":
            return audience.set_consent(conn, person["supporter_id"], "org-2x", "email", False, now)
        contact = email_hash(HASH_KEY, person["email"])
        return audience.suppress(conn, contact, "email", EVERY_ORG, "unsubscribe", now)

    second: list[bool] = []
    with service.engine.connect() as first, first.begin():
        assert opt_out(first)
        thread = threading.Thread(target=lambda: second.append(_in_a_transaction(service, opt_out)))
        thread.start()

        def waiting() -> bool:
            with service.engine.connect() as conn:
                return bool(conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )).scalar_one())  # fmt: skip

        eventually(waiting, timeout=30, message="the second opt-out waiting on the first")
    thread.join(timeout=30)
    assert second == [False]


def _in_a_transaction(service: Service, work: Any) -> Any:
    with service.engine.begin() as conn:
        return work(conn)
