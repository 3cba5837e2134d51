"""The campaigns worker with real Kafka: events for each state change, the scheduler publishing
each due alert exactly once with two workers running, and progress from notifications."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.events import Event
from shared.events.catalog import NOTIFICATIONS, type_name
from shared.events.envelope import format_time
from shared.kafka import ensure_topics, make_producer
from tests.integration.campaigns.conftest import Service, bilingual_alert, make_coalition
from tests.support.kafka import headers_of, read_all
from tests.support.polling import eventually

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def campaign_events(bootstrap: str, keys: set[str]) -> list[tuple[str, dict[str, Any], Any]]:
    """Return (short type, data, record) of the kinship.campaigns records with these keys, once
    per event id: the relay is at-least-once, and consumers drop a repeated id."""
    found: dict[str, tuple[str, dict[str, Any], Any]] = {}
    for record in read_all(bootstrap, "kinship.campaigns"):
        if record.key.decode() in keys:
            headers = headers_of(record)
            kind = headers["ce_type"].split(".", 1)[1].rsplit(".", 1)[0]
            found.setdefault(headers["ce_id"], (kind, json.loads(record.value), record))
    return list(found.values())


class Workers:
    """Worker processes of the campaigns service (python -m services.campaigns.worker)."""

    def __init__(self, database_url: str, bootstrap: str, logs: Path) -> None:
        self.env = {
            **os.environ,
            "CAMPAIGNS_DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "LOG_LEVEL": "INFO",
        }
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        log = open(self.logs / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.campaigns.worker"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        log.close()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.procs)


@pytest.fixture
def workers(campaigns_db: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[Workers]:
    found = Workers(campaigns_db, kafka_bootstrap, tmp_path)
    yield found
    found.stop()


def test_each_state_change_reaches_kafka_with_complete_data(
    service: Service, kafka_bootstrap: str
) -> None:
    service.deps.settings = service.deps.settings.with_(kafka_bootstrap_servers=kafka_bootstrap)
    campaign = make_coalition(service)
    cid = campaign["campaign_id"]
    lead = service.as_("organizer@lead")
    lead.patch(f"/api/v1/campaigns/{cid}", json={"titles": {"en": "Language access", "tl": "Wika"}})
    lead.post(f"/api/v1/campaigns/{cid}/launch")
    scheduled = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert()).json
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    lead.post(f"/api/v1/alerts/{scheduled['alert_id']}/schedule", json={"send_at": later})
    lead.post(f"/api/v1/alerts/{scheduled['alert_id']}/cancel")
    now = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert()).json
    lead.post(f"/api/v1/alerts/{now['alert_id']}/schedule")
    lead.post(f"/api/v1/campaigns/{cid}/close")
    renamed = lead.patch(
        f"/api/v1/organizations/{service.orgs['lead']['slug']}", json={"name": "Lead Org"}
    )
    assert renamed.status_code == 200
    lead_key = service.as_("partner@lead").get("/api/v1/keys/me").json
    assert (
        service.as_("organizer@lead").delete(f"/api/v1/keys/{lead_key['key_id']}").status_code
        == 204
    )
    service.relay()
    assert service.outbox_size() == 0
    orgs = {name: org["organization_id"] for name, org in service.orgs.items()}
    found = campaign_events(kafka_bootstrap, {cid, orgs["lead"], orgs["partner"]})
    by_key: dict[str, list[str]] = {}
    for kind, _data, record in found:
        by_key.setdefault(record.key.decode(), []).append(kind)
    assert by_key[cid] == [
        "campaign.created",
        "campaign.partner_joined",
        "campaign.updated",
        "campaign.launched",
        "alert.scheduled",
        "alert.cancelled",
        "alert.scheduled",
        "alert.published",
        "campaign.closed",
    ]
    assert by_key[orgs["lead"]] == [
        "organization.created",
        "apikey.issued",
        "apikey.issued",
        "organization.updated",
        "apikey.revoked",
    ]
    data = {kind: data for kind, data, record in found if record.key.decode() == cid}
    assert data["campaign.launched"]["titles"] == {"en": "Language access", "tl": "Wika"}
    assert data["campaign.launched"]["lead_organization_id"] == orgs["lead"]
    assert data["campaign.launched"]["partner_organization_ids"] == [orgs["partner"]]
    published = data["alert.published"]
    assert published["alert_id"] == now["alert_id"] and set(published["content"]) == {"en", "tl"}
    assert published["organization_id"] == orgs["lead"]
    assert published["audience"]["countries"] == ["US"]
    lead_org = service.orgs["lead"]
    # The footer as checked: organization.updated (keyed apart) may reach notifications later.
    assert published["sender"] == {
        "name": lead_org["name"],
        "postal_address": lead_org["postal_address"],
    }
    updated = next(d for k, d, r in found if k == "organization.updated")
    assert updated["name"] == "Lead Org" and updated["source_code"]
    org_created = next(
        d for k, d, r in found if k == "organization.created" and r.key.decode() == orgs["partner"]
    )
    assert org_created["source_code"] == service.orgs["partner"]["source_code"]
    issued = next(d for k, d, r in found if k == "apikey.issued")
    assert len(issued["key_hash"]) == 64 and "secret" not in issued
    for _kind, _, record in found:
        headers = headers_of(record)
        assert headers["ce_source"] == "/services/campaigns" and headers["ce_specversion"] == "1.0"


def test_two_workers_publish_each_due_alert_exactly_once(
    service: Service, workers: Workers, kafka_bootstrap: str
) -> None:
    campaign_ids, alert_ids = [], []
    start = datetime.now(UTC)
    # The ~80 calls below take no time on the API's clock, so each schedule stays in the
    # future however slow the machine; the workers, separate processes, keep the real one.
    real_clock, service.deps.clock = service.deps.clock, lambda: start
    send_at = (start + timedelta(seconds=12)).isoformat()
    for index in range(3):
        if index == 0:
            campaign = make_coalition(service)
        else:
            body = {"default_locale": "en", "titles": {"en": f"Campaign {index}"}}
            campaign = service.as_("organizer@lead").post("/api/v1/campaigns", json=body).json
        cid = campaign["campaign_id"]
        campaign_ids.append(cid)
        lead = service.as_("organizer@lead")
        assert lead.post(f"/api/v1/campaigns/{cid}/launch").status_code == 200
        for _ in range(10):
            alert = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert()).json
            scheduled = lead.post(
                f"/api/v1/alerts/{alert['alert_id']}/schedule", json={"send_at": send_at}
            )
            assert scheduled.status_code == 200 and scheduled.json["status"] == "scheduled"
            alert_ids.append(alert["alert_id"])
    service.deps.clock = real_clock
    workers.start()
    workers.start()

    def statuses() -> Counter[str]:
        return Counter(
            service.as_("organizer@lead").get(f"/api/v1/alerts/{aid}").json["status"]
            for aid in alert_ids
        )

    eventually(lambda: statuses() == Counter({"published": 30}), timeout=90, message="published")
    eventually(lambda: service.outbox_size() == 0, timeout=180, message="outbox relayed")
    assert workers.alive()
    published = [
        data["alert_id"]
        for kind, data, _ in campaign_events(kafka_bootstrap, set(campaign_ids))
        if kind == "alert.published"
    ]
    assert sorted(published) == sorted(alert_ids)  # each one once, none twice
    for aid in alert_ids[:3]:
        body = service.as_("organizer@lead").get(f"/api/v1/alerts/{aid}").json
        assert body["published_at"] >= body["send_at"]


def progress_event(alert: dict[str, Any], at: datetime, **counts: Any) -> Event:
    data = {
        "alert_id": alert["alert_id"],
        "campaign_id": alert["campaign_id"],
        "total": 0,
        "queued": 0,
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "suppressed": 0,
        **counts,
        "at": format_time(at),
    }
    return Event(
        type_name("alert.progressed"), alert["campaign_id"], data, "/services/notifications"
    )


def test_progress_comes_from_notifications_events(
    service: Service, workers: Workers, kafka_bootstrap: str
) -> None:
    campaign = make_coalition(service)
    cid = campaign["campaign_id"]
    lead = service.as_("organizer@lead")
    lead.post(f"/api/v1/campaigns/{cid}/launch")
    alert = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert()).json
    assert lead.post(f"/api/v1/alerts/{alert['alert_id']}/schedule").json["status"] == "published"
    ensure_topics(kafka_bootstrap, [NOTIFICATIONS])
    workers.start()
    start = datetime.now(UTC)
    unknown = str(uuid.uuid4())
    newest = {
        "total": 120,
        "queued": 10,
        "sent": 100,
        "delivered": 90,
        "failed": 4,
        "suppressed": 6,
        "deferred": 8,  # texts held for their recipients' morning, among the queued
        "status": "sending",
    }
    events = [
        progress_event(alert, start, total=120, queued=120),
        progress_event(alert, start + timedelta(seconds=2), **newest),
        # Arrives last but was measured earlier: it must not roll the counts back.
        progress_event(alert, start + timedelta(seconds=1), total=120, queued=60, sent=60),
        progress_event({**alert, "alert_id": unknown}, start, total=5),
    ]
    producer = make_producer(kafka_bootstrap, "test-notifications")
    for event in events:
        producer.send(
            NOTIFICATIONS, key=event.key.encode(), value=event.value(), headers=event.headers()
        )
    producer.flush()
    producer.close()

    def progress() -> dict[str, Any]:
        found = lead.get(f"/api/v1/alerts/{alert['alert_id']}").json["progress"]
        return {k: v for k, v in found.items() if k != "updated_at"}

    eventually(lambda: progress() == newest, timeout=180, message="progress applied")

    # The late, older report and the unknown alert's (same partition, after it) were consumed
    # and changed nothing.
    def skipped() -> set[str]:
        # These two reports' lines only: the topic is the session's, other tests' reports too.
        lines = [
            line
            for p in workers.logs.glob("worker-*.log")
            for line in p.read_text(errors="replace").splitlines()
            if "alert progress not applied" in line
        ]
        return {i for i in (alert["alert_id"], unknown) if any(i in line for line in lines)}

    eventually(
        lambda: skipped() == {alert["alert_id"], unknown},
        timeout=180,
        message="the stale report and the unknown alert's each skipped",
    )
    assert progress() == newest and workers.alive()
    # Notifications reports it done: nothing is left to stop, and cancelling says so.
    finished = {**newest, "queued": 0, "sent": 110, "status": "done"}
    producer = make_producer(kafka_bootstrap, "test-notifications")
    done = progress_event(alert, start + timedelta(seconds=3), **finished)
    producer.send(NOTIFICATIONS, key=done.key.encode(), value=done.value(), headers=done.headers())
    producer.flush()
    producer.close()
    eventually(lambda: progress() == finished, timeout=180, message="the last report applied")
    refused = lead.post(f"/api/v1/alerts/{alert['alert_id']}/cancel")
    assert refused.status_code == 409 and "nothing is left to stop" in refused.json["message"]
