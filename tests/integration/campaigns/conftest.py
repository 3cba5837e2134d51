"""The campaigns service on a fresh PostgreSQL database, driven over HTTP with Flask's client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from services.campaigns import create_app, operations, store
from services.campaigns.bootstrap import Deps, build
from shared.config import Settings
from shared.kafka import make_producer
from shared.migrate import upgrade
from shared.relay import OutboxRelay


@dataclass
class Http:
    """Flask's test client with a key: api.as_(secret).post(path, json=...)."""

    client: FlaskClient
    secret: str | None = None

    def as_(self, secret: str | None) -> Http:
        return Http(self.client, secret)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.secret}"} if self.secret else {}
        return {**headers, **(extra or {})}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        headers = self._headers(kw.pop("headers", None))
        return self.client.post(path, json=json if json is not None else {}, headers=headers, **kw)

    def patch(self, path: str, json: Any, **kw: Any) -> Any:
        return self.client.patch(path, json=json, headers=self._headers(kw.pop("headers", None)))

    def delete(self, path: str) -> Any:
        return self.client.delete(path, headers=self._headers(None))


@dataclass
class Service:
    deps: Deps
    http: Http
    keys: dict[str, str] = field(default_factory=dict)
    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def admin_key(self) -> str:
        """Bootstrap a platform organization and an admin key, as the CLI does."""
        if "admin" not in self.keys:
            now = self.deps.clock()
            with self.deps.engine.begin() as conn:
                org = operations.insert_organization(
                    conn, self.deps.outbox, {"slug": "platform", "name": "Platform"}, now
                )
                new = operations.insert_key(
                    conn, self.deps.outbox, org.organization_id, "admin", "test", "test", now
                )
            self.keys["admin"] = new.secret
        return self.keys["admin"]

    def as_(self, who: str | None) -> Http:
        return self.http.as_(self.keys[who] if who else None)

    def outbox_types(self) -> list[str]:
        with self.deps.engine.connect() as conn:
            rows = conn.execute(select(store.outbox_table.c.type).order_by(store.outbox_table.c.id))
            return [row.type.split(".", 1)[1].rsplit(".", 1)[0] for row in rows]

    def last_outbox_data(self) -> dict[str, Any]:
        """The data of the newest event staged in the outbox."""
        with self.deps.engine.connect() as conn:
            query = select(store.outbox_table.c.data).order_by(store.outbox_table.c.id.desc())
            raw = conn.execute(query.limit(1)).scalar_one()
        data: dict[str, Any] = json.loads(
            bytes(raw) if isinstance(raw, bytes | memoryview) else raw
        )
        return data

    def outbox_size(self) -> int:
        with self.deps.engine.connect() as conn:
            query = select(func.count()).select_from(store.outbox_table)
            return int(conn.execute(query).scalar_one())

    def relay(self) -> None:
        """Publish the outbox to Kafka now."""
        relay = OutboxRelay(
            self.deps.engine,
            store.outbox_table,
            lambda: make_producer(self.deps.settings.kafka_bootstrap_servers, "test-relay"),
        )
        with self.deps.engine.connect() as conn:
            while relay.publish_batch(conn):
                pass
        relay._drop_producer()


def settings_for(database_url: str, bootstrap: str) -> Settings:
    return Settings(
        service="campaigns",
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic_partitions=1,
    )


@pytest.fixture
def campaigns_db(database_url: str) -> str:
    upgrade("campaigns", database_url)
    return database_url


@pytest.fixture
def service(campaigns_db: str) -> Iterator[Service]:
    # Kafka is not needed to serve HTTP; tests that relay use kafka_bootstrap themselves.
    deps = build(settings_for(campaigns_db, "127.0.0.1:1"))
    app = create_app(deps=deps)
    yield Service(deps, Http(app.test_client()))
    deps.engine.dispose()


def org_body(slug: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": slug.replace("-", " ").title(),
        "slug": slug,
        "communities": ["Filipino", "LGBTQ+"],
        "contact_email": f"hello@{slug}.example.org",
        "postal_address": "1 Main St, Oakland, CA 94607, USA",
        **extra,
    }


def make_coalition(svc: Service) -> dict[str, Any]:
    """Three organizations (lead, partner, stranger), organizer and partner keys for each,
    and a campaign led by lead that partner has joined."""
    admin = svc.http.as_(svc.admin_key())
    for name in ("lead", "partner", "stranger"):
        slug = f"{name}-{uuid.uuid4().hex[:6]}"
        created = admin.post("/api/v1/organizations", json=org_body(slug))
        assert created.status_code == 201, created.json
        svc.orgs[name] = created.json
        for role in ("organizer", "partner"):
            issued = admin.post(
                "/api/v1/keys", json={"organization": slug, "role": role, "name": f"{name} {role}"}
            )
            assert issued.status_code == 201, issued.json
            svc.keys[f"{role}@{name}"] = issued.json["secret"]
    lead = svc.as_("organizer@lead")
    campaign = lead.post(
        "/api/v1/campaigns",
        json={
            "default_locale": "en",
            "titles": {"en": "Language access now", "tl": "Access sa wika ngayon"},
            "descriptions": {"en": "Ballots in every language."},
            "communities": ["Filipino"],
        },
    )
    assert campaign.status_code == 201, campaign.json
    cid = campaign.json["campaign_id"]
    invited = lead.post(
        f"/api/v1/campaigns/{cid}/partners", json={"organization": svc.orgs["partner"]["slug"]}
    )
    assert invited.status_code == 201, invited.json
    accepted = svc.as_("organizer@partner").post(
        f"/api/v1/campaigns/{cid}/partners/{svc.orgs['partner']['organization_id']}/accept"
    )
    assert accepted.status_code == 200, accepted.json
    return campaign.json


def scheduled_alert(svc: Service, send_at: datetime) -> dict[str, Any]:
    """Launch a coalition's campaign and schedule a bilingual alert of it for send_at."""
    cid = make_coalition(svc)["campaign_id"]
    lead = svc.as_("organizer@lead")
    assert lead.post(f"/api/v1/campaigns/{cid}/launch").status_code == 200
    draft = lead.post(f"/api/v1/campaigns/{cid}/alerts", json=bilingual_alert()).json
    scheduled = lead.post(
        f"/api/v1/alerts/{draft['alert_id']}/schedule", json={"send_at": send_at.isoformat()}
    )
    assert scheduled.status_code == 200 and scheduled.json["status"] == "scheduled"
    return scheduled.json  # type: ignore[no-any-return]


def bilingual_alert(**changes: Any) -> dict[str, Any]:
    body = {
        "name": "Call the county clerk",
        "channels": ["email", "sms"],
        "default_locale": "en",
        "content": {
            "en": {
                "email_subject": "{{ given_name }}, ballots in every language",
                "email_html": "<p>Call the clerk.</p><p>{{ unsubscribe_url }}</p>",
                "email_text": "Call the clerk. {{ unsubscribe_url }}",
                "sms_text": "{{ organization_name }}: call the county clerk today.",
                "sms_discreet_text": "Reminder: a call to make today.",
            },
            "tl": {
                "email_subject": "{{ given_name }}, balota sa bawat wika",
                "email_html": "<p>Tawagan ang clerk.</p><p>{{ unsubscribe_url }}</p>",
                "email_text": "Tawagan ang clerk. {{ unsubscribe_url }}",
                "sms_text": "{{ organization_name }}: tawagan ang county clerk ngayon.",
            },
        },
        "audience": {"countries": ["US"], "locales": ["en", "tl"]},
    }
    body.update(changes)
    return body
