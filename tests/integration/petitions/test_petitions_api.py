"""Organizers publish bilingual petitions; the public reads them in their language."""

from __future__ import annotations

import pytest

from tests.integration.petitions.conftest import Petitions

pytestmark = pytest.mark.integration


def test_organizer_publishes_a_bilingual_petition(svc: Petitions) -> None:
    petition_id = svc.create_petition()
    draft = svc.client.get(f"/api/v1/petitions/{petition_id}")
    assert draft.status_code == 404  # drafts are not public

    edited = svc.client.patch(
        f"/api/v1/petitions/{petition_id}", json={"goal": 50}, headers=svc.auth("p1_organizer")
    )
    assert edited.status_code == 200 and edited.get_json()["goal"] == 50
    published = svc.client.post(
        f"/api/v1/petitions/{petition_id}/publish", headers=svc.auth("lead")
    )
    assert published.status_code == 200
    assert published.get_json()["status"] == "open"

    events = svc.outbox_events("petition.published")
    assert events == [
        {
            "petition_id": petition_id,
            "campaign_id": svc.campaign_id,
            "organization_id": svc.lead,
            "titles": {"en": "Protect our elders", "es": "Protejan a nuestros mayores"},
            "default_locale": "en",
            "goal": 50,
            "double_opt_in": False,
            "at": events[0]["at"],
        }
    ]

    spanish = svc.client.get(f"/api/v1/petitions/{petition_id}?locale=es-MX").get_json()
    assert (spanish["locale"], spanish["title"]) == ("es", "Protejan a nuestros mayores")
    assert spanish["summary"] is None
    assert spanish["total"] == 0 and spanish["goal"] == 50
    assert [p["slug"] for p in spanish["partners"]] == ["kapwa", "rainbow"]
    by_header = svc.client.get(
        f"/api/v1/petitions/{petition_id}", headers={"Accept-Language": "fr-CA, es;q=0.5"}
    ).get_json()
    assert by_header["locale"] == "es"
    fallback = svc.client.get(f"/api/v1/petitions/{petition_id}?locale=tl").get_json()
    assert fallback["locale"] == "en" and fallback["locales"] == ["en", "es"]

    again = svc.client.patch(
        f"/api/v1/petitions/{petition_id}", json={"goal": 10}, headers=svc.auth("lead")
    )
    assert again.status_code == 409 and "goal" in again.get_json()["errors"]  # it climbs alone
    # Once open, its words can change (a typo, a translation that arrived after launch), and
    # the emails and partners hear of the new titles; how it counts cannot.
    texts = {
        "en": {"title": "Protect our elders now", "text": "We ask…"},
        "es": {"title": "Protejan a nuestros mayores", "text": "Pedimos…"},
        "vi": {"title": "Bảo vệ người cao tuổi", "text": "Chúng tôi yêu cầu…"},
    }
    fixed = svc.client.patch(
        f"/api/v1/petitions/{petition_id}", json={"texts": texts}, headers=svc.auth("lead")
    )
    assert fixed.status_code == 200 and fixed.get_json()["status"] == "open"
    [updated] = svc.outbox_events("petition.updated")
    assert updated["titles"] == {k: v["title"] for k, v in texts.items()}
    vietnamese = svc.client.get(f"/api/v1/petitions/{petition_id}?locale=vi").get_json()
    assert (vietnamese["locale"], vietnamese["title"]) == ("vi", "Bảo vệ người cao tuổi")
    counted = svc.client.patch(
        f"/api/v1/petitions/{petition_id}",
        json={"double_opt_in": True, "texts": texts},
        headers=svc.auth("lead"),
    )
    assert counted.status_code == 409 and "double_opt_in" in counted.get_json()["errors"]
    assert len(svc.outbox_events("petition.updated")) == 1

    closed = svc.client.post(f"/api/v1/petitions/{petition_id}/close", headers=svc.auth("lead"))
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    late = svc.client.patch(
        f"/api/v1/petitions/{petition_id}", json={"texts": texts}, headers=svc.auth("lead")
    )
    assert late.status_code == 409
    assert svc.outbox_events("petition.closed")[0]["total"] == 0
    signing = svc.sign(petition_id, "late@example.org")
    assert signing.status_code == 409
    assert "petition_id" in signing.get_json()["errors"]


def test_a_language_added_to_an_open_petition_can_be_signed_in_at_once(svc: Petitions) -> None:
    """An organizer adds the Vietnamese text the day after launch and shares the link: the
    first readers sign in Vietnamese rather than being told the petition is not in it (the
    signing view was kept for an hour as if fixed once open); a language taken away is
    refused again."""
    petition_id = svc.open_petition()
    url = f"/api/v1/petitions/{petition_id}"
    assert svc.sign(petition_id, "an@example.org", locale="es").status_code == 202
    texts = {
        "en": {"title": "Protect our elders", "text": "We ask…"},
        "vi": {"title": "Bảo vệ người cao tuổi", "text": "Chúng tôi yêu cầu…"},
    }
    added = svc.client.patch(url, json={"texts": texts}, headers=svc.auth("lead"))
    assert added.status_code == 200
    assert svc.sign(petition_id, "binh@example.org", locale="vi").status_code == 202
    gone = svc.sign(petition_id, "chi@example.org", locale="es")
    assert gone.status_code == 422 and "locale" in gone.get_json()["errors"]
    assert svc.counts(petition_id)["by_locale"] == {"es": 1, "vi": 1}


def test_a_reader_in_taiwan_reads_and_signs_in_traditional_characters(svc: Petitions) -> None:
    """zh-TW shares its language with zh-Hans, which sorts first: the page and the signature
    (its count by locale, the thank-you's language) both take the reader's script."""
    texts = {
        "en": {"title": "Protect our elders", "text": "We ask…"},
        "zh-Hans": {"title": "保护我们的长辈", "text": "我们请求…"},
        "zh-Hant": {"title": "保護我們的長輩", "text": "我們請求…"},
    }
    petition_id = svc.open_petition(texts=texts)
    taiwan = {"Accept-Language": "zh-TW, en;q=0.5"}
    page = svc.client.get(f"/api/v1/petitions/{petition_id}", headers=taiwan).get_json()
    assert (page["locale"], page["title"]) == ("zh-Hant", "保護我們的長輩")
    assert svc.sign(petition_id, "mei@example.org", headers=taiwan).status_code == 202
    [signed] = svc.outbox_events("signature.created")
    assert signed["locale"] == "zh-Hant"
    assert svc.counts(petition_id)["by_locale"] == {"zh-Hant": 1}
    # A language marked not acceptable (q=0) is no preference.
    refused = {"Accept-Language": "en;q=0, zh-Hans;q=0.1"}
    page = svc.client.get(f"/api/v1/petitions/{petition_id}", headers=refused).get_json()
    assert page["locale"] == "zh-Hans"


def test_an_organizer_can_keep_the_total_from_the_public(svc: Petitions) -> None:
    """On a single opt-in petition a total anyone can watch tells whether an address signed
    already (sign with it: +1 or +0). Hidden, it reads null to the public and stays in sight of
    the coalition's keys; it can be hidden or shown again while the petition is open."""
    petition_id = svc.open_petition(public_total=False)
    assert svc.sign(petition_id, "mei@example.org").status_code == 202
    url = f"/api/v1/petitions/{petition_id}"
    page = svc.client.get(url).get_json()
    assert (page["total"], page["goal"]) == (None, None)
    assert page["title"] == "Protect our elders"
    partner_view = svc.client.get(url, headers=svc.auth("p1")).get_json()
    assert (partner_view["total"], partner_view["goal"]) == (1, 100)
    assert svc.counts(petition_id)["total"] == 1

    assert svc.client.get(url, headers=svc.auth("admin")).get_json()["total"] == 1

    shown = svc.client.patch(url, json={"public_total": True}, headers=svc.auth("lead"))
    assert shown.status_code == 200, shown.get_json()
    assert shown.get_json()["public_total"] is True
    assert svc.client.get(url).get_json()["total"] == 1
    # Showing or hiding the count tells partners nothing new: no petition.updated.
    assert svc.outbox_events("petition.updated") == []
    hidden = svc.client.patch(url, json={"public_total": False}, headers=svc.auth("lead"))
    assert hidden.status_code == 200 and hidden.get_json()["public_total"] is False
    closed = svc.client.post(f"{url}/close", headers=svc.auth("lead"))
    assert closed.status_code == 200, closed.get_json()
    page = svc.client.get(url).get_json()
    assert (page["status"], page["total"], page["goal"]) == ("closed", None, None)
    # Every petition shows it unless told otherwise.
    assert svc.client.get(f"/api/v1/petitions/{svc.open_petition()}").get_json()["total"] == 0


def test_keys_decide_who_manages(svc: Petitions) -> None:
    body = {
        "campaign_id": svc.campaign_id,
        "default_locale": "en",
        "texts": {"en": {"title": "T", "text": "X"}},
    }
    no_key = svc.client.post("/api/v1/petitions", json=body)
    assert no_key.status_code == 401
    assert no_key.get_json()["code"] == 401
    bad_key = svc.client.post(
        "/api/v1/petitions", json=body, headers={"Authorization": "Bearer kin_org_nope_x"}
    )
    assert bad_key.status_code == 401
    outsider = svc.client.post("/api/v1/petitions", json=body, headers=svc.auth("outsider"))
    assert outsider.status_code == 403
    partner = svc.client.post("/api/v1/petitions", json=body, headers=svc.auth("p1"))
    assert partner.status_code == 403
    assert (
        svc.client.post("/api/v1/petitions", json=body, headers=svc.auth("admin")).status_code
        == 201
    )

    petition_id = svc.open_petition()
    assert (
        svc.client.get(
            f"/api/v1/petitions/{petition_id}/counts", headers=svc.auth("p2")
        ).status_code
        == 200
    )
    assert (
        svc.client.get(
            f"/api/v1/petitions/{petition_id}/counts", headers=svc.auth("outsider")
        ).status_code
        == 403
    )
    assert (
        svc.client.post(
            f"/api/v1/petitions/{petition_id}/close", headers=svc.auth("p1")
        ).status_code
        == 403
    )


def test_petition_input_is_checked(svc: Petitions) -> None:
    def create(**body: object) -> tuple[int, dict[str, object]]:
        full = {
            "campaign_id": svc.campaign_id,
            "default_locale": "en",
            "texts": {"en": {"title": "T", "text": "X"}},
        }
        full.update(body)
        response = svc.client.post("/api/v1/petitions", json=full, headers=svc.auth("lead"))
        return response.status_code, response.get_json()

    status, body = create(default_locale="fr")
    assert status == 422 and "default_locale" in body["errors"]
    status, body = create(texts={"xx-YY": {"title": "T", "text": "X"}})
    assert status == 422 and any(name.startswith("texts") for name in body["errors"])
    status, body = create(texts={"en": {"title": "T" * 201, "text": "X"}})
    assert status == 422 and "texts.en.value.title" in body["errors"]
    # A title fills the emails' subjects: a line break would break the header (or add one).
    status, body = create(texts={"en": {"title": "Sign\r\nBcc: all@example.org", "text": "X"}})
    assert status == 422 and "texts.en.value.title" in body["errors"]
    status, body = create(texts={"en": {"title": "T", "text": "Lines\nand\nlines"}})
    assert status == 201, body
    status, body = create(campaign_id="no-such-campaign")
    assert status == 422 and "campaign_id" in body["errors"]
    status, body = create(goal=0)
    assert status == 422 and "goal" in body["errors"]


def test_creating_twice_with_one_idempotency_key_creates_once(svc: Petitions) -> None:
    body = svc.minimal_petition()
    headers = {**svc.auth("lead"), "Idempotency-Key": "create-1"}
    first = svc.client.post("/api/v1/petitions", json=body, headers=headers)
    second = svc.client.post("/api/v1/petitions", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["petition_id"] == second.get_json()["petition_id"]
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    empty = svc.client.post(
        "/api/v1/petitions", json=body, headers={**headers, "Idempotency-Key": ""}
    )
    assert empty.status_code == 422 and "Idempotency-Key" in empty.get_json()["errors"]
    listed = svc.client.get("/api/v1/petitions", headers=svc.auth("lead")).get_json()
    assert listed["total_records"] == 1
    changed = svc.client.post("/api/v1/petitions", json={**body, "goal": 5}, headers=headers)
    assert changed.status_code == 422 and "Idempotency-Key" in changed.get_json()["errors"]


def test_petitions_are_listed_in_pages(svc: Petitions) -> None:
    for _ in range(3):
        svc.create_petition()
    lead = svc.auth("lead")
    page = svc.client.get("/api/v1/petitions?per_page=2", headers=lead).get_json()
    # The shape of every collection (campaigns, webhooks), as OSDI has it.
    assert page["total_records"] == 3 and len(page["_embedded"]["petitions"]) == 2
    assert "page=2" in page["_links"]["next"]["href"] and "prev" not in page["_links"]
    last = svc.client.get("/api/v1/petitions?per_page=2&page=2", headers=lead).get_json()
    assert len(last["_embedded"]["petitions"]) == 1 and "next" not in last["_links"]
    assert "page=1" in last["_links"]["prev"]["href"]
    # Past the end: empty, linking back to the last page with items, not to another empty one.
    beyond = svc.client.get("/api/v1/petitions?per_page=2&page=9", headers=lead).get_json()
    assert beyond["_embedded"]["petitions"] == [] and "page=2" in beyond["_links"]["prev"]["href"]
    # A partner's key reads a draft neither by id nor in the list; once open, in both.
    partner = svc.client.get("/api/v1/petitions?status=draft", headers=svc.auth("p1")).get_json()
    assert partner["total_records"] == 0 and partner["_embedded"]["petitions"] == []
    opened = svc.open_petition()
    listed = svc.client.get("/api/v1/petitions", headers=svc.auth("p1")).get_json()
    assert [p["petition_id"] for p in listed["_embedded"]["petitions"]] == [opened]
    outsider = svc.client.get("/api/v1/petitions", headers=svc.auth("outsider")).get_json()
    assert outsider["total_records"] == 0
    too_many = svc.client.get("/api/v1/petitions?per_page=101", headers=svc.auth("lead"))
    assert too_many.status_code == 422 and "per_page" in too_many.get_json()["errors"]
