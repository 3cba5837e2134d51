"""Streamed CSV exports: the lead gets every confirmed signer, a partner only its own boxes."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.integration.petitions.conftest import HASH_KEY, Petitions

pytestmark = pytest.mark.integration


def table(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def petition(svc: Petitions) -> str:
    petition_id = svc.open_petition()
    people = [
        ("ana@example.org", {"partners": {"rainbow": True}, "email": True}),
        ("ben@example.org", {"partners": {"kapwa": True}}),
        ("cai@example.org", {"partners": {"rainbow": True, "kapwa": True}, "sms": True}),
        ("dee@example.org", {}),
    ]
    for email, consents in people:
        response = svc.sign(
            petition_id,
            email,
            person={
                "given_name": email.split("@")[0].title(),
                "email": email,
                "pronouns": "they/them",
                "phone": "+14155552671",
            },
            consents=consents,
            comment='=HYPERLINK("http://evil.example")' if email.startswith("dee") else None,
        )
        assert response.status_code == 202
    return petition_id


def test_the_lead_exports_every_confirmed_signer(svc: Petitions, petition: str) -> None:
    rows = table(
        svc.client.get(
            f"/api/v1/petitions/{petition}/exports/signers.csv", headers=svc.auth("lead")
        )
    )
    assert [r["email"] for r in rows] == [
        "ana@example.org",
        "ben@example.org",
        "cai@example.org",
        "dee@example.org",
    ]
    assert "pronouns" not in rows[0]
    assert not any("they/them" in value for row in rows for value in row.values())
    assert rows[0]["email_consent"] == "yes" and rows[1]["email_consent"] == "no"
    assert rows[2]["sms_consent"] == "yes" and rows[2]["phone"] == "+14155552671"
    assert rows[3]["comment"].startswith("'=")  # never a live formula in a spreadsheet

    delivery = table(
        svc.client.get(
            f"/api/v1/petitions/{petition}/exports/signers.csv?purpose=delivery",
            headers=svc.auth("lead"),
        )
    )
    assert len(delivery) == 4
    assert "email" not in delivery[0] and "phone" not in delivery[0]


def test_consent_columns_follow_an_unsubscribe_a_stop_and_a_complaint(
    svc: Petitions, petition: str
) -> None:
    """The export marks who may be contacted: an organizer importing it into another tool must
    not email someone who unsubscribed since signing, nor text someone who texted STOP."""
    from shared.privacy import supporter_id

    def consents() -> dict[str, tuple[str, str]]:
        url = f"/api/v1/petitions/{petition}/exports/signers.csv"
        rows = table(svc.client.get(url, headers=svc.auth("lead")))
        return {r["email"]: (r["email_consent"], r["sms_consent"]) for r in rows}

    def change(email: str, channel: str, change: str, at: str, org: str | None) -> None:
        who = supporter_id(HASH_KEY, email)
        data = {"supporter_id": who, "channel": channel, "organization_id": org,
                "change": change, "at": f"2026-11-29T{at}Z"}  # fmt: skip
        svc.deliver("consent.changed", data, key=who)

    # Ana ticked email when signing, Cai texts; then each withdraws it.
    change("ana@example.org", "email", "unsubscribe", "20:00:00", svc.lead)
    change("cai@example.org", "sms", "stop", "20:00:00", None)
    change("cai@example.org", "email", "unsubscribe", "20:00:00", svc.p1)  # another org's
    assert consents()["ana@example.org"] == ("no", "no")
    assert consents()["cai@example.org"] == ("no", "no")
    # Ana resubscribes on the preference page; a new opt-in does not lift a STOP, START does.
    change("ana@example.org", "email", "subscribe", "20:05:00", svc.lead)
    change("cai@example.org", "sms", "subscribe", "20:05:00", svc.lead)
    assert consents()["ana@example.org"] == ("yes", "no")
    assert consents()["cai@example.org"] == ("no", "no")
    change("cai@example.org", "sms", "start", "20:06:00", None)
    change("cai@example.org", "sms", "stop", "19:00:00", None)  # an older one, arriving late
    assert consents()["cai@example.org"] == ("no", "yes")
    # A spam complaint stands, whatever is ticked or resubscribed after it.
    change("ana@example.org", "email", "complaint", "20:10:00", None)
    change("ana@example.org", "email", "subscribe", "20:15:00", svc.lead)
    assert consents()["ana@example.org"] == ("no", "no")
    assert consents()["ben@example.org"] == ("no", "no")  # never ticked either


def test_a_partner_export_holds_only_those_who_ticked_its_box(
    svc: Petitions, petition: str
) -> None:
    base = f"/api/v1/petitions/{petition}/exports/partners"
    rainbow = table(svc.client.get(f"{base}/{svc.p1}.csv", headers=svc.auth("p1")))
    assert [r["email"] for r in rainbow] == ["ana@example.org", "cai@example.org"]
    assert "pronouns" not in rainbow[0]
    # The id a deletion notice names (person.erased, consent.withdrawn): a partner working
    # from this file finds the row it is asked to delete.
    from shared.privacy import supporter_id

    assert rainbow[0]["supporter_id"] == supporter_id(HASH_KEY, "ana@example.org")
    kapwa = table(svc.client.get(f"{base}/{svc.p2}.csv", headers=svc.auth("p2")))
    assert [r["email"] for r in kapwa] == ["ben@example.org", "cai@example.org"]
    by_lead = table(svc.client.get(f"{base}/{svc.p2}.csv", headers=svc.auth("lead")))
    assert by_lead == kapwa

    assert svc.client.get(f"{base}/{svc.p2}.csv", headers=svc.auth("p1")).status_code == 403
    # Not a partner of the campaign: not found for the lead; to others, as any other's list.
    stranger = "0b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    assert svc.client.get(f"{base}/{stranger}.csv", headers=svc.auth("lead")).status_code == 404
    assert svc.client.get(f"{base}/{stranger}.csv", headers=svc.auth("p1")).status_code == 403
    full = f"/api/v1/petitions/{petition}/exports/signers.csv"
    assert svc.client.get(full, headers=svc.auth("p1_organizer")).status_code == 403
    assert svc.client.get(full, headers=svc.auth("p1")).status_code == 403
    assert svc.client.get(full).status_code == 401


def test_an_export_since_a_time_holds_only_who_counted_since(svc: Petitions, petition: str) -> None:
    """A lead or partner syncing a list into its own tool every day asks for the new signers
    only, not the whole list again."""
    from datetime import UTC, datetime

    mark = datetime.now(UTC)
    for email, consents in (
        ("eli@example.org", {"partners": {"rainbow": True}}),
        ("fay@example.org", {}),
    ):
        response = svc.sign(petition, email, consents=consents)
        assert response.status_code == 202
    since = {"since": mark.isoformat()}
    full = f"/api/v1/petitions/{petition}/exports/signers.csv"
    rows = table(svc.client.get(full, query_string=since, headers=svc.auth("lead")))
    assert [r["email"] for r in rows] == ["eli@example.org", "fay@example.org"]
    assert all(r["signed_at"] >= mark.isoformat() for r in rows)
    rainbow = f"/api/v1/petitions/{petition}/exports/partners/{svc.p1}.csv"
    rows = table(svc.client.get(rainbow, query_string=since, headers=svc.auth("p1")))
    assert [r["email"] for r in rows] == ["eli@example.org"]
    assert len(table(svc.client.get(full, headers=svc.auth("lead")))) == 6

    # A time without its offset is ambiguous by hours: refused, naming the field.
    naive = svc.client.get(
        full, query_string={"since": "2026-11-30T10:00:00"}, headers=svc.auth("lead")
    )
    assert naive.status_code == 422
    assert "since" in naive.get_json()["errors"], naive.get_json()


def test_an_export_since_a_time_reads_only_who_counted_since(svc: Petitions, petition: str) -> None:
    """A partner syncing every few minutes from a petition of many signers: each sync reads the
    few who counted since its last one, not every older signer on the way (a million rows a
    sync on a big petition, before the index on (petition, confirmed_at))."""
    from datetime import UTC, datetime

    from sqlalchemy import event, text

    with svc.deps.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO signatures (signature_id, petition_id, email_hash, status, locale,"
                " email, discreet, consent_email, consent_sms, created_at, confirmed_at)"
                " SELECT 'old-' || g, :pid, md5(g::text), 'confirmed', 'en', g || '@example.org',"
                " false, false, false, now() - interval '2 days', now() - interval '2 days'"
                " FROM generate_series(1, 5000) AS g"
            ),
            {"pid": petition},
        )
        conn.execute(text("ANALYZE signatures"))
    mark = datetime.now(UTC)
    assert svc.sign(petition, "gus@example.org").status_code == 202
    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM signatures" in statement and "confirmed_at >=" in statement:
            statements.append((statement, params))

    event.listen(svc.deps.engine, "before_cursor_execute", capture)
    try:
        url = f"/api/v1/petitions/{petition}/exports/signers.csv"
        rows = table(svc.client.get(url, query_string={"since": mark.isoformat()},
                                    headers=svc.auth("lead")))  # fmt: skip
    finally:
        event.remove(svc.deps.engine, "before_cursor_execute", capture)
    assert [r["email"] for r in rows] == ["gus@example.org"]
    assert statements
    with svc.deps.engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statements[0][0], statements[0][1])
        plan = cursor.fetchone()[0][0]["Plan"]

    def nodes(node: dict[str, Any]) -> Any:
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    assert plan["Actual Rows"] == 1
    read = sum(n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0)
               for n in nodes(plan) if "Scan" in n["Node Type"])  # fmt: skip
    assert read < 50, plan


def test_a_partner_export_leaves_out_whoever_stopped_sharing_with_it(
    svc: Petitions, petition: str
) -> None:
    """Unticking "share my details" on the preference page withdraws the consent a partner's
    box gave: that partner's export must drop the person; a later signature ticking the box
    again gives it anew."""
    from datetime import UTC, datetime

    from shared.privacy import supporter_id

    base = f"/api/v1/petitions/{petition}/exports/partners"

    def exported(partner: str, key: str) -> list[str]:
        return [
            r["email"]
            for r in table(svc.client.get(f"{base}/{partner}.csv", headers=svc.auth(key)))
        ]

    cai = supporter_id(HASH_KEY, "cai@example.org")
    withdrawn = datetime.now(UTC)  # after the fixture's signatures, before the later one
    data = {"supporter_id": cai, "channel": "share", "organization_id": svc.p1,
            "change": "unsubscribe", "at": withdrawn.isoformat()}  # fmt: skip
    svc.deliver("consent.changed", data, key=cai)
    assert exported(svc.p1, "p1") == ["ana@example.org"]
    assert exported(svc.p2, "p2") == ["ben@example.org", "cai@example.org"]  # still shared

    # Cai signs another petition after withdrawing, ticking the box again.
    later = svc.open_petition()
    response = svc.sign(later, "cai@example.org", consents={"partners": {"rainbow": True}})
    assert response.status_code == 202
    assert [r["email"] for r in table(svc.client.get(
        f"/api/v1/petitions/{later}/exports/partners/{svc.p1}.csv", headers=svc.auth("p1")
    ))] == ["cai@example.org"]  # fmt: skip


def test_exports_stream_in_batches_whatever_the_size(svc: Petitions) -> None:
    from services.petitions import exports

    petition_id = svc.open_petition()
    for i in range(25):
        svc.sign(petition_id, f"p{i}@example.org")
    chunks = list(exports.csv_lines(svc.deps, petition_id, exports.PARTNER, {}, batch=10))
    # A header, then one chunk per batch of 10 rows: memory holds one batch at a time.
    assert len(chunks) == 3
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert [r["email"] for r in rows] == [f"p{i}@example.org" for i in range(25)]


def test_an_export_for_excel_starts_with_a_byte_order_mark(svc: Petitions) -> None:
    petition_id = svc.open_petition()
    person = {"given_name": "美玲", "family_name": "陳", "email": "mei@example.org"}
    assert svc.sign(petition_id, "mei@example.org", person=person).status_code == 202
    full = f"/api/v1/petitions/{petition_id}/exports/signers.csv"
    partner = f"/api/v1/petitions/{petition_id}/exports/partners/{svc.p1}.csv"

    plain = svc.client.get(full, headers=svc.auth("lead"))
    assert plain.get_data()[:12] == b"signature_id"  # programs reading the file see no mark
    for url in (f"{full}?bom=true", f"{full}?purpose=delivery&bom=true", f"{partner}?bom=true"):
        response = svc.client.get(url, headers=svc.auth("lead"))
        assert response.status_code == 200
        body = response.get_data()
        assert body.startswith(b"\xef\xbb\xbf") and body[3:4].isalpha(), url  # one mark
    excel = svc.client.get(f"{full}?bom=true", headers=svc.auth("lead")).get_data()
    rows = list(csv.DictReader(io.StringIO(excel.decode("utf-8-sig"))))
    assert (rows[0]["given_name"], rows[0]["family_name"]) == ("美玲", "陳")

    refused = svc.client.get(f"{full}?bom=perhaps", headers=svc.auth("lead"))
    assert refused.status_code == 422
    assert "bom" in refused.get_json()["errors"]


def test_every_export_leaves_a_trace_the_lead_can_read(svc: Petitions, petition: str) -> None:
    """A leaked list must be traceable to whoever took it: each export is logged with the
    caller's organization, key and role; the lead's organizers read the log, nobody else."""
    base = f"/api/v1/petitions/{petition}/exports"
    assert svc.client.get(f"{base}/signers.csv", headers=svc.auth("lead")).status_code == 200
    delivery = f"{base}/signers.csv?purpose=delivery"
    assert svc.client.get(delivery, headers=svc.auth("lead")).status_code == 200
    assert (
        svc.client.get(f"{base}/partners/{svc.p1}.csv", headers=svc.auth("p1")).status_code == 200
    )
    assert (
        svc.client.get(f"{base}/partners/{svc.p2}.csv", headers=svc.auth("p1")).status_code == 403
    )
    log = svc.client.get(f"{base}/log", headers=svc.auth("lead"))
    assert log.status_code == 200
    entries = log.get_json()["_embedded"]["exports"]
    assert [(e["kind"], e["organization_id"], e["partner_organization_id"]) for e in entries] == [
        ("partner", svc.p1, svc.p1),
        ("delivery", svc.lead, None),
        ("contact", svc.lead, None),
    ]  # newest first; the refused one left none
    assert entries[0]["role"] == "partner" and entries[2]["role"] == "organizer"
    assert log.get_json()["total_records"] == 3
    for who in ("p1", "p1_organizer", "outsider"):
        assert svc.client.get(f"{base}/log", headers=svc.auth(who)).status_code == 403, who


def test_a_key_pulling_lists_over_and_over_gets_a_clear_429(make_service: Any) -> None:
    """A leaked key, or a runaway script: each key's exports are limited; another key's are
    not touched."""
    svc = make_service(export_limits="2 per hour")
    petition_id = svc.open_petition()
    path = f"/api/v1/petitions/{petition_id}/exports/signers.csv"
    statuses = [svc.client.get(path, headers=svc.auth("lead")).status_code for _ in range(2)]
    assert statuses == [200, 200]
    limited = svc.client.get(path, headers=svc.auth("lead"))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Too many exports" in limited.get_json()["message"]
    assert svc.client.get(path, headers=svc.auth("admin")).status_code == 200
    log = svc.client.get(f"/api/v1/petitions/{petition_id}/exports/log", headers=svc.auth("lead"))
    assert log.get_json()["total_records"] == 3  # the refused one left no trace of a list


def test_recruited_by_names_a_partner_that_has_left_as_the_counts_do(svc: Petitions) -> None:
    """A partner recruits, then leaves the campaign: its signers stay counted under it, and
    the lead's export still says who recruited them (it read as a direct signup)."""
    from tests.integration.petitions.conftest import at

    petition_id = svc.open_petition()
    for email, source in [("ana@example.org", "rb-ig"), ("ben@example.org", None)]:
        referrer = {"referrer_data": {"source": source}} if source else {}
        assert svc.sign(petition_id, email, **referrer).status_code == 202

    def recruited_by() -> dict[str, str]:
        url = f"/api/v1/petitions/{petition_id}/exports/signers.csv"
        rows = table(svc.client.get(url, headers=svc.auth("lead")))
        return {row["email"]: row["recruited_by"] for row in rows}

    assert recruited_by() == {"ana@example.org": "rainbow", "ben@example.org": ""}
    svc.deliver(
        "campaign.partner_removed",
        {"campaign_id": svc.campaign_id, "organization_id": svc.p1, "left": True, "at": at()},
    )
    svc.deps.coalitions.clear()  # what the web processes cache of a campaign lives 5 s
    assert svc.counts(petition_id)["by_partner"] == {svc.p1: 1, "direct": 1}
    assert recruited_by() == {"ana@example.org": "rainbow", "ben@example.org": ""}
