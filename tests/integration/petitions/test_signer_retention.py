"""A closed petition's signers are erased when its retention runs out; its counts stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.petitions import domain, exports, signing, store, usecases
from tests.integration.petitions.conftest import Petitions

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def service(request: pytest.FixtureRequest) -> Petitions:
    return request.getfixturevalue("svc" if request.param == "postgresql" else "lite")  # type: ignore[no-any-return]


def view(svc: Petitions, petition_id: str) -> dict[str, Any]:
    """The organizers' view of a petition, from their list."""
    response = svc.client.get(
        "/api/v1/petitions", query_string={"per_page": 100}, headers=svc.auth("lead")
    )
    assert response.status_code == 200, response.get_json()
    found = [
        p for p in response.get_json()["_embedded"]["petitions"] if p["petition_id"] == petition_id
    ]
    assert len(found) == 1
    return dict(found[0])


def patch(svc: Petitions, petition_id: str, **changes: Any) -> Any:
    return svc.client.patch(
        f"/api/v1/petitions/{petition_id}", json=changes, headers=svc.auth("lead")
    )


def close(svc: Petitions, petition_id: str) -> None:
    closed = svc.client.post(f"/api/v1/petitions/{petition_id}/close", headers=svc.auth("lead"))
    assert closed.status_code == 200, closed.get_json()


def export_statuses(svc: Petitions, petition_id: str) -> list[int]:
    urls = [
        (f"/api/v1/petitions/{petition_id}/exports/signers.csv", "lead"),
        (f"/api/v1/petitions/{petition_id}/exports/signers.csv?purpose=delivery", "lead"),
        (f"/api/v1/petitions/{petition_id}/exports/partners/{svc.p1}.csv", "p1"),
    ]
    return [svc.client.get(url, headers=svc.auth(who)).status_code for url, who in urls]


def relayed(svc: Petitions) -> None:
    """Empty the outbox as the relay does once Kafka has the events (no broker here)."""
    with svc.deps.engine.begin() as conn:
        conn.execute(store.outbox.delete())


def test_signers_are_erased_once_the_retention_runs_out_and_the_counts_stay(
    service: Petitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service
    petition_id = svc.open_petition(signer_retention_days=30)
    signers = [
        ("ana@example.org", {"partners": {"rainbow": True}, "email": True}, "rb"),
        ("ben@example.org", {"sms": True}, None),
        ("cai@example.org", {}, "kp"),
    ]
    for number, (email, consents, source) in enumerate(signers):
        signed = svc.sign(
            petition_id,
            email,
            person={"given_name": "Mari", "email": email, "phone": "+14155552671"},
            consents=consents,
            comment="My grandmother lives there",
            referrer_data={"source": source} if source else {},
            headers={"Idempotency-Key": f"form-{number}"},
        )
        assert signed.status_code == 202, signed.get_json()
    waiting = svc.open_petition(signer_retention_days=30, double_opt_in=True)
    assert svc.sign(waiting, "dee@example.org").status_code == 202
    counts_before = svc.counts(petition_id)
    assert counts_before["total"] == 3 and svc.counts(waiting)["pending"] == 1

    close(svc, petition_id)
    close(svc, waiting)
    shown = view(svc, petition_id)
    closed_at = datetime.fromisoformat(shown["closed_at"])
    assert shown["signer_retention_days"] == 30 and shown["signer_data_erased_at"] is None
    assert datetime.fromisoformat(shown["signer_data_erase_at"]) == closed_at + timedelta(days=30)

    # Not due: nothing goes, and the lead and the partner still take their lists.
    assert signing.erase_signer_data(svc.deps) == 0
    assert export_statuses(svc, petition_id) == [200, 200, 200]

    # Closed, only the retention may change, and only the lead decides how long its list stays.
    refused = patch(svc, petition_id, goal=5000, signer_retention_days=0)
    assert refused.status_code == 409 and set(refused.get_json()["errors"]) == {"goal"}
    by_partner = svc.client.patch(
        f"/api/v1/petitions/{petition_id}", json={"signer_retention_days": 0},
        headers=svc.auth("p1_organizer"),
    )  # fmt: skip
    assert by_partner.status_code == 403
    # The lead has delivered and wants the list gone: a change after closing takes effect an
    # hour later (a slip, 3 for 30, can still be undone, and the exports taken meanwhile).
    asked = datetime.now(UTC)
    shortened = patch(svc, petition_id, signer_retention_days=0)
    assert shortened.status_code == 200, shortened.get_json()
    due = datetime.fromisoformat(shortened.get_json()["signer_data_erase_at"])
    assert asked + domain.RETENTION_NOTICE <= due <= datetime.now(UTC) + domain.RETENTION_NOTICE
    assert export_statuses(svc, petition_id) == [200, 200, 200]
    monkeypatch.setattr(domain, "RETENTION_NOTICE", timedelta(0))
    assert patch(svc, petition_id, signer_retention_days=0).status_code == 200
    due = datetime.fromisoformat(view(svc, petition_id)["signer_data_erase_at"])
    assert closed_at < due <= datetime.now(UTC)  # from the change, not from the closing
    # Due: the lists are gone at once, before the worker has got to them.
    assert export_statuses(svc, petition_id) == [410, 410, 410]
    late = patch(svc, petition_id, signer_retention_days=365)
    assert late.status_code == 409 and "signer_retention_days" in late.get_json()["errors"]
    # The rows go an hour later: an export started before the due time is not cut short.
    assert signing.erase_signer_data(svc.deps) == 0
    monkeypatch.setattr(domain, "ERASE_AFTER_DUE", timedelta(0))
    # Nor while signers' events wait in the outbox: what they typed would leave after it.
    assert signing.erase_signer_data(svc.deps) == 0
    relayed(svc)

    assert signing.erase_signer_data(svc.deps, batch=2) == 3
    rows = svc.rows(store.signatures, petition_id=petition_id)
    assert len(rows) == 3 and {row.status for row in rows} == {"erased"}
    for row in rows:
        kept = {name: getattr(row, name) for name in store.PERSONAL_COLUMNS}
        assert set(kept.values()) == {None}, kept
        assert row.email_hash is None and row.supporter_id is None
        assert not row.consent_email and not row.consent_sms
    assert {row.source for row in rows} == {"rb", "kp", None}  # attribution is no one's data
    assert svc.rows(store.partner_consents, petition_id=petition_id) == []
    with svc.deps.engine.connect() as conn:
        keys = conn.execute(store.idempotency_keys.select()).all()
    assert not [key for key in keys if key.scope.startswith(f"sign:{petition_id}:")]
    assert svc.counts(petition_id) == counts_before
    erased = view(svc, petition_id)
    assert erased["signer_data_erased_at"] is not None and erased["total"] == 3

    # The other petition is still within its retention: its unconfirmed signer waits.
    assert len(svc.rows(store.signatures, petition_id=waiting)) == 1
    assert export_statuses(svc, waiting)[0] == 200
    assert patch(svc, waiting, signer_retention_days=0).status_code == 200
    assert signing.erase_signer_data(svc.deps) == 1
    assert svc.rows(store.signatures, petition_id=waiting) == []
    assert svc.counts(waiting)["pending"] == 0
    assert signing.erase_signer_data(svc.deps) == 0  # each petition once


def test_the_retention_is_checked_and_kept_from_the_public(svc: Petitions) -> None:
    base = svc.minimal_petition()
    for bad in (-1, 3651, "30", 2.5):
        response = svc.client.post(
            "/api/v1/petitions",
            json={**base, "signer_retention_days": bad},
            headers=svc.auth("lead"),
        )
        assert response.status_code == 422, bad
        assert "signer_retention_days" in response.get_json()["errors"]
    petition_id = svc.open_petition(signer_retention_days=7)
    assert view(svc, petition_id)["signer_data_erase_at"] is None  # open: not due yet
    public = svc.client.get(f"/api/v1/petitions/{petition_id}").get_json()
    assert not {"signer_retention_days", "signer_data_erase_at"} & set(public)
    kept = patch(svc, petition_id, signer_retention_days=None)
    assert kept.status_code == 200 and kept.get_json()["signer_retention_days"] is None
    # Announced to nobody: partners and emails learn nothing from it.
    assert svc.outbox_events("petition.updated") == []


def test_a_create_retried_after_a_release_adds_a_default_is_still_a_replay(
    svc: Petitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key's fingerprint is of the request as sent: a later release whose schema loads one
    more defaulted field must still answer a client's retry with the first response."""
    body = svc.minimal_petition()
    headers = {**svc.auth("lead"), "Idempotency-Key": "create-across-deploy"}
    first = svc.client.post("/api/v1/petitions", json=body, headers=headers)
    assert first.status_code == 201
    original = usecases.create_petition

    def next_release(deps: Any, principal: Any, data: Any, key: Any) -> Any:
        return original(deps, principal, {**data, "added_in_a_later_release": False}, key)

    monkeypatch.setattr(usecases, "create_petition", next_release)
    retried = svc.client.post("/api/v1/petitions", json=body, headers=headers)
    assert retried.status_code == 201, retried.get_json()
    assert retried.get_json()["petition_id"] == first.get_json()["petition_id"]


def test_a_key_stored_by_the_previous_release_still_replays(svc: Petitions) -> None:
    """Keys stored before this release carry a fingerprint of the loaded arguments (without the
    fields this release added): a retry across the deploy is still a replay, not a 422."""
    import json

    from services.petitions import schemas
    from shared.privacy import keyed_hash

    body = svc.minimal_petition()
    headers = {**svc.auth("lead"), "Idempotency-Key": "create-before-the-deploy"}
    first = svc.client.post("/api/v1/petitions", json=body, headers=headers)
    assert first.status_code == 201
    loaded = schemas.PetitionCreateSchema().load(body)
    del loaded["signer_retention_days"]
    text = json.dumps(loaded, sort_keys=True, default=str, separators=(",", ":"))
    with svc.deps.engine.begin() as conn:
        conn.execute(
            store.idempotency_keys.update()
            .where(store.idempotency_keys.c.key == "create-before-the-deploy")
            .values(request_hash=keyed_hash(svc.deps.settings.hash_key, "idempotency", text))
        )
    retried = svc.client.post("/api/v1/petitions", json=body, headers=headers)
    assert retried.status_code == 201, retried.get_json()
    assert retried.get_json()["petition_id"] == first.get_json()["petition_id"]


def test_only_the_lead_sets_the_retention_of_its_list(svc: Petitions) -> None:
    body = svc.minimal_petition()
    partner = svc.auth("p1_organizer")
    refused = svc.client.post(
        "/api/v1/petitions", json={**body, "signer_retention_days": 0}, headers=partner
    )
    assert refused.status_code == 403
    assert svc.client.post("/api/v1/petitions", json=body, headers=partner).status_code == 201


def test_an_export_still_streaming_when_the_rows_are_erased_is_broken_off(
    svc: Petitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CSV ending with signers missing would look whole: the stream fails instead, even when
    the worker erased the rest while a slow client held it (the next read finds no rows)."""
    monkeypatch.setattr(domain, "RETENTION_NOTICE", timedelta(0))
    petition_id = svc.open_petition(signer_retention_days=0)
    for email in ("ana@example.org", "ben@example.org", "cai@example.org"):
        assert svc.sign(petition_id, email).status_code == 202
    close(svc, petition_id)  # due now; the rows go ERASE_AFTER_DUE later
    lines = exports.csv_lines(svc.deps, petition_id, exports.CONTACT, {}, batch=1)
    assert "ana@example.org" in next(lines)  # the header and a first signer
    relayed(svc)
    monkeypatch.setattr(domain, "ERASE_AFTER_DUE", timedelta(0))
    assert signing.erase_signer_data(svc.deps) == 3
    with pytest.raises(exports.ExportBrokenOff):
        list(lines)


def test_an_export_of_a_list_kept_is_never_broken_off(
    svc: Petitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    petition_id = svc.open_petition()
    for email in ("ana@example.org", "ben@example.org"):
        assert svc.sign(petition_id, email).status_code == 202
    lines = exports.csv_lines(svc.deps, petition_id, exports.CONTACT, {}, batch=1)
    first = next(lines)
    much_later = datetime.now(UTC) + timedelta(days=2)
    monkeypatch.setattr(exports, "now", lambda: much_later)  # a very slow client
    assert "ben@example.org" in first + "".join(lines)


def test_closing_by_the_campaign_stamps_the_due_time_and_null_keeps_the_list(
    svc: Petitions,
) -> None:
    kept_a_week = svc.open_petition(signer_retention_days=7)
    svc.campaign_event("campaign.closed", "closed")
    shown = view(svc, kept_a_week)
    closed_at = datetime.fromisoformat(shown["closed_at"])
    assert shown["status"] == "closed"
    assert datetime.fromisoformat(shown["signer_data_erase_at"]) == closed_at + timedelta(days=7)
    kept = patch(svc, kept_a_week, signer_retention_days=None)
    assert kept.status_code == 200 and kept.get_json()["signer_data_erase_at"] is None
    assert export_statuses(svc, kept_a_week) == [200, 200, 200]


def test_an_erasure_waits_for_every_due_petitions_events_not_only_the_earliest(
    svc: Petitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two petitions fall due hours apart while the relay is down; the later one's signers'
    events, made after the earlier due time, still wait in the outbox. Erasing then would
    publish what they typed after the erasure: both wait until the outbox is relayed."""
    monkeypatch.setattr(domain, "ERASE_AFTER_DUE", timedelta(0))
    earlier = svc.open_petition(signer_retention_days=30)
    assert svc.sign(earlier, "ana@example.org").status_code == 202
    relayed(svc)
    later = svc.open_petition(signer_retention_days=30)
    assert svc.sign(later, "ben@example.org").status_code == 202
    close(svc, earlier)
    close(svc, later)
    moment = datetime.now(UTC)
    with svc.deps.engine.begin() as conn:
        conn.execute(
            store.outbox.update()
            .where(store.outbox.c.type.like("%signature.created%"))
            .values(time=moment - timedelta(minutes=30))
        )
        for petition_id, due in ((earlier, moment - timedelta(hours=2)),
                                 (later, moment - timedelta(minutes=10))):  # fmt: skip
            conn.execute(
                store.petitions.update()
                .where(store.petitions.c.petition_id == petition_id)
                .values(signer_data_erase_at=due)
            )
    assert signing.erase_signer_data(svc.deps) == 0
    assert svc.rows(store.signatures, petition_id=later)[0].email == "ben@example.org"
    relayed(svc)
    assert signing.erase_signer_data(svc.deps) == 2
