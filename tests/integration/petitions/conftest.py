"""A petitions service on a fresh PostgreSQL database, its coalition seeded through its handlers."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.serving import BaseWSGIServer, make_server

from services.petitions import create_app, store
from services.petitions.bootstrap import Deps, PetitionsConfig, build
from services.petitions.handlers import handlers
from shared.auth import generate_key
from shared.config import Settings
from shared.events import Event
from shared.events.catalog import PETITIONS, type_name
from shared.kafka import ensure_topics, make_producer
from shared.migrate import upgrade
from shared.relay import OutboxRelay
from tests.support.kafka import read_all
from tests.support.polling import eventually

HASH_KEY = "test-hash-key"


def at() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Petitions:
    """One petitions service under test and the coalition it knows of."""

    deps: Deps
    app: Flask
    client: FlaskClient
    bootstrap: str
    campaign_id: str = "camp-1"
    lead: str = "org-lead"
    p1: str = "org-rainbow"
    p2: str = "org-kapwa"
    outsider: str = "org-outsider"
    keys: dict[str, str] = field(default_factory=dict)

    # -- events in, as the consumer would hand them over ----------------------------------------

    def deliver(self, short: str, data: dict[str, Any], key: str = "k") -> None:
        event = Event(type=type_name(short), key=key, data=data, source="/tests")
        with self.deps.engine.begin() as conn:
            for handler in handlers(self.deps)[event.type]:
                handler(event, conn)

    def seed(self) -> None:
        orgs = [
            (self.lead, "lead-org", "Lead Org", "lead"),
            (self.p1, "rainbow", "Rainbow Alliance", "rb"),
            (self.p2, "kapwa", "Kapwa Collective", "kp"),
            (self.outsider, "outsider", "Outsider", "out"),
        ]
        for org_id, slug, name, code in orgs:
            self.deliver(
                "organization.created",
                {
                    "organization_id": org_id,
                    "slug": slug,
                    "name": name,
                    "source_code": code,
                    "at": at(),
                },
            )
        self.campaign_event("campaign.created", "active")
        for name, role, org in [
            ("admin", "admin", "org-platform"),
            ("lead", "organizer", self.lead),
            ("p1_organizer", "organizer", self.p1),
            ("p1", "partner", self.p1),
            ("p2", "partner", self.p2),
            ("outsider", "organizer", self.outsider),
        ]:
            self.keys[name] = self.issue_key(role, org)

    def campaign_event(self, short: str, status: str) -> None:
        """Deliver an event about the seeded campaign (created, closed, ...) to the service."""
        self.deliver(
            short,
            {
                "campaign_id": self.campaign_id,
                "lead_organization_id": self.lead,
                "partner_organization_ids": [self.p1, self.p2],
                "titles": {"en": "Campaign"},
                "status": status,
                "at": at(),
            },
        )

    def minimal_petition(self) -> dict[str, Any]:
        """The smallest body that creates a petition in the seeded campaign."""
        return {
            "campaign_id": self.campaign_id,
            "default_locale": "en",
            "texts": {"en": {"title": "T", "text": "X"}},
        }

    def issue_key(self, role: str, org: str) -> str:
        new = generate_key(role)
        self.deliver(
            "apikey.issued",
            {
                "key_id": new.key_id,
                "prefix": new.prefix,
                "key_hash": new.key_hash,
                "role": role,
                "organization_id": org,
                "at": at(),
            },
        )
        return new.secret

    # -- HTTP ------------------------------------------------------------------------------------

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def create_petition(self, who: str = "lead", **overrides: Any) -> str:
        body = {
            "campaign_id": self.campaign_id,
            "default_locale": "en",
            "texts": {
                "en": {"title": "Protect our elders", "summary": "S", "text": "We ask…"},
                "es": {"title": "Protejan a nuestros mayores", "text": "Pedimos…"},
            },
            "targets": [{"name": "Mayor", "title": "Mayor of the city"}],
        }
        body.update(overrides)
        response = self.client.post("/api/v1/petitions", json=body, headers=self.auth(who))
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["petition_id"])

    def open_petition(self, **overrides: Any) -> str:
        petition_id = self.create_petition(**overrides)
        response = self.client.post(
            f"/api/v1/petitions/{petition_id}/publish", headers=self.auth("lead")
        )
        assert response.status_code == 200, response.get_json()
        return petition_id

    def sign(self, petition_id: str, email: str, **extra: Any) -> Any:
        body: dict[str, Any] = {
            "person": {"given_name": "Mari", "family_name": "Santos", "email": email}
        }
        headers = extra.pop("headers", {})
        body.update(extra)
        return self.client.post(
            f"/api/v1/petitions/{petition_id}/signatures", json=body, headers=headers
        )

    def counts(self, petition_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"/api/v1/petitions/{petition_id}/counts", headers=self.auth("lead")
        )
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())

    # -- the database and Kafka ------------------------------------------------------------------

    def rows(self, table: Any, **where: Any) -> list[Any]:
        query = select(table)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        with self.deps.engine.connect() as conn:
            return list(conn.execute(query))

    def outbox_events(self, short: str) -> list[dict[str, Any]]:
        with self.deps.engine.connect() as conn:
            rows = conn.execute(
                select(store.outbox.c.data).where(store.outbox.c.type == type_name(short))
            )
            return [json.loads(bytes(row.data)) for row in rows]

    def outbox_size(self) -> int:
        with self.deps.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(store.outbox)).scalar_one())

    def kafka_events(self, short: str, petition_id: str) -> list[dict[str, Any]]:
        """Return every event of a type about one petition that reached Kafka (after a drain),
        once per event id: the relay is at-least-once, and consumers drop a repeated id."""
        eventually(lambda: self.outbox_size() == 0, timeout=180, message="outbox drained")
        found: dict[str, dict[str, Any]] = {}
        for record in read_all(self.bootstrap, PETITIONS):
            headers = {k: bytes(v).decode() for k, v in record.headers or ()}
            data = json.loads(record.value)
            if headers.get("ce_type") == type_name(short) and data["petition_id"] == petition_id:
                found.setdefault(headers["ce_id"], data)
        return list(found.values())


def make_deps(database_url: str, bootstrap: str, **config: Any) -> Deps:
    settings = Settings.from_env("petitions").with_(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        hash_key=HASH_KEY,
        public_base_url="https://act.example.org",
    )
    defaults: dict[str, Any] = {"sign_limits": "100000 per second", "pool_size": 10}
    defaults.update(config)
    return build(settings, PetitionsConfig().with_(**defaults))


@pytest.fixture
def make_service(database_url: str, kafka_bootstrap: str) -> Iterator[Any]:
    """Return a factory of petitions services on one migrated database (config may differ)."""
    upgrade("petitions", database_url)
    made: list[Petitions] = []

    def make(**config: Any) -> Petitions:
        deps = make_deps(database_url, kafka_bootstrap, **config)
        app = create_app(deps=deps)
        service = Petitions(deps, app, app.test_client(), kafka_bootstrap)
        if made:
            service.keys = made[0].keys  # same database, same coalition and keys
        else:
            service.seed()
        made.append(service)
        return service

    yield make
    for service in made:
        service.deps.engine.dispose()


@pytest.fixture
def svc(make_service: Any) -> Petitions:
    return make_service()  # type: ignore[no-any-return]


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Petitions]:
    """The service on a SQLite file (the embedded local run), its coalition seeded."""
    url = f"sqlite:///{tmp_path / 'petitions.db'}"
    upgrade("petitions", url)
    upgrade("petitions", url)  # idempotent
    settings = Settings.from_env("petitions").with_(
        database_url=url, hash_key="k", public_base_url="https://act.example.org"
    )
    deps = build(settings, PetitionsConfig(sign_limits="1000 per second"))
    app = create_app(deps=deps)
    service = Petitions(deps, app, app.test_client(), "127.0.0.1:1")
    service.seed()
    yield service
    deps.engine.dispose()


@pytest.fixture
def relay(svc: Petitions) -> Iterator[OutboxRelay]:
    """Publish the outbox to the real Kafka while the test runs."""
    ensure_topics(svc.bootstrap, [PETITIONS])
    relay = OutboxRelay(
        svc.deps.engine,
        store.outbox,
        lambda: make_producer(svc.bootstrap, f"petitions-test-{uuid.uuid4().hex[:6]}"),
        idle_sleep=0.02,
    )
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    yield relay
    relay.stop()
    thread.join(timeout=30)


@pytest.fixture
def server(svc: Petitions) -> Iterator[str]:
    """Serve the app on a real threaded HTTP server; yield its base URL."""
    httpd: BaseWSGIServer = make_server("127.0.0.1", 0, svc.app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)
