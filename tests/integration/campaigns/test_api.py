"""The campaigns API over HTTP on PostgreSQL: the organizer's path, validation, idempotency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from services.campaigns.cli import keys as keys_cli
from tests.integration.campaigns.conftest import (
    Service,
    bilingual_alert,
    make_coalition,
    org_body,
    scheduled_alert,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


def test_cli_bootstraps_a_fresh_install_and_its_key_works(
    campaigns_db: str, service: Service
) -> None:
    runner = CliRunner()
    env = {"CAMPAIGNS_DATABASE_URL": campaigns_db}
    made = runner.invoke(
        keys_cli, ["create", "--org", "hq", "--role", "admin", "--create-org"], env=env
    )
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("kin_adm_")
    me = service.http.as_(secret).get("/api/v1/keys/me")
    assert me.status_code == 200 and me.json["role"] == "admin"
    assert "secret" not in me.json and "key_hash" not in me.json
    listed = runner.invoke(keys_cli, ["list", "--org", "hq"], env=env)
    assert me.json["key_id"] in listed.stdout and me.json["prefix"] in listed.stdout
    # Issued through the outbox like the API does, so other services learn the key.
    assert service.outbox_types() == ["organization.created", "apikey.issued"]
    revoked = runner.invoke(keys_cli, ["revoke", me.json["key_id"]], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert service.outbox_types()[-1] == "apikey.revoked"
    again = runner.invoke(keys_cli, ["create", "--org", "nobody", "--role", "admin"], env=env)
    assert again.exit_code == 1 and "--create-org" in again.output
    # What the API would refuse, the command refuses too, naming its option: nothing is made.
    made_before = service.outbox_types()
    for options, named in (
        (["--create-org", "--org-name", "x" * 201], "--org-name"),
        (["--name", "a\x00b"], "--name"),
    ):
        bad = runner.invoke(
            keys_cli, ["create", "--org", "new-hq", "--role", "admin", *options], env=env
        )
        assert bad.exit_code == 1 and named in bad.output, bad.output
    assert service.outbox_types() == made_before


def test_organizer_builds_a_coalition_launches_and_schedules_a_bilingual_alert(
    service: Service,
) -> None:
    campaign = make_coalition(service)
    cid = campaign["campaign_id"]
    lead = service.as_("organizer@lead")
    launched = lead.post(f"/api/v1/campaigns/{cid}/launch")
    assert launched.status_code == 200 and launched.json["status"] == "active"
    assert launched.json["partner_organization_ids"] == [service.orgs["partner"]["organization_id"]]

    draft = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert())
    assert draft.status_code == 201, draft.json
    alert = draft.json
    assert alert["status"] == "draft" and alert["checks"]["ready"] is True
    sms = alert["checks"]["sms"]
    assert sms["en"]["sms_text"]["segments"] == 1 and sms["en"]["sms_text"]["encoding"] == "GSM-7"
    assert set(sms) == {"en", "tl"}

    send_at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    scheduled = lead.post(
        f"/api/v1/alerts/{alert['alert_id']}/schedule", json={"send_at": send_at.isoformat()}
    )
    assert scheduled.status_code == 200, scheduled.json
    assert scheduled.json["status"] == "scheduled"
    assert datetime.fromisoformat(scheduled.json["send_at"]) == send_at
    progress = service.as_("partner@partner").get(f"/api/v1/alerts/{alert['alert_id']}").json
    assert progress["progress"] == {
        "total": 0,
        "queued": 0,
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "suppressed": 0,
        "deferred": 0,
        "updated_at": None,
        "status": None,
    }
    cancelled = lead.post(f"/api/v1/alerts/{alert['alert_id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert lead.post(f"/api/v1/alerts/{alert['alert_id']}/cancel").status_code == 409

    now = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert()).json
    sent = lead.post(f"/api/v1/alerts/{now['alert_id']}/schedule")
    assert sent.status_code == 200 and sent.json["status"] == "published"
    # Sending has started: cancelling stops the rest (notifications is told).
    stopped = lead.post(f"/api/v1/alerts/{now['alert_id']}/cancel")
    assert stopped.status_code == 200 and stopped.json["status"] == "cancelled"
    assert lead.post(f"/api/v1/alerts/{now['alert_id']}/cancel").status_code == 409
    closed = lead.post(f"/api/v1/campaigns/{cid}/close")
    assert closed.status_code == 200 and closed.json["status"] == "closed"
    assert service.outbox_types() == [
        *["organization.created", "apikey.issued"],  # the admin bootstrap
        *["organization.created", "apikey.issued", "apikey.issued"] * 3,
        "campaign.created",
        "campaign.partner_joined",
        "campaign.launched",
        "alert.scheduled",
        "alert.cancelled",
        "alert.scheduled",
        "alert.published",
        "alert.cancelled",
        "campaign.closed",
    ]


def post_alert(service: Service, cid: str, body: dict[str, Any]) -> Any:
    return service.as_("organizer@lead").post(f"/api/v1/campaigns/{cid}/alerts", json=body)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channels": ["fax"]}, "channels"),
        ({"channels": []}, "channels"),
        ({"default_locale": "xx-nope"}, "default_locale"),
        ({"audience": {"countries": ["USA"]}}, "audience.countries"),
        ({"audience": {"regions": ["US-CAL"]}}, "audience.regions"),  # no such subdivision
        ({"audience": {"partner_organization_ids": ["nope"]}}, "audience.partner_organization_ids"),
        ({"content": {"en": {"sms_text": "Hi {{ frist_name }}"}}}, "content.en.sms_text"),
        ({"content": {"en": {"sms_txt": "typo"}}}, "content"),
        ({"content": {"kl-ingon": {"sms_text": "Qapla'"}}}, "content.kl-ingon"),
        ({"name": ""}, "name"),
    ],
)
def test_alert_drafts_with_bad_input_get_422_naming_the_field(
    service: Service, change: dict[str, Any], field: str
) -> None:
    cid = make_coalition(service)["campaign_id"]
    response = post_alert(service, cid, bilingual_alert(**change))
    assert response.status_code == 422, response.json
    body = response.json
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    assert field in body["errors"], body


def test_a_discreet_text_may_not_name_a_community_the_coalition_serves(service: Service) -> None:
    """The campaign serves Filipino communities; its organizations also LGBTQ+ ones: a lock
    screen reading either says what the discreet text is for hiding."""
    cid = make_coalition(service)["campaign_id"]
    lead = service.as_("organizer@lead")
    lead.post(f"/api/v1/campaigns/{cid}/launch")
    for text in ("Filipino families: rally Sat 2pm", "LGBTQ meetup moved to Sat"):
        body = bilingual_alert()
        body["content"]["en"]["sms_discreet_text"] = text
        draft = post_alert(service, cid, body).json
        assert list(draft["checks"]["problems"]) == ["content.en.sms_discreet_text"], text
        refused = lead.post(f"/api/v1/alerts/{draft['alert_id']}/schedule")
        assert refused.status_code == 422
        assert list(refused.json["errors"]) == ["content.en.sms_discreet_text"]


def test_scheduling_validates_every_locale_and_the_send_time(service: Service) -> None:
    cid = make_coalition(service)["campaign_id"]
    lead = service.as_("organizer@lead")
    body = bilingual_alert()
    body["content"]["tl"]["email_html"] = None
    draft = post_alert(service, cid, body).json
    assert draft["checks"] == {
        "ready": False,
        "problems": {"content.tl.email_html": ["Missing for a chosen channel."]},
        "warnings": {},
        "sms": draft["checks"]["sms"],
    }
    schedule = f"/api/v1/alerts/{draft['alert_id']}/schedule"
    # A draft campaign sends nothing.
    assert lead.post(schedule).status_code == 409
    lead.post(f"/api/v1/campaigns/{cid}/launch")
    refused = lead.post(schedule)
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["content.tl.email_html"]
    fixed = lead.patch(f"/api/v1/alerts/{draft['alert_id']}", json={"channels": ["sms"]})
    assert fixed.status_code == 200 and fixed.json["checks"]["ready"] is True
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    late = lead.post(schedule, json={"send_at": past})
    assert late.status_code == 422 and list(late.json["errors"]) == ["send_at"]
    for beyond in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"):  # no UTC time
        refused = lead.post(schedule, json={"send_at": beyond})
        assert refused.status_code == 422 and list(refused.json["errors"]) == ["send_at"]
    # Within the window the schedule allows, so only the missing zone can be what is wrong.
    soon = (datetime.now(UTC) + timedelta(hours=2)).replace(tzinfo=None).isoformat()
    naive = lead.post(schedule, json={"send_at": soon})
    assert naive.status_code == 422 and "aware" in naive.json["errors"]["send_at"][0]
    long_sms = "ă" * 300
    too_long = lead.patch(
        f"/api/v1/alerts/{draft['alert_id']}",
        json={"content": {"en": {"sms_text": long_sms}, "tl": {"sms_text": "ok"}}},
    )
    assert too_long.json["checks"]["sms"]["en"]["sms_text"]["segments"] == 5
    refused = lead.post(schedule)
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["content.en.sms_text"]


def test_email_alerts_need_the_lead_organizations_postal_address(service: Service) -> None:
    campaign = make_coalition(service)
    lead = service.as_("organizer@lead")
    lead.post(f"/api/v1/campaigns/{campaign['campaign_id']}/launch")
    org = service.orgs["lead"]["slug"]
    assert (
        lead.patch(f"/api/v1/organizations/{org}", json={"postal_address": None}).status_code == 200
    )
    draft = post_alert(service, campaign["campaign_id"], bilingual_alert()).json
    refused = lead.post(f"/api/v1/alerts/{draft['alert_id']}/schedule")
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["channels"]


def test_idempotency_key_replays_the_first_response(service: Service) -> None:
    admin = service.http.as_(service.admin_key())
    headers = {"Idempotency-Key": "create-org-1"}
    first = admin.post("/api/v1/organizations", json=org_body("once"), headers=headers)
    again = admin.post("/api/v1/organizations", json=org_body("once"), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert service.outbox_types().count("organization.created") == 2  # platform + once
    other = admin.post("/api/v1/organizations", json=org_body("twice"), headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"]
    # A failed request keeps nothing: fixing it and retrying with the same key works.
    bad = admin.post(
        "/api/v1/organizations", json=org_body("BAD"), headers={"Idempotency-Key": "k2"}
    )
    assert bad.status_code == 422
    good = admin.post(
        "/api/v1/organizations", json=org_body("bad"), headers={"Idempotency-Key": "k2"}
    )
    assert good.status_code == 201, good.json


def test_a_request_that_took_effect_is_never_run_again_even_if_its_answer_was_lost(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The campaign was committed, then the process died before keeping its response: a retry
    a minute later (when an unfinished first request counts as abandoned) must not create a
    second campaign."""
    from services.campaigns import store
    from shared import idempotency

    def died(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died here")

    make_coalition(service)
    lead = service.as_("organizer@lead")
    headers = {"Idempotency-Key": "create-campaign-lost"}
    body = {"default_locale": "en", "titles": {"en": "Lost answer"}}
    before = service.outbox_types().count("campaign.created")
    monkeypatch.setattr(idempotency, "_keep", died)
    lost = lead.post("/api/v1/campaigns", json=body, headers=headers)
    assert lost.status_code == 500
    monkeypatch.undo()
    assert service.outbox_types().count("campaign.created") == before + 1
    table = store.idempotency_keys
    with service.deps.engine.begin() as conn:
        claimed = conn.execute(select(table.c.created_at)).scalar_one()
        conn.execute(table.update().values(created_at=claimed - timedelta(minutes=5)))
    retry = lead.post("/api/v1/campaigns", json=body, headers=headers)
    assert retry.status_code == 409 and "took effect" in retry.json["message"]
    assert retry.json["errors"] == {"Idempotency-Key": ["applied"]}  # not "retry later"
    assert service.outbox_types().count("campaign.created") == before + 1


def test_the_campaign_list_shows_partners_as_the_campaign_does(service: Service) -> None:
    campaign = make_coalition(service)
    lead = service.as_("organizer@lead")
    listed = lead.get("/api/v1/campaigns").json
    campaigns = listed["_embedded"]["campaigns"]
    [entry] = [c for c in campaigns if c["campaign_id"] == campaign["campaign_id"]]
    one = lead.get(f"/api/v1/campaigns/{campaign['campaign_id']}").json
    assert entry["partners"] == one["partners"]
    assert [(p["slug"], p["name"]) for p in entry["partners"]] == [
        (service.orgs["partner"]["slug"], service.orgs["partner"]["name"])
    ]


def test_collections_are_paginated_osdi_style(service: Service) -> None:
    admin = service.http.as_(service.admin_key())
    for index in range(5):
        admin.post("/api/v1/organizations", json=org_body(f"org-{index}"))
    first = admin.get("/api/v1/organizations?per_page=2")
    assert first.status_code == 200
    body = first.json
    assert (body["page"], body["per_page"], body["total_records"], body["total_pages"]) == (
        1,
        2,
        6,
        3,
    )
    assert len(body["_embedded"]["organizations"]) == 2
    last = admin.get(body["_links"]["next"]["href"].replace("http://localhost", ""))
    assert last.json["page"] == 2 and "prev" in last.json["_links"]
    too_big = admin.get("/api/v1/organizations?per_page=101")
    assert too_big.status_code == 422 and "per_page" in too_big.json["errors"]


def test_a_campaigns_partners_come_in_pages(service: Service) -> None:
    campaign = make_coalition(service)
    cid = campaign["campaign_id"]
    lead = service.as_("organizer@lead")
    admin = service.http.as_(service.admin_key())
    for index in range(2):
        slug = f"invited-{index}-{uuid.uuid4().hex[:6]}"
        assert admin.post("/api/v1/organizations", json=org_body(slug)).status_code == 201
        invited = lead.post(f"/api/v1/campaigns/{cid}/partners", json={"organization": slug})
        assert invited.status_code == 201, invited.json
    first = lead.get(f"/api/v1/campaigns/{cid}/partners?per_page=2").json
    assert (first["page"], first["total_records"], first["total_pages"]) == (1, 3, 2)
    shown = [(p["slug"], p["status"]) for p in first["_embedded"]["partners"]]
    assert shown[0] == (service.orgs["partner"]["slug"], "joined")
    assert shown[1][1] == "invited"
    rest = lead.get(first["_links"]["next"]["href"].replace("http://localhost", "")).json
    [last] = rest["_embedded"]["partners"]
    assert last["status"] == "invited" and last["slug"] not in {s for s, _ in shown}
    too_big = lead.get(f"/api/v1/campaigns/{cid}/partners?per_page=101")
    assert too_big.status_code == 422 and "per_page" in too_big.json["errors"]


def test_duplicate_slug_is_a_conflict_and_bad_email_names_the_field(service: Service) -> None:
    admin = service.http.as_(service.admin_key())
    assert admin.post("/api/v1/organizations", json=org_body("dup")).status_code == 201
    dup = admin.post("/api/v1/organizations", json=org_body("dup"))
    assert dup.status_code == 409 and dup.json["code"] == 409
    bad = admin.post("/api/v1/organizations", json=org_body("mail", contact_email="nope"))
    assert bad.status_code == 422 and list(bad.json["errors"]) == ["contact_email"]
    # Longer than any address mail carries (and than the column): a 422, not a 500.
    long = admin.post(
        "/api/v1/organizations", json=org_body("long", contact_email="a" * 310 + "@example.org")
    )
    assert long.status_code == 422 and list(long.json["errors"]) == ["contact_email"]


def test_a_caller_without_a_key_is_refused_before_its_input_is_read(service: Service) -> None:
    # A 422 naming the fields told a caller with no key what the API takes, and was the
    # wrong answer: it has no business here.
    anyone = service.http.as_(None)
    bad = {"titles": 5, "channels": "pigeon"}
    for path in ("/api/v1/campaigns/anything", "/api/v1/alerts/anything"):
        refused = anyone.patch(path, json=bad)
        assert refused.status_code == 401 and refused.json["errors"] == {}, path
    listed = anyone.get("/api/v1/organizations?per_page=1000")
    assert listed.status_code == 401
    unknown = service.http.as_("kin_org_0000_wrong")
    assert unknown.post("/api/v1/campaigns", json={}).status_code == 401


def test_the_organizers_path_works_on_sqlite_for_the_embedded_run(tmp_path: Any) -> None:
    from services.campaigns import alerts, create_app
    from services.campaigns.bootstrap import build
    from shared.migrate import upgrade
    from tests.integration.campaigns.conftest import Http, scheduled_alert, settings_for

    url = f"sqlite:///{tmp_path / 'campaigns.db'}"
    upgrade("campaigns", url)
    deps = build(settings_for(url, "127.0.0.1:1"))
    svc = Service(deps, Http(create_app(deps=deps).test_client()))
    try:
        start = datetime.now(UTC)
        deps.clock = lambda: start  # the dozen calls below take no time on the service's clock
        soon = start + timedelta(minutes=5)
        draft = scheduled_alert(svc, soon)
        lead = svc.as_("organizer@lead")
        assert alerts.publish_due(deps) == 0  # not yet due
        deps.clock = lambda: soon + timedelta(seconds=1)
        assert alerts.publish_due(deps) == 1
        assert alerts.publish_due(deps) == 0  # and never twice
        body = lead.get(f"/api/v1/alerts/{draft['alert_id']}").json
        assert body["status"] == "published" and body["published_at"].endswith("+00:00")
        assert svc.outbox_types()[-2:] == ["alert.scheduled", "alert.published"]
    finally:
        deps.engine.dispose()


def test_a_patch_merges_audience_filters_and_content_by_locale(service: Service) -> None:
    """PATCH is a JSON Merge Patch: adding a country must not drop the alert's language filter
    (it would then go to the campaign's whole audience), nor one locale's text the others."""
    cid = make_coalition(service)["campaign_id"]
    lead = service.as_("organizer@lead")
    draft = post_alert(service, cid, bilingual_alert(audience={"locales": ["tl"]})).json
    path = f"/api/v1/alerts/{draft['alert_id']}"
    narrowed = lead.patch(path, json={"audience": {"countries": ["US", "CA"]}})
    assert narrowed.status_code == 200, narrowed.json
    audience = {key: values for key, values in narrowed.json["audience"].items() if values}
    assert audience == {"locales": ["tl"], "countries": ["US", "CA"]}
    cleared = lead.patch(path, json={"audience": {"countries": None}}).json["audience"]
    assert {key: values for key, values in cleared.items() if values} == {"locales": ["tl"]}

    edited = lead.patch(path, json={"content": {"en": {"sms_text": "Call the clerk today."}}})
    content = edited.json["content"]
    assert sorted(content) == ["en", "tl"]
    assert content["en"]["sms_text"] == "Call the clerk today."
    assert content["en"]["email_subject"] == bilingual_alert()["content"]["en"]["email_subject"]
    assert content["tl"] == bilingual_alert()["content"]["tl"]
    removed = lead.patch(path, json={"content": {"tl": None}})
    assert sorted(removed.json["content"]) == ["en"]
    emptied = lead.patch(path, json={"content": {"en": None}})
    assert emptied.status_code == 422 and list(emptied.json["errors"]) == ["content"]

    titled = lead.patch(f"/api/v1/campaigns/{cid}", json={"titles": {"tl": "Wika para sa lahat"}})
    assert titled.status_code == 200 and sorted(titled.json["titles"]) == ["en", "tl"]
    untitled = lead.patch(f"/api/v1/campaigns/{cid}", json={"titles": {"en": None}})
    assert untitled.status_code == 422 and list(untitled.json["errors"]) == ["titles.en"]


def test_a_partner_leaves_or_is_removed_and_stops_reading_the_campaign(service: Service) -> None:
    """A coalition partner that turns out unsafe, or that leaves: the lead removes it, or it
    leaves itself; either way it reads the campaign no more, and the other services are told
    (campaign.partner_removed)."""
    campaign = make_coalition(service)
    cid = campaign["campaign_id"]
    partner_id = service.orgs["partner"]["organization_id"]
    remove = f"/api/v1/campaigns/{cid}/partners/{partner_id}/remove"
    read = f"/api/v1/campaigns/{cid}"
    for who in ("organizer@stranger", "partner@partner", "partner@lead"):
        assert service.as_(who).post(remove).status_code == 403, who
    assert service.as_("partner@partner").get(read).status_code == 200

    removed = service.as_("organizer@lead").post(remove)
    assert removed.status_code == 200 and removed.json["status"] == "removed"
    assert service.outbox_types()[-1] == "campaign.partner_removed"
    announced = service.last_outbox_data()
    assert (announced["campaign_id"], announced["organization_id"]) == (cid, partner_id)
    assert announced["left"] is False
    assert service.as_("partner@partner").get(read).status_code == 403
    listed = service.as_("organizer@partner").get("/api/v1/campaigns").json
    assert cid not in [c["campaign_id"] for c in listed["_embedded"]["campaigns"]]
    assert service.as_("organizer@lead").get(read).json["partner_organization_ids"] == []
    assert service.as_("organizer@lead").post(remove).status_code == 409
    # Invited again, it joins, and this time leaves on its own.
    lead = service.as_("organizer@lead")
    again = lead.post(
        f"/api/v1/campaigns/{cid}/partners", json={"organization": service.orgs["partner"]["slug"]}
    )
    assert again.status_code == 201 and again.json["status"] == "invited"
    accept = f"/api/v1/campaigns/{cid}/partners/{partner_id}/accept"
    assert service.as_("organizer@partner").post(accept).status_code == 200
    left = service.as_("organizer@partner").post(remove)
    assert left.status_code == 200 and left.json["status"] == "left"
    assert service.last_outbox_data()["left"] is True
    assert service.as_("partner@partner").get(read).status_code == 403
    # An invitation not yet answered is withdrawn, not removed.
    stranger = service.orgs["stranger"]
    lead.post(f"/api/v1/campaigns/{cid}/partners", json={"organization": stranger["slug"]})
    not_joined = lead.post(f"/api/v1/campaigns/{cid}/partners/{stranger['organization_id']}/remove")
    assert not_joined.status_code == 409


def test_a_scheduled_alert_taken_back_to_draft_is_not_sent(service: Service) -> None:
    """A typo noticed the night before: the alert goes back to draft, is fixed, and is
    scheduled again; the scheduler never publishes the version taken back."""
    from services.campaigns import alerts

    start = datetime.now(UTC)
    service.deps.clock = lambda: start
    soon = start + timedelta(minutes=5)
    alert = scheduled_alert(service, soon)
    path = f"/api/v1/alerts/{alert['alert_id']}"
    for who in ("partner@lead", "organizer@partner", "organizer@stranger"):
        assert service.as_(who).post(f"{path}/unschedule").status_code == 403, who
    lead = service.as_("organizer@lead")
    back = lead.post(f"{path}/unschedule")
    assert back.status_code == 200 and back.json["status"] == "draft"
    assert back.json["send_at"] is None
    assert service.outbox_types()[-1] == "alert.unscheduled"
    assert lead.post(f"{path}/unschedule").status_code == 409  # a draft is not scheduled
    service.deps.clock = lambda: soon + timedelta(seconds=1)
    assert alerts.publish_due(service.deps) == 0  # the time it had has come: nothing goes
    fixed = lead.patch(path, json={"name": "Call the county clerk today"})
    assert fixed.status_code == 200, fixed.json
    later = (soon + timedelta(minutes=10)).isoformat()
    again = lead.post(f"{path}/schedule", json={"send_at": later})
    assert again.status_code == 200 and again.json["status"] == "scheduled"
    service.deps.clock = lambda: soon + timedelta(minutes=11)
    assert alerts.publish_due(service.deps) == 1
    assert lead.post(f"{path}/unschedule").status_code == 409  # published: cancel it instead


def test_an_alert_is_previewed_as_a_supporter_would_read_it(service: Service) -> None:
    """Before scheduling, an organizer reads each language filled in, each text with the
    opt-out line it will carry and what it will cost in segments."""
    cid = make_coalition(service)["campaign_id"]
    lead = service.as_("organizer@lead")
    body = bilingual_alert()
    body["content"]["en"]["email_html"] = "<p>Hi {{ given_name }}.</p><p>{{ unsubscribe_url }}</p>"
    draft = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=body).json
    path = f"/api/v1/alerts/{draft['alert_id']}/preview"
    english = lead.get(f"{path}?given_name=Mai <b>")
    assert english.status_code == 200, english.json
    texts = english.json["texts"]
    assert texts["email_subject"] == "Mai <b>, ballots in every language"
    assert "<p>Hi Mai &lt;b&gt;.</p>" in texts["email_html"]  # a name is text, never markup
    name = service.orgs["lead"]["name"]
    assert texts["sms_text"] == f"{name}: call the county clerk today. Reply STOP to opt out."
    assert texts["sms_discreet_text"].startswith("Reminder: a call to make today.")
    measured = english.json["sms"]["sms_text"]
    assert measured == {"encoding": "GSM-7", "length": len(texts["sms_text"]), "segments": 1}
    tagalog = service.as_("partner@partner").get(f"{path}?locale=tl").json
    assert tagalog["locale"] == "tl" and tagalog["texts"]["email_subject"].startswith("Alex,")
    # Each language's text tells how to stop in that language, and is measured with it.
    assert tagalog["texts"]["sms_text"].endswith(" I-reply ang STOP para mag-opt out.")
    assert tagalog["sms"]["sms_text"]["length"] == len(tagalog["texts"]["sms_text"])
    unknown = lead.get(f"{path}?locale=fr")
    assert unknown.status_code == 422 and "locale" in unknown.json["errors"]
    assert service.as_("organizer@stranger").get(path).status_code == 403


def test_a_test_send_goes_to_the_leads_own_address_only(service: Service) -> None:
    """Before 10,000 inboxes, the organizer's own: notifications is asked to send one
    language's email, marked as a test, to the lead organization's contact address."""
    cid = make_coalition(service)["campaign_id"]
    lead = service.as_("organizer@lead")
    draft = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert()).json
    path = f"/api/v1/alerts/{draft['alert_id']}/test"
    sent = lead.post(path, json={"locale": "tl", "given_name": "Mai"})
    assert sent.status_code == 202, sent.json
    assert sent.json == {"alert_id": draft["alert_id"], "locale": "tl",
                         "to": service.orgs["lead"]["contact_email"]}  # fmt: skip
    assert service.outbox_types()[-1] == "alert.test_requested"
    data = service.last_outbox_data()
    assert data["content"] == bilingual_alert()["content"]["tl"]
    assert (data["given_name"], data["family_name"]) == ("Mai", "Rivera")
    assert data["organization_id"] == service.orgs["lead"]["organization_id"]
    assert "to" not in data and "email" not in data  # the address is notifications' to find
    assert data["discreet"] is False
    # As a supporter in discreet mode would get it.
    again = lead.post(path, json={"locale": "tl", "discreet": True})
    assert again.status_code == 202 and service.last_outbox_data()["discreet"] is True
    # Nobody else's key, no other address, a language the alert has, an email to test.
    for who in ("partner@lead", "organizer@partner", "organizer@stranger"):
        assert service.as_(who).post(path, json={}).status_code == 403, who
    assert lead.post(path, json={"to": "someone@example.org"}).status_code == 422
    unknown = lead.post(path, json={"locale": "fr"})
    assert unknown.status_code == 422 and "locale" in unknown.json["errors"]
    texts_only = bilingual_alert()
    texts_only["channels"] = ["sms"]
    sms = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=texts_only).json
    refused = lead.post(f"/api/v1/alerts/{sms['alert_id']}/test", json={})
    assert refused.status_code == 422 and "locale" in refused.json["errors"]


def test_test_sends_are_few_and_need_an_address(service: Service) -> None:
    """The lead's organizers set its contact address: a stolen key could point it anywhere, so
    test sends are few an hour per organization; a retry with its Idempotency-Key is not
    another; and without an address there is nowhere to send."""
    from sqlalchemy import update

    from services.campaigns import store

    cid = make_coalition(service)["campaign_id"]
    lead = service.as_("organizer@lead")
    draft = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert()).json
    path = f"/api/v1/alerts/{draft['alert_id']}/test"
    again = {"Idempotency-Key": "test-1"}
    assert lead.post(path, json={}, headers=again).status_code == 202
    assert lead.post(path, json={}, headers=again).status_code == 202  # the same one
    assert service.outbox_types().count("alert.test_requested") == 1
    for _ in range(4):
        assert lead.post(path, json={}).status_code == 202
    limited = lead.post(path, json={})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert service.outbox_types().count("alert.test_requested") == 5

    org = service.orgs["lead"]["organization_id"]
    with service.deps.engine.begin() as conn:
        conn.execute(
            update(store.organizations)
            .where(store.organizations.c.organization_id == org)
            .values(contact_email=None)
        )
    service.deps.test_limits.window.storage.reset()
    nowhere = lead.post(path, json={})
    assert nowhere.status_code == 409 and "contact_email" in nowhere.json["errors"]


def test_a_stolen_keys_offspring_are_revoked_with_it(service: Service) -> None:
    """A stolen organizer key's first act may be to mint another: revoking it with_issued
    takes every key it issued, and theirs, in one go; a key of another organization cannot."""
    make_coalition(service)
    slug = service.orgs["lead"]["slug"]

    def issue(secret: str, role: str) -> dict[str, Any]:
        made = service.http.as_(secret).post(
            "/api/v1/keys", json={"organization": slug, "role": role, "name": role}
        )
        assert made.status_code == 201, made.json
        return dict(made.json)

    stolen = issue(service.keys["organizer@lead"], "organizer")
    minted = issue(stolen["secret"], "organizer")
    grandchild = issue(minted["secret"], "partner")
    bystander = issue(service.keys["organizer@lead"], "partner")
    path = f"/api/v1/keys/{stolen['key_id']}/revoke"
    # The web process remembers a key it admitted a while (a second): not long enough to let
    # a key revoked meanwhile mint another.
    service.deps.verifier.cache.ttl = 60
    assert service.http.as_(stolen["secret"]).get("/api/v1/keys/me").status_code == 200
    refused = service.as_("organizer@partner").post(path, json={"with_issued": True})
    assert refused.status_code == 403
    assert service.http.as_(grandchild["secret"]).get("/api/v1/keys/me").status_code == 200
    revoked = service.as_("organizer@lead").post(path, json={"with_issued": True})
    assert revoked.status_code == 200, revoked.json
    assert set(revoked.json["revoked"]) == {k["key_id"] for k in (stolen, minted, grandchild)}
    issued = service.outbox_types().count("apikey.issued")
    late = service.http.as_(stolen["secret"]).post(
        "/api/v1/keys", json={"organization": slug, "role": "organizer", "name": "late"}
    )
    assert late.status_code == 401
    service.deps.verifier.cache.ttl = 1.0
    for key in (stolen, minted, grandchild):  # within the verifier's second of cache
        eventually(
            lambda k=key: service.http.as_(k["secret"]).get("/api/v1/keys/me").status_code == 401,
            timeout=5,
            message="revoked",
        )
    assert service.http.as_(bystander["secret"]).get("/api/v1/keys/me").status_code == 200
    assert service.outbox_types().count("apikey.revoked") == 3
    assert service.outbox_types().count("apikey.issued") == issued  # none for the late one
    again = service.as_("organizer@lead").post(path, json={"with_issued": True})
    assert again.status_code == 200 and again.json["revoked"] == []
