"""Input that once reached a 500, and expiry or erasure racing a confirmation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from services.petitions import signing, store
from shared.events import Event
from shared.events.catalog import CATALOG, type_name
from shared.privacy import email_hash, supporter_id
from tests.integration.petitions.conftest import HASH_KEY, Petitions, at
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

ADDRESSES = ["नमस्ते@example.com", "priya.शर्मा@example.com", "தமிழ்@example.com"]


def test_addresses_with_indic_vowel_signs_sign_and_are_announced(svc: Petitions) -> None:
    petition_id = svc.open_petition()
    for address in ADDRESSES:
        response = svc.sign(petition_id, address)
        assert response.status_code == 202, response.get_json()
    events = svc.outbox_events("signature.created")
    assert sorted(e["person"]["email"] for e in events) == sorted(ADDRESSES)
    for data in events:
        CATALOG.check_outgoing(Event(type_name("signature.created"), "k", data, "/petitions"))
    assert svc.counts(petition_id)["total"] == len(ADDRESSES)


def test_a_nul_in_a_path_id_is_a_404_never_a_500(svc: Petitions) -> None:
    petition_id = svc.open_petition()
    lead = svc.auth("lead")
    for method, path, headers in (
        ("GET", "/api/v1/petitions/a%00b", {}),
        ("GET", "/api/v1/petitions/a%00b/counts", lead),
        ("POST", "/api/v1/petitions/%00/publish", lead),
        ("GET", "/api/v1/confirmations/a%00.b", {}),
        ("GET", f"/api/v1/petitions/{petition_id}/exports/partners/%00.csv", lead),
    ):
        response = svc.client.open(path, method=method, headers=headers)
        assert response.status_code == 404, (path, response.get_json())
        assert response.get_json()["code"] == 404
    signed = svc.client.post(
        "/api/v1/petitions/%00/signatures", json={"person": {"email": "a@example.org"}}
    )
    assert signed.status_code == 404, signed.get_json()


@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"person": {"email": "a@example.org", "given_name": "{}"}}, "person.given_name"),
        ({"person": {"email": "a@example.org", "postal_code": "{}"}}, "person.postal_code"),
        ({"person": {"email": "a@example.org", "pronouns": "{}"}}, "person.pronouns"),
        ({"person": {"email": "a@example.org"}, "comment": "{}"}, "comment"),
    ],
)
def test_unstorable_characters_in_a_signature_are_a_422(
    svc: Petitions, bad: str, extra: dict[str, Any], field: str
) -> None:
    petition_id = svc.open_petition()
    body = {
        key: ({k: bad if v == "{}" else v for k, v in value.items()} if key == "person" else bad)
        for key, value in extra.items()
    }
    response = svc.client.post(f"/api/v1/petitions/{petition_id}/signatures", json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert svc.rows(store.signatures) == []


@pytest.mark.parametrize("field", ["given_name", "family_name", "pronouns"])
def test_a_name_of_several_lines_is_a_422(svc: Petitions, field: str) -> None:
    """The emails to the address typed greet the person by these: a name that runs on into a
    second paragraph ("Your signature was flagged. Call ...") would be the organization's
    sender speaking for whoever typed it."""
    petition_id = svc.open_petition()
    person = {"email": "a@example.org", field: "Sam\n\nYour signature was flagged. Call us"}
    response = svc.client.post(
        f"/api/v1/petitions/{petition_id}/signatures", json={"person": person}
    )
    assert response.status_code == 422, response.get_json()
    assert f"person.{field}" in response.get_json()["errors"]
    # A paragraph separator breaks a line where an email shows it just as well.
    person[field] = "Sam\u2029Your signature was flagged"
    response = svc.client.post(
        f"/api/v1/petitions/{petition_id}/signatures", json={"person": person}
    )
    assert response.status_code == 422 and f"person.{field}" in response.get_json()["errors"]
    assert svc.rows(store.signatures) == []
    # A line break a paste left around it is only taken off; joiners in a name stay.
    person[field] = "\u0915\u094d\u200d\u0937\n"  # Devanagari with a zero-width joiner
    response = svc.client.post(
        f"/api/v1/petitions/{petition_id}/signatures", json={"person": person}
    )
    assert response.status_code == 202, response.get_json()
    [row] = svc.rows(store.signatures)
    assert getattr(row, field) == "\u0915\u094d\u200d\u0937"


@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800"], ids=["nul", "lone-surrogate"])
def test_unstorable_characters_in_petition_texts_are_a_422(svc: Petitions, bad: str) -> None:
    body = {
        "campaign_id": svc.campaign_id,
        "default_locale": "en",
        "texts": {"en": {"title": bad, "text": "X"}},
    }
    created = svc.client.post("/api/v1/petitions", json=body, headers=svc.auth("lead"))
    assert created.status_code == 422 and "texts.en.value.title" in created.get_json()["errors"]
    petition_id = svc.create_petition()
    patched = svc.client.patch(
        f"/api/v1/petitions/{petition_id}",
        json={"targets": [{"name": bad}]},
        headers=svc.auth("lead"),
    )
    assert patched.status_code == 422 and "targets.0.name" in patched.get_json()["errors"]


@pytest.mark.parametrize("spoken", [5, True, {"a": 1}, "fr", [1]])
def test_languages_spoken_that_is_not_a_list_of_tags_is_a_422(svc: Petitions, spoken: Any) -> None:
    petition_id = svc.open_petition()
    response = svc.sign(
        petition_id, "a@example.org", person={"email": "a@example.org", "languages_spoken": spoken}
    )
    assert response.status_code == 422, response.get_json()
    assert "person.languages_spoken" in response.get_json()["errors"]
    ok = svc.sign(
        petition_id, "a@example.org", person={"email": "a@example.org", "languages_spoken": ["es"]}
    )
    assert ok.status_code == 202
    assert [r.language for r in svc.rows(store.signatures)] == ["es"]


@pytest.mark.parametrize("page", [10**6 + 1, 2**62, 2**63])
def test_a_page_past_the_ceiling_is_a_422(svc: Petitions, page: int) -> None:
    response = svc.client.get(f"/api/v1/petitions?page={page}", headers=svc.auth("lead"))
    assert response.status_code == 422, response.get_json()
    assert "page" in response.get_json()["errors"]
    last = svc.client.get(f"/api/v1/petitions?page={10**6}", headers=svc.auth("lead"))
    assert last.status_code == 200 and last.get_json()["_embedded"] == {"petitions": []}


@pytest.mark.parametrize("token", ["%C3%A9.x", "abc.%C3%A9", "%F0%9F%98%80"])
def test_a_non_ascii_confirmation_token_is_unknown(svc: Petitions, token: str) -> None:
    response = svc.client.post(f"/api/v1/confirmations/{token}")
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["code"] == 404
    page = svc.client.get(f"/api/v1/confirmations/{token}")
    assert page.status_code == 404 and "expired" in page.get_data(as_text=True)


@pytest.mark.parametrize("key", [None, "retry-1"], ids=["no key", "Idempotency-Key"])
def test_a_repeat_whose_first_signature_is_deleted_meanwhile_signs_anew(
    svc: Petitions, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    """Between the insert that found the person's signature and the read of it, expiry (or
    erasure) deleted it: the signer gets a signature, not a 500 (with a key or without)."""
    petition_id = svc.open_petition(double_opt_in=True)
    assert svc.sign(petition_id, "gone@example.org").status_code == 202
    real = store.existing_signatures

    def expired_meanwhile(conn: Any, keys: Any) -> Any:
        with svc.deps.engine.begin() as other:
            other.execute(
                store.signatures.delete().where(store.signatures.c.email == "gone@example.org")
            )
        monkeypatch.setattr(store, "existing_signatures", real)
        return real(conn, keys)

    monkeypatch.setattr(store, "existing_signatures", expired_meanwhile)
    headers = {"Idempotency-Key": key} if key else {}
    again = svc.sign(petition_id, "gone@example.org", headers=headers)
    assert again.status_code == 202, again.get_json()
    assert [r.email for r in svc.rows(store.signatures)] == ["gone@example.org"]
    assert [e["duplicate"] for e in svc.outbox_events("signature.created")] == [False, False]


# -- a confirmation commits while expiry or erasure waits to delete the pending row -------------


def _waiting_on_a_lock(svc: Petitions) -> bool:
    with svc.deps.engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


def _race_a_confirmation(svc: Petitions, petition_id: str, other_side: Callable[[], Any]) -> None:
    """Confirm the petition's one signature in a transaction that commits only once
    other_side (run in a thread, after reading the row as pending) waits on its lock."""
    [row] = svc.rows(store.signatures, petition_id=petition_id)
    with svc.deps.engine.connect() as conn, conn.begin():
        assert store.confirm_signature(conn, row.id, datetime.now(UTC))
        store.bump(conn, petition_id, [("pending", "", -1), ("total", "", 1)], 1)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                other_side()
            except BaseException as exc:  # reported to the test below
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        eventually(lambda: _waiting_on_a_lock(svc), timeout=30, message="blocked on the row")
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []


def test_expiry_racing_a_confirmation_keeps_the_confirmed_signature(svc: Petitions) -> None:
    petition_id = svc.open_petition(double_opt_in=True)
    svc.sign(petition_id, "racer@example.org")
    with svc.deps.engine.begin() as conn:
        conn.execute(
            update(store.signatures)
            .where(store.signatures.c.petition_id == petition_id)
            .values(expires_at=store.signatures.c.created_at)
        )

    _race_a_confirmation(svc, petition_id, lambda: signing.expire_unconfirmed(svc.deps))

    [row] = svc.rows(store.signatures, petition_id=petition_id)
    assert row.status == "confirmed" and row.email == "racer@example.org"
    counts = svc.counts(petition_id)
    assert (counts["total"], counts["pending"]) == (1, 0)


def test_expiry_waiting_on_a_confirmation_never_deadlocks_on_the_counts(
    svc: Petitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expiry counted each row as it deleted it: it held the pending counter while it waited on
    a signature being confirmed, whose transaction then waited on that counter. PostgreSQL
    broke the deadlock by aborting one of them: a confirmation link that failed, or a signer's
    500 when a repeat renewed the row."""
    monkeypatch.setattr(store.random, "randrange", lambda n: 0)  # one counter row to meet on
    petition_id = svc.open_petition(double_opt_in=True)
    svc.sign(petition_id, "early@example.org")
    svc.sign(petition_id, "racer@example.org")
    lapsed = {"early@example.org": timedelta(hours=1), "racer@example.org": timedelta(0)}
    with svc.deps.engine.begin() as conn:
        for email, before in lapsed.items():
            conn.execute(
                update(store.signatures)
                .where(store.signatures.c.email == email)
                .values(expires_at=store.signatures.c.created_at - before)
            )
    [racer] = [r for r in svc.rows(store.signatures) if r.email == "racer@example.org"]
    errors: list[BaseException] = []

    def expire() -> None:
        try:
            signing.expire_unconfirmed(svc.deps)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=expire)
    with svc.deps.engine.connect() as conn, conn.begin():
        assert store.confirm_signature(conn, racer.id, datetime.now(UTC))
        thread.start()  # deletes the early one, then waits on the racer's row
        eventually(lambda: _waiting_on_a_lock(svc), timeout=30, message="blocked on the row")
        store.bump(conn, petition_id, [("pending", "", -1), ("total", "", 1)], 1)
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []
    assert [(r.email, r.status) for r in svc.rows(store.signatures)] == [
        ("racer@example.org", "confirmed")
    ]
    counts = svc.counts(petition_id)
    assert (counts["total"], counts["pending"]) == (1, 0)


def test_a_signature_committing_as_its_petition_closes_counts_in_the_closing_total(
    svc: Petitions,
) -> None:
    """A batch of signatures read the petition open, then the organizer closed it: the close
    announced its total, and the batch committed after, signatures counted past the close.
    Closing now waits for the signatures already being written, and announces them."""
    petition_id = svc.open_petition()
    assert svc.sign(petition_id, "first@example.org").status_code == 202
    petition = signing.open_petition(svc.deps, petition_id)
    item = signing.prepare(svc.deps, petition, {"person": {"email": "late@example.org"}}, [])
    closing: list[Any] = []
    thread = threading.Thread(
        target=lambda: closing.append(
            svc.client.post(f"/api/v1/petitions/{petition_id}/close", headers=svc.auth("lead"))
        )
    )
    with svc.deps.engine.connect() as conn, conn.begin():
        assert signing.record(svc.deps, conn, [item]) == [None]
        thread.start()
        eventually(
            lambda: _waiting_on_a_lock(svc) or not thread.is_alive(),
            timeout=30,
            message="the close waiting or done",
        )
    thread.join(timeout=30)
    assert closing and closing[0].status_code == 200
    [closed] = svc.outbox_events("petition.closed")
    assert closed["total"] == svc.counts(petition_id)["total"] == 2


def test_a_batch_whose_commit_answer_was_lost_is_not_announced_twice(svc: Petitions) -> None:
    """The batch committed, but its answer was lost (a dropped connection, a failover), and
    group commit recorded each signature again on its own: each found its own row and was
    announced again as a repeat (an "already signed" email besides the thank-you)."""
    petition_id = svc.open_petition()
    petition = signing.open_petition(svc.deps, petition_id)
    items = [
        signing.prepare(svc.deps, petition, {"person": {"email": f"lost{i}@example.org"}}, [])
        for i in range(2)
    ]
    with svc.deps.engine.begin() as conn:
        assert signing.record(svc.deps, conn, items) == [None, None]
    for item in items:  # commit_batch's retry, one by one
        with svc.deps.engine.begin() as conn:
            assert signing.record(svc.deps, conn, [item]) == [None]
    events = svc.outbox_events("signature.created")
    assert sorted(e["person"]["email"] for e in events) == [
        "lost0@example.org",
        "lost1@example.org",
    ]
    assert not any(e["duplicate"] for e in events)
    assert svc.counts(petition_id)["total"] == 2


def test_a_petition_published_while_its_campaign_closes_is_not_left_open(svc: Petitions) -> None:
    """The campaign's closing (its consumer) marks the campaign closed, then closes the open
    petitions it finds. A publish that read the campaign as active before that committed, and
    opened a petition the closing did not find, left it open in a closed campaign."""
    from services.petitions.handlers import handlers

    petition_id = svc.create_petition()
    data = {"campaign_id": svc.campaign_id, "lead_organization_id": svc.lead,
            "status": "closed", "at": at()}  # fmt: skip
    closed = Event(type=type_name("campaign.closed"), key=svc.campaign_id, source="/t", data=data)
    answers: list[Any] = []
    thread = threading.Thread(
        target=lambda: answers.append(
            svc.client.post(f"/api/v1/petitions/{petition_id}/publish", headers=svc.auth("lead"))
        )
    )
    with svc.deps.engine.connect() as conn, conn.begin():
        for handler in handlers(svc.deps)[closed.type]:
            handler(closed, conn)  # the campaign is closed, its open petitions (none) closed
        thread.start()
        eventually(
            lambda: _waiting_on_a_lock(svc) or not thread.is_alive(),
            timeout=30, message="the publish waits on the campaign, or is done",
        )  # fmt: skip
    thread.join(timeout=30)
    [answer] = answers
    assert answer.status_code == 409, answer.get_json()
    [row] = svc.rows(store.petitions, petition_id=petition_id)
    assert row.status == "draft"


def test_erasure_racing_a_confirmation_scrubs_the_confirmed_signature(svc: Petitions) -> None:
    petition_id = svc.open_petition(double_opt_in=True)
    svc.sign(petition_id, "racer@example.org", consents={"partners": {"rainbow": True}})
    erased = {
        "supporter_id": supporter_id(HASH_KEY, "racer@example.org"),
        "email_hash": email_hash(HASH_KEY, "racer@example.org"),
        "at": at(),
    }

    _race_a_confirmation(svc, petition_id, lambda: svc.deliver("person.erased", erased))

    [row] = svc.rows(store.signatures, petition_id=petition_id)
    assert row.status == "erased"
    assert all(getattr(row, name) is None for name in store.PERSONAL_COLUMNS)
    assert row.email_hash is None and row.supporter_id is None
    assert svc.rows(store.partner_consents) == []
    counts = svc.counts(petition_id)
    assert (counts["total"], counts["pending"]) == (1, 0)
