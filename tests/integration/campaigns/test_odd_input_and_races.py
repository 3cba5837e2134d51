"""Review fixes on PostgreSQL: event-sized content, NUL, key secrets never kept, checks re-run
when an alert falls due, slugs that shadow ids or race, and the key projection's order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, select

from services.campaigns import alerts, store
from shared.auth import KeyVerifier, api_keys_table, generate_key, projection_handlers
from shared.db import make_engine
from shared.events import Event
from shared.events.catalog import type_name
from tests.integration.campaigns.conftest import (
    Service,
    bilingual_alert,
    make_coalition,
    org_body,
    scheduled_alert,
)

pytestmark = pytest.mark.integration


def test_alert_content_too_big_for_one_event_is_a_422_naming_content(service: Service) -> None:
    cid = make_coalition(service)["campaign_id"]
    lead = service.as_("organizer@lead")
    body = bilingual_alert()
    for texts in body["content"].values():
        texts["email_html"] = "<p>" + "x" * 190_000 + "</p>"
        texts["email_text"] = "y" * 90_000
    refused = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=body)
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["content"]
    descriptions = {f"l{i:02d}": "d" * 20_000 for i in range(14)}
    patched = lead.patch(f"/api/v1/campaigns/{cid}", json={"descriptions": descriptions})
    assert patched.status_code == 422 and list(patched.json["errors"]) == ["descriptions"]
    # Two patches each under the limit, merged over it.
    languages = ["en", "tl", "vi", "ko", "ja", "zh-Hant", "zh-Hans"]
    languages += ["hmn", "sm", "es", "fr", "de", "th", "km"]
    half = {tag: "d" * 20_000 for tag in languages[:7]}
    rest = {tag: "d" * 20_000 for tag in languages[7:]}
    assert lead.patch(f"/api/v1/campaigns/{cid}", json={"descriptions": half}).status_code == 200
    patched = lead.patch(f"/api/v1/campaigns/{cid}", json={"descriptions": rest})
    assert patched.status_code == 422 and list(patched.json["errors"]) == ["descriptions"]


def test_nul_in_paths_queries_and_bodies_is_a_404_or_a_422_never_a_500(service: Service) -> None:
    campaign = make_coalition(service)
    cid = campaign["campaign_id"]
    lead = service.as_("organizer@lead")
    for path in (
        "/api/v1/alerts/%00",
        "/api/v1/organizations/%00",
        "/api/v1/campaigns/a%00b",
        "/api/v1/campaigns/a%00b/alerts",
    ):
        assert lead.get(path).status_code == 404, path
    assert lead.delete("/api/v1/keys/%00").status_code == 404
    assert lead.post(f"/api/v1/campaigns/{cid}/partners/%00/accept").status_code == 404
    for path, field in (
        ("/api/v1/organizations?slug=%00", "slug"),
        ("/api/v1/keys?organization=%00", "organization"),
    ):
        got = lead.get(path)
        assert got.status_code == 422 and list(got.json["errors"]) == [field], path
    admin = service.http.as_(service.admin_key())
    for body, field in (
        (org_body("nul", name="a\u0000"), "name"),
        (org_body("lone", postal_address="\ud800"), "postal_address"),
    ):
        got = admin.post("/api/v1/organizations", json=body)
        assert got.status_code == 422 and list(got.json["errors"]) == [field]
    got = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert(name="a\u0000"))
    assert got.status_code == 422 and list(got.json["errors"]) == ["name"]


def test_an_issued_keys_secret_is_never_kept_for_idempotency(service: Service) -> None:
    admin = service.http.as_(service.admin_key())
    org = admin.post("/api/v1/organizations", json=org_body("keyed")).json
    headers = {"Idempotency-Key": "issue-1"}
    body = {"organization": org["slug"], "role": "organizer"}
    first = admin.post("/api/v1/keys", json=body, headers=headers)
    assert first.status_code == 201 and first.json["secret"].startswith("kin_org_")
    with service.deps.engine.connect() as conn:
        kept = conn.execute(select(store.idempotency_keys.c.body)).scalars().all()
    assert kept and all(first.json["secret"] not in text for text in kept)
    again = admin.post("/api/v1/keys", json=body, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["secret"] is None and "shown only once" in again.json["note"]
    assert again.json["key_id"] == first.json["key_id"]  # the same key, not a second one
    assert first.json["secret"] not in again.get_data(as_text=True)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("postal_address", "postal address"),
        ("title", "content.en.sms_discreet_text"),
        ("partner_name", "content.en.sms_discreet_text"),
    ],
)
def test_an_alert_that_no_longer_passes_schedulings_checks_is_not_published(
    service: Service, change: str, reason: str
) -> None:
    send_at = datetime.now(UTC) + timedelta(days=1)
    alert = scheduled_alert(service, send_at)
    lead = service.as_("organizer@lead")
    if change == "postal_address":
        org = service.orgs["lead"]["slug"]
        patched = lead.patch(f"/api/v1/organizations/{org}", json={"postal_address": None})
    elif change == "partner_name":  # a partner's name on a discreet lock screen says as much
        org = service.orgs["partner"]["slug"]
        patched = service.as_("organizer@partner").patch(
            f"/api/v1/organizations/{org}", json={"name": "A Call To Make"}
        )
    else:  # the discreet SMS says "Reminder: a call to make today."
        patched = lead.patch(
            f"/api/v1/campaigns/{alert['campaign_id']}",
            json={"titles": {"en": "A call to make", "tl": "Access sa wika ngayon"}},
        )
    assert patched.status_code == 200, patched.json
    service.deps.clock = lambda: send_at + timedelta(seconds=1)
    assert alerts.publish_due(service.deps) == 0
    seen = lead.get(f"/api/v1/alerts/{alert['alert_id']}").json
    assert seen["status"] == "cancelled" and seen["published_at"] is None
    assert reason in seen["cancel_reason"]
    assert service.outbox_types()[-2:] != ["alert.scheduled", "alert.published"]
    assert service.outbox_types()[-1] == "alert.cancelled"
    cancelled = service.last_outbox_data()  # the lead is told why (notifications emails it)
    assert reason in cancelled["reason"] and cancelled["name"] == alert["name"]
    assert cancelled["organization_id"] == service.orgs["lead"]["organization_id"]
    assert alerts.publish_due(service.deps) == 0


def test_an_organization_only_invited_cannot_call_the_leads_alert_off(service: Service) -> None:
    """Invited, not joined: its name is not the campaign's, and renaming itself to words of a
    discreet text must not cancel the lead's alert."""
    send_at = datetime.now(UTC) + timedelta(days=1)
    alert = scheduled_alert(service, send_at)
    lead = service.as_("organizer@lead")
    invited = lead.post(
        f"/api/v1/campaigns/{alert['campaign_id']}/partners",
        json={"organization": service.orgs["stranger"]["slug"]},
    )
    assert invited.status_code == 201 and invited.json["status"] == "invited"
    renamed = service.as_("organizer@stranger").patch(
        f"/api/v1/organizations/{service.orgs['stranger']['slug']}",
        json={"name": "A Call To Make"},
    )
    assert renamed.status_code == 200, renamed.json
    service.deps.clock = lambda: send_at + timedelta(seconds=1)
    assert alerts.publish_due(service.deps) == 1
    assert lead.get(f"/api/v1/alerts/{alert['alert_id']}").json["status"] == "published"


def test_a_blank_organization_name_is_a_422_naming_name(service: Service) -> None:
    """Alerts print the name; an empty one would make the sender the platform."""
    admin = service.http.as_(service.admin_key())
    created = admin.post("/api/v1/organizations", json={**org_body("blank"), "name": "   "})
    assert created.status_code == 422 and list(created.json["errors"]) == ["name"]
    made = admin.post("/api/v1/organizations", json=org_body("named")).json
    patched = admin.patch(f"/api/v1/organizations/{made['slug']}", json={"name": "\t "})
    assert patched.status_code == 422 and list(patched.json["errors"]) == ["name"]
    assert admin.get(f"/api/v1/organizations/{made['slug']}").json["name"] == made["name"]


def test_slugs_that_shadow_an_id_or_race_are_refused_naming_slug(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = service.http.as_(service.admin_key())
    first = admin.post("/api/v1/organizations", json=org_body("first")).json
    shadow = admin.post("/api/v1/organizations", json=org_body(first["organization_id"]))
    assert shadow.status_code == 422 and list(shadow.json["errors"]) == ["slug"]
    newline = admin.post(
        "/api/v1/organizations", json=org_body("acme\n", name="Acme", contact_email=None)
    )
    assert newline.status_code == 422 and list(newline.json["errors"]) == ["slug"]
    # Two concurrent creates: each checked before the other committed, as if taken() said no.
    monkeypatch.setattr(store, "taken", lambda *args, **kwargs: False)
    raced = admin.post("/api/v1/organizations", json=org_body("first"))
    assert raced.status_code == 409 and list(raced.json["errors"]) == ["slug"]
    code = admin.post(
        "/api/v1/organizations", json=org_body("second", source_code=first["source_code"])
    )
    assert code.status_code == 422 and list(code.json["errors"]) == ["source_code"]
    second = admin.post("/api/v1/organizations", json=org_body("third")).json
    moved = admin.patch(
        f"/api/v1/organizations/{second['organization_id']}", json={"slug": "first"}
    )
    assert moved.status_code == 409 and list(moved.json["errors"]) == ["slug"]


def test_the_key_projection_on_postgresql_never_unrevokes(campaigns_db: str) -> None:
    engine = make_engine(campaigns_db)
    table = api_keys_table(MetaData())
    new = generate_key("partner")
    data = {"key_id": new.key_id, "organization_id": "org-9", "at": "2026-11-29T10:00:03Z"}
    issued = {
        **data,
        "prefix": new.prefix,
        "key_hash": new.key_hash,
        "role": "partner",
        "at": "2026-11-29T10:00:00Z",
    }
    handlers = projection_handlers(table)
    try:
        for short, body in (("apikey.revoked", data), ("apikey.issued", issued)):
            event = Event(type=type_name(short), key="org-9", data=body, source="/t")
            with engine.begin() as conn:
                for handler in handlers[event.type]:
                    handler(event, conn)
        assert KeyVerifier(engine, table, ttl=0).verify(new.secret) is None
        with engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.key_id == new.key_id)).one()
        assert row.key_hash == new.key_hash and row.revoked_at is not None
    finally:
        engine.dispose()


def test_a_null_text_in_a_new_campaign_is_a_422_naming_it(service: Service) -> None:
    make_coalition(service)
    lead = service.as_("organizer@lead")
    body = {"default_locale": "en", "titles": {"en": "Language access"}, "descriptions": {}}
    for field in ("titles", "descriptions"):
        bad = {**body, field: {**body[field], "en": None}}
        refused = lead.post("/api/v1/campaigns", json=bad)
        assert refused.status_code == 422, refused.json
        assert list(refused.json["errors"]) == [field]


def test_names_and_titles_that_fill_email_headers_are_one_line(service: Service) -> None:
    """An organization's name is the emails' sender name and a campaign's title or an alert's
    name can fill a subject: a line break there would break the header (or add one)."""
    make_coalition(service)
    admin = service.http.as_(service.admin_key())
    injected = "Rainbow Alliance\r\nBcc: everyone@example.org"
    created = admin.post("/api/v1/organizations", json={**org_body("crlf"), "name": injected})
    assert created.status_code == 422 and list(created.json["errors"]) == ["name"]
    made = admin.post("/api/v1/organizations", json=org_body("one-line")).json
    patched = admin.patch(f"/api/v1/organizations/{made['slug']}", json={"name": "A\nB"})
    assert patched.status_code == 422 and list(patched.json["errors"]) == ["name"]
    lead = service.as_("organizer@lead")
    body = {"default_locale": "en", "titles": {"en": "Language\naccess"}}
    refused = lead.post("/api/v1/campaigns", json=body)
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["titles"]
    described = {**body, "titles": {"en": "Language access"}, "descriptions": {"en": "A\nB"}}
    campaign = lead.post("/api/v1/campaigns", json=described)
    assert campaign.status_code == 201, campaign.json  # a description may run over lines
    cid = campaign.json["campaign_id"]
    retitled = lead.patch(f"/api/v1/campaigns/{cid}", json={"titles": {"tl": "Wika\tpara"}})
    assert retitled.status_code == 422 and list(retitled.json["errors"]) == ["titles"]
    alert = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert(name="Vote\r\nnow"))
    assert alert.status_code == 422 and list(alert.json["errors"]) == ["name"], alert.json
    # A test send's name fills the {{ given_name }} of the subject.
    draft = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert()).json
    test = lead.post(
        f"/api/v1/alerts/{draft['alert_id']}/test", json={"given_name": "Alex\r\nBcc: x"}
    )
    assert test.status_code == 422 and list(test.json["errors"]) == ["given_name"], test.json
    assert "alert.test_requested" not in service.outbox_types()


def test_a_key_issued_while_its_issuer_is_revoked_with_issued_is_revoked_too(
    service: Service,
) -> None:
    """An issue by a stolen key that commits while the revocation of that key and its
    offspring runs: the revocation waits for it and takes the new key as well."""
    import threading

    from services.campaigns import operations
    from shared.auth import Principal

    make_coalition(service)
    slug = service.orgs["lead"]["slug"]
    made = service.as_("organizer@lead").post(
        "/api/v1/keys", json={"organization": slug, "role": "organizer", "name": "stolen"}
    )
    stolen = made.json
    org = service.orgs["lead"]["organization_id"]
    engine = service.deps.engine
    lead = service.deps.verifier.verify(service.keys["organizer@lead"])
    assert isinstance(lead, Principal)
    revoked: list[str] = []
    revoking = threading.Thread(
        target=lambda: revoked.extend(
            operations.revoke_key(service.deps, lead, stolen["key_id"], with_issued=True)
        )
    )
    with engine.connect() as conn:
        issuing = conn.begin()  # issue_key's steps, in its order, held open before its commit
        assert store.key(conn, stolen["key_id"], lock="share").revoked_at is None
        revoking.start()
        revoking.join(1.0)
        assert revoking.is_alive()  # waiting for the issue to commit
        # The issue goes on to the organization's lock (the one being revoked in): a
        # revocation holding it while waiting for the key deadlocked with this.
        assert store.lock_organization(conn, org) is not None
        minted = operations.insert_key(
            conn, service.deps.outbox, org, "organizer", "minted", stolen["key_id"],
            datetime.now(UTC),
        )  # fmt: skip
        issuing.commit()
    revoking.join(10)
    assert sorted(revoked) == sorted([stolen["key_id"], minted.key_id])
