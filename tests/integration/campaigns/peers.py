"""Stand-ins for petitions and notifications built only from the shared auth code.

Each has its own database with the shared key projection and a projection of campaigns, both
fed from Kafka by a real ConsumerRunner, and a few endpoints guarded the way the real services
guard theirs (`current_principal` + `shared.auth.authorize`). They prove that a key issued by
campaigns works elsewhere, that the matrix holds there, and that revocation reaches them.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Flask, jsonify
from kafka import KafkaConsumer
from sqlalchemy import JSON, Column, Connection, Engine, MetaData, String, Table, select

from shared.auth import (
    KeyVerifier,
    api_keys_table,
    authorize,
    current_principal,
    projection_handlers,
)
from shared.config import Settings
from shared.consumer import ConsumerRunner, RetryPolicy
from shared.db import make_engine
from shared.errors import NotFound, PermissionDenied
from shared.events import Event
from shared.events.catalog import CAMPAIGNS, CATALOG, type_name
from shared.kafka import dead_letter_topic, ensure_topics, make_consumer, retry_topic
from shared.outbox import processed_table
from shared.service import app_shell
from tests.support.polling import eventually

metadata = MetaData()
processed = processed_table(metadata)
keys = api_keys_table(metadata)
campaigns = Table(
    "campaign_projection",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("lead_organization_id", String(64), nullable=False),
    Column("partner_organization_ids", JSON, nullable=False),
)


def _on_campaign(event: Event, conn: Connection) -> None:
    data = event.data
    conn.execute(campaigns.delete().where(campaigns.c.campaign_id == data["campaign_id"]))
    conn.execute(
        campaigns.insert().values(
            campaign_id=data["campaign_id"],
            lead_organization_id=data["lead_organization_id"],
            partner_organization_ids=list(data["partner_organization_ids"]),
        )
    )


def _on_joined(event: Event, conn: Connection) -> None:
    row = conn.execute(
        select(campaigns).where(campaigns.c.campaign_id == event.data["campaign_id"])
    ).first()
    if row is not None:
        partners = sorted({*row.partner_organization_ids, event.data["organization_id"]})
        conn.execute(
            campaigns.update()
            .where(campaigns.c.campaign_id == row.campaign_id)
            .values(partner_organization_ids=partners)
        )


def handlers() -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = dict(projection_handlers(keys))
    for kind in ("created", "updated", "launched", "closed"):
        found[type_name(f"campaign.{kind}")] = [_on_campaign]
    found[type_name("campaign.partner_joined")] = [_on_joined]
    return found


@dataclass
class Peer:
    name: str
    engine: Engine
    app: Flask
    runner: ConsumerRunner
    thread: threading.Thread

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(timeout=30)
        self.engine.dispose()


def _members(engine: Engine, campaign_id: str) -> tuple[str, list[str]]:
    with engine.connect() as conn:
        row = conn.execute(select(campaigns).where(campaigns.c.campaign_id == campaign_id)).first()
    if row is None:
        raise NotFound("No such campaign")
    return row.lead_organization_id, [row.lead_organization_id, *row.partner_organization_ids]


def _petitions_routes(app: Flask, engine: Engine, verifier: KeyVerifier) -> None:
    @app.get("/api/v1/campaigns/<cid>/petitions")
    def read_petitions(cid: str) -> Any:
        principal = current_principal(verifier)
        authorize(principal, _members(engine, cid)[1], action="read this campaign's petitions")
        return jsonify({"petitions": []})

    @app.post("/api/v1/campaigns/<cid>/petitions")
    def create_petition(cid: str) -> Any:
        principal = current_principal(verifier)
        lead, _ = _members(engine, cid)
        authorize(principal, [lead], ("organizer",), "create petitions for this campaign")
        return jsonify({"petition_id": str(uuid.uuid4())}), 201

    @app.get("/api/v1/campaigns/<cid>/exports/<org>")
    def partner_export(cid: str, org: str) -> Any:
        principal = current_principal(verifier)
        if org not in _members(engine, cid)[1]:
            raise PermissionDenied("That organization is not in this campaign")
        authorize(principal, [org], ("organizer", "partner"), "export for that organization")
        return jsonify({"rows": 0})

    @app.get("/api/v1/petitions/<pid>")
    def public_petition(pid: str) -> Any:
        return jsonify({"petition_id": pid, "public": True})


def _notifications_routes(app: Flask, engine: Engine, verifier: KeyVerifier) -> None:
    @app.post("/api/v1/organizations/<org>/webhooks")
    def add_endpoint(org: str) -> Any:
        principal = current_principal(verifier)
        authorize(principal, [org], ("organizer", "partner"), "manage that organization's webhooks")
        return jsonify({"endpoint_id": str(uuid.uuid4())}), 201

    @app.get("/api/v1/organizations/<org>/webhooks")
    def list_endpoints(org: str) -> Any:
        principal = current_principal(verifier)
        authorize(principal, [org], ("organizer", "partner"), "see that organization's webhooks")
        return jsonify({"endpoints": []})


def start_peer(name: str, database_url: str, bootstrap: str) -> Peer:
    """Create the peer's schema, start its consumer thread and return it with its Flask app."""
    engine = make_engine(database_url)
    metadata.create_all(engine)
    settings = Settings(service=f"test-{name}", database_url=database_url)
    app, _ = app_shell(f"test-{name}", settings, engine)
    # The same TTL the real services use: the projection, not a cache, decides.
    verifier = KeyVerifier(engine, keys, ttl=1.0)
    routes = _petitions_routes if name == "petitions" else _notifications_routes
    routes(app, engine, verifier)
    group = f"{name}-{uuid.uuid4().hex[:6]}"
    topics = [CAMPAIGNS, retry_topic(CAMPAIGNS, group), dead_letter_topic(CAMPAIGNS, group)]
    # A consumer that joins its group before its metadata knows a topic gets no partitions of it
    # until the next metadata refresh (minutes). Create the topics first and have the consumer
    # load their metadata before it subscribes.
    ensure_topics(bootstrap, topics, partitions=1)

    def consumer() -> KafkaConsumer:
        found = make_consumer(bootstrap, group, f"{group}-consumer")
        eventually(
            lambda: all(found.partitions_for_topic(topic) for topic in topics),
            timeout=30,
            message="topic metadata",
        )
        return found

    runner = ConsumerRunner(
        engine=engine,
        processed=processed,
        registry=CATALOG,
        group=group,
        topics=[CAMPAIGNS],
        handlers=handlers(),
        bootstrap=bootstrap,
        retry=RetryPolicy(base_delay=0.2),
        partitions=1,
        consumer_factory=consumer,
    )
    thread = threading.Thread(target=runner.run, name=f"{name}-consumer", daemon=True)
    thread.start()
    return Peer(name, engine, app, runner, thread)
