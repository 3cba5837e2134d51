"""Signing over HTTP: once per person, identical answers, bad input named, bots and floods."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.petitions import signing, store
from tests.integration.petitions.conftest import HASH_KEY, Petitions

pytestmark = pytest.mark.integration


def comparable(response: Any) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers, less those that vary by the moment or the rate window."""
    varying = {"date", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"}
    headers = {k.lower(): v for k, v in response.headers.items() if k.lower() not in varying}
    return response.status_code, response.get_data(), headers


def test_a_signature_is_recorded_counted_and_announced(svc: Petitions) -> None:
    petition_id = svc.open_petition()
    response = svc.sign(
        petition_id,
        "Mari.Santos@example.org",
        person={
            "given_name": "Mari",
            "email": "Mari.Santos@example.org",
            "phone": "(415) 555-2671",
            "country": "US",
            "postal_code": "94110",
            "language": "es-MX",
            "pronouns": "she/her",
        },
        consents={"email": True, "sms": True, "partners": {"rainbow": True, svc.p2: False}},
        referrer_data={"source": "RB"},
        comment="For my lola",
    )
    assert response.status_code == 202
    assert response.get_json() == {
        "petition_id": petition_id,
        "status": "received",
        "message": signing.MESSAGES["received"],
    }
    [row] = svc.rows(store.signatures, petition_id=petition_id)
    assert row.phone == "+14155552671" and row.locale == "es"
    assert row.recruiter_organization_id == svc.p1 and row.source == "rb"
    [event] = svc.outbox_events("signature.created")
    assert event["duplicate"] is False and event["confirm_url"] is None
    assert event["person"]["email"] == "Mari.Santos@example.org"
    assert event["consents"] == {"email": True, "sms": True, "partner_organization_ids": [svc.p1]}
    assert event["attribution"] == {"source": "rb", "partner_organization_id": svc.p1}
    assert event["locale"] == "es" and event["organization_id"] == svc.lead
    counts = svc.counts(petition_id)
    assert counts["total"] == 1 and counts["pending"] == 0
    assert counts["by_locale"] == {"es": 1}
    assert counts["by_partner"] == {svc.p1: 1}
    assert counts["by_source"] == {"rb": 1}


def test_a_partners_own_channel_codes_credit_it(svc: Petitions) -> None:
    """A partner telling its channels apart ("rb-instagram", "rb-newsletter") is still credited
    with the people it brought; a code that merely starts with its letters is not its own."""
    petition_id = svc.open_petition()
    for i, source in enumerate(("RB-Instagram", "rb-newsletter", "rbx", "kp", "rb_", "rb-")):
        signed = svc.sign(petition_id, f"c{i}@example.org", referrer_data={"source": source})
        assert signed.status_code == 202, source
    counts = svc.counts(petition_id)
    assert counts["by_partner"] == {svc.p1: 3, svc.p2: 1, "direct": 2}, counts
    assert counts["by_source"]["rb-instagram"] == 1 and counts["by_source"]["rbx"] == 1


def test_the_interests_a_signer_ticks_reach_notifications_and_nothing_else(
    svc: Petitions,
) -> None:
    """Alerts can target stated interests: the signature event must carry them. They can say
    who a person is (trans-health), so this service keeps them nowhere and exports none."""
    petition_id = svc.open_petition()
    ticked = ["trans-health", "housing", "housing"]
    assert svc.sign(petition_id, "ira@example.org", interests=ticked).status_code == 202
    [event] = svc.outbox_events("signature.created")
    assert event["interests"] == ["housing", "trans-health"]
    [row] = svc.rows(store.signatures)
    assert "trans-health" not in str(tuple(row))


def test_a_duplicate_is_invisible_to_the_signer_and_never_counted(svc: Petitions) -> None:
    petition_id = svc.open_petition()
    first = svc.sign(petition_id, "mari.santos@gmail.com")
    variants = [" MariSantos@Gmail.com ", "mari.santos+petition@googlemail.com"]
    repeats = [svc.sign(petition_id, address) for address in variants]
    for repeat in repeats:
        assert comparable(repeat) == comparable(first)
    assert svc.counts(petition_id)["total"] == 1
    assert len(svc.rows(store.signatures, petition_id=petition_id)) == 1
    events = svc.outbox_events("signature.created")
    assert [e["duplicate"] for e in events] == [False, True, True]
    assert len({e["signature_id"] for e in events}) == 1
    assert len({e["supporter_id"] for e in events}) == 1
    # Another mailbox at a provider that does not ignore dots is another person.
    svc.sign(petition_id, "mari.santos@example.org")
    svc.sign(petition_id, "marisantos@example.org")
    assert svc.counts(petition_id)["total"] == 3


def test_one_idempotency_key_signs_once_and_says_nothing_twice(svc: Petitions) -> None:
    petition_id = svc.open_petition()
    headers = {"Idempotency-Key": "retry-me"}
    first = svc.sign(petition_id, "ana@example.org", headers=headers)
    retried = svc.sign(petition_id, "ana@example.org", headers=headers)
    # The same answer, not saying it is a replay as the other services' replays do: whoever
    # sent Ana's details with a form's key would learn from it that she had signed.
    assert comparable(retried) == comparable(first)
    assert "Idempotent-Replayed" not in retried.headers
    # A network retry is not a second signature: no "already signed" email.
    assert len(svc.outbox_events("signature.created")) == 1
    # A different request under the same key and address signs as one without a key would:
    # a 422 here told whoever typed Ana's address with a form's key that she had signed.
    renamed = {"given_name": "Ana María", "family_name": "Santos", "email": "ana@example.org"}
    changed = svc.sign(petition_id, "ana@example.org", headers=headers, person=renamed)
    assert comparable(changed) == comparable(first)
    assert svc.counts(petition_id)["total"] == 1  # and is her duplicate, counted once
    # An empty key is refused, as everywhere (it could never be replayed).
    empty = svc.sign(petition_id, "ana@example.org", headers={"Idempotency-Key": ""})
    assert empty.status_code == 422 and "Idempotency-Key" in empty.get_json()["errors"]
    # Keys are the signer's own: another signer's form that happens to send the same one (an
    # embed's counter, a widget's id) signs, and learns nothing of who used it first.
    other = svc.sign(petition_id, "someone-else@example.org", headers=headers)
    assert comparable(other) == comparable(first)
    assert svc.counts(petition_id)["total"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"person": {"email": "not-an-email"}}, "person.email"),
        ({"person": {"email": "a@example.org", "phone": "555"}}, "person.phone"),
        ({"person": {"email": "a@example.org", "phone": "12345", "country": "US"}}, "person.phone"),
        ({"person": {"email": "a@example.org"}, "consents": {"sms": True}}, "person.phone"),
        ({"person": {"email": "a@example.org"}, "locale": "fr"}, "locale"),
        ({"person": {"email": "a@example.org"}, "locale": "qq-ZZ"}, "locale"),
        ({"person": {"email": "a@example.org", "language": "klingon"}}, "person.language"),
        ({"person": {"email": "a@example.org"}, "comment": "x" * 5000}, "comment"),
        ({"person": {"email": "a@example.org", "family_name": "x" * 500}}, "person.family_name"),
        # A "name" the thank-you would carry to the address typed, from the lead's sender.
        (
            {"person": {"email": "a@example.org", "given_name": "Locked out? Go to unlock.com"}},
            "person.given_name",
        ),
        ({"person": {"email": "a@example.org", "pronouns": "www.spam.example"}}, "person.pronouns"),
        ({"person": {"email": "a" * 300 + "@example.org"}}, "person.email"),
        (
            {"person": {"email": "a@example.org"}, "referrer_data": {"source": "a b"}},
            "referrer_data.source",
        ),
        (
            {"person": {"email": "a@example.org"}, "consents": {"partners": {"outsider": True}}},
            "consents.partners.outsider",
        ),
        ({"person": {"email": "a@example.org"}, "interests": ["Housing Justice"]}, "interests.0"),
        ({"person": {"email": "a@example.org"}, "interests": ["a"] * 21}, "interests"),
        ({"person": "me"}, "person"),
        ({}, "person"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    svc: Petitions, body: dict[str, Any], field: str
) -> None:
    petition_id = svc.open_petition()
    response = svc.client.post(f"/api/v1/petitions/{petition_id}/signatures", json=body)
    assert response.status_code == 422, response.get_json()
    payload = response.get_json()
    assert payload["code"] == 422 and field in payload["errors"], payload
    assert svc.rows(store.signatures) == []


def test_malformed_requests_never_reach_a_500(svc: Petitions) -> None:
    petition_id = svc.open_petition()
    url = f"/api/v1/petitions/{petition_id}/signatures"
    not_json = svc.client.post(url, data="{nope", content_type="application/json")
    assert not_json.status_code == 400 and not_json.get_json()["code"] == 400
    huge = svc.client.post(url, data="x" * (3 * 1024 * 1024), content_type="application/json")
    assert huge.status_code == 413
    unknown = svc.client.post(
        "/api/v1/petitions/no-such/signatures", json={"person": {"email": "a@example.org"}}
    )
    assert unknown.status_code == 404
    draft_id = svc.create_petition()
    draft = svc.client.post(
        f"/api/v1/petitions/{draft_id}/signatures", json={"person": {"email": "a@example.org"}}
    )
    assert draft.status_code == 404


def test_a_filled_honeypot_is_dropped_silently(svc: Petitions) -> None:
    petition_id = svc.open_petition()
    human = svc.sign(petition_id, "human@example.org")
    bot = svc.sign(petition_id, "bot@example.org", website="http://spam.example")
    assert comparable(bot) == comparable(human)
    assert [r.email for r in svc.rows(store.signatures)] == ["human@example.org"]
    assert len(svc.outbox_events("signature.created")) == 1
    # Bad input is refused the same with the field filled or not: nothing tells which is the trap.
    bad = {"person": {"email": "x@example.org", "phone": "555"}}
    plain, trapped = (
        svc.client.post(f"/api/v1/petitions/{petition_id}/signatures", json=body)
        for body in (bad, {**bad, "website": "http://spam.example"})
    )
    assert plain.status_code == trapped.status_code == 422
    assert plain.get_json() == trapped.get_json()
    # So is a key no record could hold.
    long_key = {"Idempotency-Key": "k" * 201}
    plain = svc.sign(petition_id, "x@example.org", headers=long_key)
    trapped = svc.sign(petition_id, "x@example.org", headers=long_key, website="http://spam")
    assert plain.status_code == trapped.status_code == 422
    assert plain.get_json() == trapped.get_json()
    # And a closed petition refuses the bot as it refuses anyone.
    closed = svc.client.post(f"/api/v1/petitions/{petition_id}/close", headers=svc.auth("lead"))
    assert closed.status_code == 200
    plain = svc.sign(petition_id, "late@example.org")
    trapped = svc.sign(petition_id, "late@example.org", website="http://spam.example")
    assert plain.status_code == trapped.status_code == 409
    assert plain.get_json() == trapped.get_json()


def test_floods_from_one_address_get_a_clear_429(make_service: Any) -> None:
    svc = make_service(sign_limits="3 per hour;1000 per day")
    petition_id = svc.open_petition()
    statuses = [svc.sign(petition_id, f"s{i}@example.org").status_code for i in range(3)]
    assert statuses == [202, 202, 202]
    limited = svc.sign(petition_id, "s4@example.org")
    assert limited.status_code == 429
    body = limited.get_json()
    assert body["code"] == 429 and body["status"] == "Too Many Requests"
    assert "Too many signatures" in body["message"]
    assert int(limited.headers["Retry-After"]) > 0
    other_ip = svc.client.post(
        f"/api/v1/petitions/{petition_id}/signatures",
        json={"person": {"email": "s5@example.org"}},
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert other_ip.status_code == 202
    assert svc.counts(petition_id)["total"] == 4

    burst = make_service(sign_limits="1000 per hour;2 per day")
    statuses = [burst.sign(petition_id, f"b{i}@example.org").status_code for i in range(3)]
    assert statuses == [202, 202, 429]


def test_double_opt_in_counts_only_confirmed_signatures(svc: Petitions) -> None:
    petition_id = svc.open_petition(double_opt_in=True)
    response = svc.sign(petition_id, "Lin@Example.org", referrer_data={"source": "kp"})
    assert response.get_json()["status"] == "confirmation_required"
    counts = svc.counts(petition_id)
    assert (counts["total"], counts["pending"]) == (0, 1)
    [created] = svc.outbox_events("signature.created")
    url = created["confirm_url"]
    assert url.startswith("https://act.example.org/api/v1/confirmations/")
    # Signing again before confirming: same answer, a fresh copy of the same link.
    repeat = svc.sign(petition_id, "lin@example.org")
    assert repeat.get_data() == response.get_data()
    assert svc.outbox_events("signature.created")[1]["confirm_url"] == url

    path = url.removeprefix("https://act.example.org")
    forged = svc.client.post(path[:-4] + "abcd")
    assert forged.status_code == 404 and forged.get_json()["code"] == 404
    # Opening the link (as a mail scanner does) shows a page with a button, and counts nothing.
    for _ in range(2):
        page = svc.client.get(path)
        assert page.status_code == 200 and page.mimetype == "text/html"
        assert '<form method="post">' in page.get_data(as_text=True)
    assert (
        svc.counts(petition_id)["pending"] == 1 and svc.outbox_events("signature.confirmed") == []
    )
    confirmed = svc.client.post(path)
    assert confirmed.status_code == 200
    assert confirmed.get_json() == {"petition_id": petition_id, "status": "confirmed"}
    # The button: a browser's form post gets a page saying so; a second click changes nothing.
    clicked = svc.client.post(path, headers={"Accept": "text/html,*/*;q=0.8"})
    assert clicked.status_code == 200 and clicked.mimetype == "text/html"
    assert "confirmed" in clicked.get_data(as_text=True)
    assert "<form" not in svc.client.get(path).get_data(as_text=True)
    counts = svc.counts(petition_id)
    assert (counts["total"], counts["pending"]) == (1, 0)
    assert counts["by_partner"] == {svc.p2: 1}
    assert len(svc.outbox_events("signature.confirmed")) == 1
    after = svc.sign(petition_id, "lin@example.org")
    assert after.get_data() == response.get_data()
    assert svc.outbox_events("signature.created")[2]["confirm_url"] is None


def test_a_confirmation_link_dies_a_while_after_it_was_used(svc: Petitions) -> None:
    """Found later in a mail archive or a synced browser history, a used link must not stay a
    live proof of what its owner signed; a second click soon after still says confirmed."""
    petition_id = svc.open_petition(double_opt_in=True)
    svc.sign(petition_id, "archived@example.org")
    url = svc.outbox_events("signature.created")[0]["confirm_url"]
    path = url.removeprefix("https://act.example.org")
    assert svc.client.post(path).status_code == 200
    assert svc.client.post(path).status_code == 200
    assert "confirmed" in svc.client.get(path).get_data(as_text=True)
    ttl = timedelta(hours=svc.deps.config.confirm_ttl_hours, minutes=1)
    with svc.deps.engine.begin() as conn:
        conn.execute(
            store.signatures.update().values(confirmed_at=store.signatures.c.confirmed_at - ttl)
        )
    page = svc.client.get(path)
    assert page.status_code == 404 and "Protect our elders" not in page.get_data(as_text=True)
    assert svc.client.post(path).status_code == 404
    assert svc.counts(petition_id)["total"] == 1


def test_the_confirmation_page_shows_what_else_the_click_agrees_to(svc: Petitions) -> None:
    """Whoever typed the address chose the texts and the partners; its owner, who clicks, sees
    them first (anyone can type someone else's address)."""
    petition_id = svc.open_petition(double_opt_in=True)
    svc.sign(
        petition_id, "owner@example.org",
        person={"email": "owner@example.org", "given_name": "Owner", "phone": "+1 415 555 2671"},
        consents={"email": True, "sms": True, "partners": {svc.p1: True, svc.p2: False}},
    )  # fmt: skip
    svc.sign(petition_id, "quiet@example.org")
    shared, quiet = (
        svc.client.get(e["confirm_url"].removeprefix("https://act.example.org")).get_data(
            as_text=True
        )
        for e in svc.outbox_events("signature.created")
    )
    assert "Confirming also agrees to:" in shared
    assert "email updates from Lead Org" in shared
    assert "text messages to the number ending in 71" in shared
    assert "sharing your name and contact details with Rainbow Alliance" in shared
    assert "Kapwa Collective" not in shared  # the box left unticked
    assert "Confirming also agrees to:" not in quiet  # nothing beyond being counted
    # A partner whose name has not reached this service yet is still listed, by its id.
    with svc.deps.engine.begin() as conn:
        conn.execute(
            store.organizations.delete().where(store.organizations.c.organization_id == svc.p1)
        )
    first_url = svc.outbox_events("signature.created")[0]["confirm_url"]
    unnamed = svc.client.get(first_url.removeprefix("https://act.example.org"))
    assert f"sharing your name and contact details with {svc.p1}" in unnamed.get_data(as_text=True)


def test_signing_again_before_confirming_gives_the_link_a_new_lifetime(svc: Petitions) -> None:
    """Someone who signs again at hour 71, or after the link lapsed but before housekeeping
    deleted it, is sent the link again: it must not die within the hour, or already be dead."""
    petition_id = svc.open_petition(double_opt_in=True)
    svc.sign(petition_id, "again@example.org")
    lapsed = store.signatures.c.created_at - timedelta(minutes=1)
    with svc.deps.engine.begin() as conn:
        conn.execute(store.signatures.update().values(expires_at=lapsed))
    svc.sign(petition_id, "again@example.org")
    [row] = svc.rows(store.signatures)
    hours_left = (row.expires_at - row.created_at).total_seconds() / 3600
    assert hours_left > svc.deps.config.confirm_ttl_hours - 1
    assert signing.expire_unconfirmed(svc.deps) == 0
    url = svc.outbox_events("signature.created")[-1]["confirm_url"]
    assert svc.client.post(url.removeprefix("https://act.example.org")).status_code == 200
    assert svc.counts(petition_id)["total"] == 1


def test_an_unconfirmed_signature_is_renewed_for_two_weeks_at_most(svc: Petitions) -> None:
    """The address typed again every few days keeps the link alive, but not past two weeks
    from the first signature: notifications forgets an unconfirmed one after 30 days (a
    link confirmed then counted a signer no one thanked, whose consents never applied), and
    what someone typed about another person is not kept for ever."""
    petition_id = svc.open_petition(double_opt_in=True)
    svc.sign(petition_id, "often@example.org")
    weeks_ago = store.signatures.c.created_at - timedelta(days=13, hours=23)
    with svc.deps.engine.begin() as conn:
        conn.execute(store.signatures.update().values(created_at=weeks_ago))
    [before] = svc.rows(store.signatures)
    svc.sign(petition_id, "often@example.org")
    [after] = svc.rows(store.signatures)
    assert after.expires_at == before.expires_at  # not renewed: it ends when it was to end
    url = svc.outbox_events("signature.created")[-1]["confirm_url"]
    assert svc.client.post(url.removeprefix("https://act.example.org")).status_code == 200
    assert svc.counts(petition_id)["total"] == 1  # the link sent again works until then


def test_a_link_renewed_while_housekeeping_expires_it_stays_alive(
    svc: Petitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Housekeeping reads the lapsed row, the signer signs again and is sent the link, and
    only then does housekeeping delete: the link it just sent must still work."""
    petition_id = svc.open_petition(double_opt_in=True)
    svc.sign(petition_id, "racing@example.org")
    lapsed = store.signatures.c.created_at - timedelta(minutes=1)
    with svc.deps.engine.begin() as conn:
        conn.execute(store.signatures.update().values(expires_at=lapsed))
    read_expired = store.expired_pending

    def read_then_signed_again(*args: Any) -> list[Any]:
        rows = read_expired(*args)
        assert svc.sign(petition_id, "racing@example.org").status_code == 202
        return rows

    monkeypatch.setattr(store, "expired_pending", read_then_signed_again)
    signing.expire_unconfirmed(svc.deps)
    assert [r.email for r in svc.rows(store.signatures)] == ["racing@example.org"]
    assert svc.counts(petition_id)["pending"] == 1
    url = svc.outbox_events("signature.created")[-1]["confirm_url"]
    assert svc.client.post(url.removeprefix("https://act.example.org")).status_code == 200


def test_unconfirmed_signatures_expire_with_their_personal_data(svc: Petitions) -> None:
    petition_id = svc.open_petition(double_opt_in=True)
    svc.sign(petition_id, "late@example.org")
    svc.sign(petition_id, "prompt@example.org")
    with svc.deps.engine.begin() as conn:
        conn.execute(
            store.signatures.update()
            .where(store.signatures.c.email == "late@example.org")
            .values(expires_at=store.signatures.c.created_at)
        )
    assert signing.expire_unconfirmed(svc.deps) == 1
    assert [r.email for r in svc.rows(store.signatures)] == ["prompt@example.org"]
    assert svc.counts(petition_id)["pending"] == 1
    late_url = next(
        e["confirm_url"]
        for e in svc.outbox_events("signature.created")
        if e["person"]["email"] == "late@example.org"
    )
    gone = svc.client.get(late_url.removeprefix("https://act.example.org"))
    assert gone.status_code == 404
    assert HASH_KEY not in gone.get_data(as_text=True)


def test_a_source_code_named_none_never_takes_the_unattributed_signatures_place(
    svc: Petitions,
) -> None:
    petition_id = svc.open_petition()
    for i in range(3):
        assert svc.sign(petition_id, f"direct{i}@example.org").status_code == 202
    odd = svc.sign(petition_id, "odd@example.org", referrer_data={"source": "NONE"})
    assert odd.status_code == 202
    counts = svc.counts(petition_id)
    assert counts["by_source"] == {"(none)": 3, "none": 1}
    assert sum(counts["by_source"].values()) == counts["total"] == 4


def test_made_up_source_codes_cannot_grow_the_counts_past_one_screen(svc: Petitions) -> None:
    """Anyone can follow a link with ?source=anything: the counts keep the 99 largest sources
    and add up the rest, so they still sum to the total."""
    petition_id = svc.open_petition()
    for i in range(3):
        assert (
            svc.sign(petition_id, f"rb{i}@example.org", referrer_data={"source": "rb"}).status_code
            == 202
        )
    for i in range(120):
        signed = svc.sign(petition_id, f"s{i}@example.org", referrer_data={"source": f"x{i:03d}"})
        assert signed.status_code == 202
    counts = svc.counts(petition_id)
    assert len(counts["by_source"]) == 100
    assert counts["by_source"]["rb"] == 3
    assert counts["by_source"]["(other)"] == 120 - 98
    assert sum(counts["by_source"].values()) == counts["total"] == 123


def test_counts_by_day_show_the_momentum_in_the_organizers_time_zone(svc: Petitions) -> None:
    """'+3 today, 2 of them through Rainbow': each of the last days in the organizer's time
    zone, by recruiting partner, a quiet day listed with 0; erased signatures still count."""
    from datetime import UTC, datetime, timedelta

    petition_id = svc.open_petition()
    for i, source in enumerate(("rb", "rb", None, "kp")):
        extra = {"referrer_data": {"source": source}} if source else {}
        assert svc.sign(petition_id, f"d{i}@example.org", **extra).status_code == 202
    # One of them signed three days ago, late in the evening in Los Angeles (UTC's next day).
    la_evening = datetime.now(UTC).replace(hour=5, minute=30, second=0) - timedelta(days=3)
    with svc.deps.engine.begin() as conn:
        first = min(r.id for r in conn.execute(store.signatures.select()))
        conn.execute(
            store.signatures.update()
            .where(store.signatures.c.id == first)
            .values(confirmed_at=la_evening, created_at=la_evening)
        )
    path = f"/api/v1/petitions/{petition_id}/counts/daily"
    got = svc.client.get(f"{path}?days=5&time_zone=America/Los_Angeles", headers=svc.auth("p1"))
    assert got.status_code == 200, got.get_json()
    days = got.get_json()["days"]
    assert len(days) == 5 and sum(d["total"] for d in days) == svc.counts(petition_id)["total"]
    la_day = (la_evening - timedelta(hours=8)).date().isoformat()
    [earlier] = [d for d in days if d["date"] == la_day]
    assert earlier == {"date": la_day, "total": 1, "by_partner": {svc.p1: 1}}
    assert days[-1]["total"] == 3 and days[-1]["by_partner"] == {svc.p1: 1, "direct": 1, svc.p2: 1}
    assert [d["total"] for d in days if d["date"] not in (la_day, days[-1]["date"])] == [0, 0, 0]
    bad = svc.client.get(f"{path}?time_zone=Mars/Olympus", headers=svc.auth("lead"))
    assert bad.status_code == 422 and "time_zone" in bad.get_json()["errors"]
    assert svc.client.get(path, headers=svc.auth("outsider")).status_code == 403
