"""The embedded local run: the same service, migrations and flows on a SQLite file."""

from __future__ import annotations

import csv
import io

import pytest

from services.petitions import signing, usecases
from services.petitions.worker import Housekeeping
from tests.integration.petitions.conftest import Petitions

pytestmark = pytest.mark.integration


def test_an_export_since_a_time_in_another_zone_reads_it_as_that_moment(lite: Petitions) -> None:
    """SQLite keeps times without their offset: a `since` in Manila's time must still mean
    the same moment, not the same clock reading in UTC (eight hours off)."""
    from datetime import UTC, datetime, timedelta, timezone

    petition_id = lite.open_petition()
    assert lite.sign(petition_id, "early@example.org").status_code == 202
    mark = datetime.now(UTC)
    assert lite.sign(petition_id, "late@example.org").status_code == 202
    url = f"/api/v1/petitions/{petition_id}/exports/signers.csv"
    for zone in (UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-7))):
        since = mark.astimezone(zone).isoformat()
        response = lite.client.get(url, query_string={"since": since}, headers=lite.auth("lead"))
        assert response.status_code == 200, response.get_data(as_text=True)
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert [r["email"] for r in rows] == ["late@example.org"], since


def test_the_whole_flow_runs_on_sqlite(lite: Petitions) -> None:
    petition_id = lite.open_petition(goal=2, double_opt_in=True)
    assert (
        lite.sign(
            petition_id, "a@example.org", consents={"partners": {"rainbow": True}}
        ).status_code
        == 202
    )
    assert lite.sign(petition_id, "A@Example.org ").status_code == 202
    lite.sign(petition_id, "b@example.org")
    created = lite.outbox_events("signature.created")
    assert [e["duplicate"] for e in created] == [False, True, False]
    for event in (created[0], created[2]):
        path = event["confirm_url"].removeprefix("https://act.example.org")
        assert lite.client.post(path).status_code == 200
    counts = lite.counts(petition_id)
    assert (counts["total"], counts["pending"]) == (2, 0)
    daily = lite.client.get(
        f"/api/v1/petitions/{petition_id}/counts/daily?days=2&time_zone=Asia/Manila",
        headers=lite.auth("lead"),
    ).get_json()
    assert [d["total"] for d in daily["days"]] == [0, 2]  # both confirmed today, in Manila

    Housekeeping(lite.deps).run_once()
    assert [e["milestone"] for e in lite.outbox_events("petition.milestone_reached")] == [2]
    assert usecases.advance_milestones(lite.deps) == 0
    assert signing.expire_unconfirmed(lite.deps) == 0

    export = lite.client.get(
        f"/api/v1/petitions/{petition_id}/exports/partners/{lite.p1}.csv", headers=lite.auth("p1")
    )
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert [r["email"] for r in rows] == ["a@example.org"]
