"""The authorization matrix over HTTP across the three services, and revocation everywhere.

Campaigns is the real service. Petitions and notifications are stand-ins built from the shared
auth code (see peers.py): their own key projection, fed from Kafka by the real consumer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from services.campaigns import store
from shared.events.catalog import CAMPAIGNS
from shared.kafka import make_producer
from shared.relay import OutboxRelay
from tests.integration.campaigns.conftest import Service, bilingual_alert, make_coalition
from tests.integration.campaigns.peers import Peer, keys, start_peer
from tests.support.kafka import caught_up
from tests.support.polling import eventually
from tests.support.postgres import create_database

pytestmark = pytest.mark.integration

WHO = (
    "none",
    "garbage",
    "admin",
    "organizer@lead",
    "partner@lead",
    "organizer@partner",
    "partner@partner",
    "organizer@stranger",
    "partner@stranger",
)


@dataclass
class World:
    campaigns: Service
    peers: dict[str, Peer]
    campaign: dict[str, Any]
    alert: dict[str, Any]
    bootstrap: str

    def client(self, service: str) -> FlaskClient:
        if service == "campaigns":
            return self.campaigns.http.client
        return self.peers[service].app.test_client()

    def call(self, service: str, method: str, path: str, who: str, json: Any = None) -> Any:
        headers = {}
        if who == "garbage":
            headers["Authorization"] = "Bearer kin_org_deadbeef_not-a-real-key"
        elif who != "none":
            headers["Authorization"] = f"Bearer {self.campaigns.keys[who]}"
        client = self.client(service)
        return client.open(path, method=method, json=json, headers=headers)

    def missing_keys(self, peer: Peer) -> set[str]:
        """This world's active keys the peer has not projected yet. (The peer's fresh consumer
        group also reads earlier tests' keys from the topic: a count would be met by those.)"""
        with self.campaigns.deps.engine.connect() as conn:
            issued = conn.execute(
                select(store.api_keys.c.key_id).where(store.api_keys.c.revoked_at.is_(None))
            ).scalars()
            wanted = set(issued)
        with peer.engine.connect() as conn:
            held = conn.execute(
                select(keys.c.key_id).where(keys.c.key_id.in_(wanted), keys.c.revoked_at.is_(None))
            ).scalars()
            return wanted - set(held)


@pytest.fixture
def world(service: Service, pg_admin_url: str, kafka_bootstrap: str) -> Iterator[World]:
    peers = {
        name: start_peer(name, create_database(pg_admin_url), kafka_bootstrap)
        for name in ("petitions", "notifications")
    }
    relay = OutboxRelay(
        service.deps.engine,
        store.outbox_table,
        lambda: make_producer(kafka_bootstrap, "campaigns-relay", linger_ms=0),
        idle_sleep=0.02,
    )
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        campaign = make_coalition(service)
        lead = service.as_("organizer@lead")
        alert = lead.post(
            f"/api/v1/campaigns/{campaign['campaign_id']}/alerts", json=bilingual_alert()
        )
        world = World(service, peers, campaign, alert.json, kafka_bootstrap)
        # Every active key (admin + 6) reaches both peers, and the coalition reaches petitions.
        for peer in peers.values():
            eventually(lambda p=peer: not world.missing_keys(p), timeout=180, message="keys")
        petitions = f"/api/v1/campaigns/{campaign['campaign_id']}/petitions"
        eventually(
            lambda: world.call("petitions", "GET", petitions, "partner@partner").status_code == 200,
            timeout=180,
            message="coalition projected",
        )
        yield world
    finally:
        relay.stop()
        thread.join(timeout=30)
        for peer in peers.values():
            peer.stop()


def expect(
    world: World, service: str, method: str, path: str, allowed: dict[str, int], json: Any = None
) -> list[str]:
    """Call as every principal; return the mismatches (who, expected, got)."""
    wrong = []
    for who in WHO:
        want = 401 if who in ("none", "garbage") else allowed.get(who, 403)
        response = world.call(service, method, path, who, json)
        if response.status_code != want:
            wrong.append(
                f"{service} {method} {path} as {who}: want {want}, got {response.status_code}"
            )
        elif want in (401, 403):
            body = response.json
            if not (body["code"] == want and body["status"] and body["message"]):
                wrong.append(f"{service} {method} {path} as {who}: error shape {body}")
    return wrong


READERS = {who: 200 for who in WHO[2:7]}  # admin, lead's keys, joined partner's keys
LEAD_ORGANIZER = {"admin": 200, "organizer@lead": 200}


def test_authorization_matrix_across_the_three_services(world: World) -> None:
    cid = world.campaign["campaign_id"]
    aid = world.alert["alert_id"]
    orgs = world.campaigns.orgs
    lead_slug, partner_id = orgs["lead"]["slug"], orgs["partner"]["organization_id"]
    lead_id, stranger_id = orgs["lead"]["organization_id"], orgs["stranger"]["organization_id"]
    wrong: list[str] = []
    # -- campaigns (the real service) ---------------------------------------------------------
    wrong += expect(world, "campaigns", "GET", f"/api/v1/campaigns/{cid}", READERS)
    wrong += expect(world, "campaigns", "GET", f"/api/v1/campaigns/{cid}/partners", READERS)
    wrong += expect(world, "campaigns", "GET", f"/api/v1/campaigns/{cid}/alerts", READERS)
    wrong += expect(world, "campaigns", "GET", f"/api/v1/alerts/{aid}", READERS)
    wrong += expect(
        world,
        "campaigns",
        "PATCH",
        f"/api/v1/campaigns/{cid}",
        LEAD_ORGANIZER,
        {"communities": ["Filipino"]},
    )
    wrong += expect(
        world, "campaigns", "PATCH", f"/api/v1/alerts/{aid}", LEAD_ORGANIZER, {"name": "Renamed"}
    )
    wrong += expect(
        world,
        "campaigns",
        "POST",
        f"/api/v1/campaigns/{cid}/alerts",
        {"admin": 201, "organizer@lead": 201},
        bilingual_alert(),
    )
    # Creating a campaign: an organizer leads for its own organization only.
    wrong += expect(
        world,
        "campaigns",
        "POST",
        "/api/v1/campaigns",
        {"admin": 201, "organizer@lead": 201},
        {"lead_organization": lead_slug, "default_locale": "en", "titles": {"en": "T"}},
    )
    wrong += expect(
        world,
        "campaigns",
        "POST",
        "/api/v1/campaigns",
        {"admin": 201, "organizer@lead": 201, "organizer@partner": 201, "organizer@stranger": 201},
        {"default_locale": "en", "titles": {"en": "T"}},
    )
    # Organizations: a directory any key reads; only admins create; organizers change their own.
    wrong += expect(world, "campaigns", "GET", "/api/v1/organizations", {w: 200 for w in WHO[2:]})
    wrong += expect(
        world,
        "campaigns",
        "PATCH",
        f"/api/v1/organizations/{lead_slug}",
        LEAD_ORGANIZER,
        {"contact_email": "team@lead.example.org"},
    )
    # Keys: organizers manage their own organization's organizer and partner keys.
    wrong += expect(
        world,
        "campaigns",
        "POST",
        "/api/v1/keys",
        {"admin": 201, "organizer@lead": 201},
        {"organization": lead_slug, "role": "partner"},
    )
    wrong += expect(
        world,
        "campaigns",
        "POST",
        "/api/v1/keys",
        {"admin": 201},
        {"organization": lead_slug, "role": "admin"},
    )
    wrong += expect(
        world, "campaigns", "GET", f"/api/v1/keys?organization={lead_slug}", LEAD_ORGANIZER
    )
    wrong += expect(world, "campaigns", "GET", "/api/v1/keys/me", {w: 200 for w in WHO[2:]})
    # -- petitions (shared auth + its projection) ----------------------------------------------
    wrong += expect(world, "petitions", "GET", f"/api/v1/campaigns/{cid}/petitions", READERS)
    wrong += expect(
        world,
        "petitions",
        "POST",
        f"/api/v1/campaigns/{cid}/petitions",
        {"admin": 201, "organizer@lead": 201},
    )
    wrong += expect(
        world,
        "petitions",
        "GET",
        f"/api/v1/campaigns/{cid}/exports/{partner_id}",
        {"admin": 200, "organizer@partner": 200, "partner@partner": 200},
    )
    wrong += expect(
        world,
        "petitions",
        "GET",
        f"/api/v1/campaigns/{cid}/exports/{lead_id}",
        {"admin": 200, "organizer@lead": 200, "partner@lead": 200},
    )
    wrong += expect(
        world, "petitions", "GET", f"/api/v1/campaigns/{cid}/exports/{stranger_id}", {"admin": 403}
    )
    # -- notifications (shared auth + its projection) ------------------------------------------
    for org, owners in ((partner_id, "partner"), (stranger_id, "stranger")):
        mine = {"admin": 201, f"organizer@{owners}": 201, f"partner@{owners}": 201}
        wrong += expect(
            world, "notifications", "POST", f"/api/v1/organizations/{org}/webhooks", mine
        )
        readers = {who: 200 for who in mine}
        wrong += expect(
            world, "notifications", "GET", f"/api/v1/organizations/{org}/webhooks", readers
        )
    assert wrong == []
    # Public endpoints need no key.
    assert world.client("petitions").get("/api/v1/petitions/p1").status_code == 200
    for name in ("campaigns", "petitions", "notifications"):
        assert world.client(name).get("/healthz").status_code == 200
    assert world.client("campaigns").get("/api/v1/openapi.json").status_code == 200


def test_keys_listing_shows_only_the_callers_organization(world: World) -> None:
    listed = world.call("campaigns", "GET", "/api/v1/keys", "organizer@lead").json
    lead = world.campaigns.orgs["lead"]["organization_id"]
    found = listed["_embedded"]["api_keys"]
    assert found and {k["organization_id"] for k in found} == {lead}
    assert all("secret" not in k and "key_hash" not in k for k in found)
    other = world.campaigns.orgs["partner"]["slug"]
    assert (
        world.call(
            "campaigns", "GET", f"/api/v1/keys?organization={other}", "organizer@lead"
        ).status_code
        == 403
    )


def test_invitations_are_answered_by_the_invited_organization_only(world: World) -> None:
    cid = world.campaign["campaign_id"]
    stranger = world.campaigns.orgs["stranger"]
    path = f"/api/v1/campaigns/{cid}/partners"
    assert (
        world.call("campaigns", "GET", f"/api/v1/campaigns/{cid}", "organizer@stranger").status_code
        == 403
    )
    for who in ("organizer@partner", "partner@lead", "organizer@stranger"):
        invite = world.call("campaigns", "POST", path, who, {"organization": stranger["slug"]})
        assert invite.status_code == 403, who
    invite = world.call(
        "campaigns", "POST", path, "organizer@lead", {"organization": stranger["slug"]}
    )
    assert invite.status_code == 201 and invite.json["status"] == "invited"
    # Invited: the stranger may now read the campaign, to decide.
    read = f"/api/v1/campaigns/{cid}"
    assert world.call("campaigns", "GET", read, "partner@stranger").status_code == 200
    # Sent to the wrong organization: the lead withdraws it, and the stranger reads no more
    # (nor accepts); only the lead's organizers may withdraw, and it can be sent again.
    withdraw = f"{path}/{stranger['organization_id']}/withdraw"
    for who in ("organizer@stranger", "organizer@partner", "partner@lead"):
        assert world.call("campaigns", "POST", withdraw, who).status_code == 403, who
    withdrawn = world.call("campaigns", "POST", withdraw, "organizer@lead")
    assert withdrawn.status_code == 200 and withdrawn.json["status"] == "withdrawn"
    assert world.call("campaigns", "GET", read, "partner@stranger").status_code == 403
    accept = f"{path}/{stranger['organization_id']}/accept"
    assert world.call("campaigns", "POST", accept, "organizer@stranger").status_code == 409
    assert world.call("campaigns", "POST", withdraw, "organizer@lead").status_code == 409
    again = world.call(
        "campaigns", "POST", path, "organizer@lead", {"organization": stranger["slug"]}
    )
    assert again.status_code == 201 and again.json["status"] == "invited"
    for who in ("organizer@lead", "partner@stranger", "organizer@partner"):
        assert world.call("campaigns", "POST", accept, who).status_code == 403, who
    joined = world.call("campaigns", "POST", accept, "organizer@stranger")
    assert joined.status_code == 200 and joined.json["status"] == "joined"
    assert world.call("campaigns", "POST", accept, "organizer@stranger").status_code == 409
    # The new partner's keys now reach the campaign's petitions too, once the event lands.
    eventually(
        lambda: (
            world.call(
                "petitions", "GET", f"/api/v1/campaigns/{cid}/petitions", "partner@stranger"
            ).status_code
            == 200
        ),
        timeout=180,
        message="partner_joined projected",
    )


def test_a_revoked_key_is_refused_by_every_service_within_five_seconds(world: World) -> None:
    cid = world.campaign["campaign_id"]
    probes = {
        "campaigns": ("GET", f"/api/v1/campaigns/{cid}"),
        "petitions": ("GET", f"/api/v1/campaigns/{cid}/petitions"),
        "notifications": (
            "GET",
            f"/api/v1/organizations/{world.campaigns.orgs['lead']['organization_id']}/webhooks",
        ),
    }
    for name, (method, path) in probes.items():
        assert world.call(name, method, path, "organizer@lead").status_code == 200, name
    me = world.call("campaigns", "GET", "/api/v1/keys/me", "organizer@lead").json
    # What is timed is the revocation's own trip: not a backlog of earlier tests' events that
    # a peer's fresh group is still reading, nor the coalition's events still being relayed.
    eventually(lambda: world.campaigns.outbox_size() == 0, message="outbox relayed")
    for peer in world.peers.values():
        eventually(
            lambda p=peer: caught_up(world.bootstrap, p.runner.group, CAMPAIGNS),
            timeout=180,
            message=f"{peer.name} caught up",
        )
    started = time.monotonic()
    revoked = world.call("campaigns", "DELETE", f"/api/v1/keys/{me['key_id']}", "organizer@lead")
    assert revoked.status_code == 204
    refused_after: dict[str, float] = {}
    while len(refused_after) < len(probes) and time.monotonic() - started < 10:
        for name, (method, path) in probes.items():
            if name not in refused_after:
                response = world.call(name, method, path, "organizer@lead")
                if response.status_code == 401:
                    refused_after[name] = time.monotonic() - started
        time.sleep(0.05)
    print(f"revocation refused after: {refused_after}")
    assert set(refused_after) == set(probes), refused_after
    assert max(refused_after.values()) < 5.0, refused_after
    # Others' keys are untouched.
    assert world.call("petitions", "GET", probes["petitions"][1], "partner@lead").status_code == 200
