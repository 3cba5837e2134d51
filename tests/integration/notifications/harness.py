"""A running notifications service for integration tests: real PostgreSQL, Kafka and SDKs."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Engine, func, select

from services.notifications import create_app
from services.notifications.bootstrap import Deps, build
from services.notifications.config import NotificationConfig
from services.notifications.store import api_keys
from services.notifications.worker import parts
from shared.auth import generate_key, store_issued
from shared.config import Settings
from shared.db import make_engine
from shared.events import Event
from shared.events.catalog import CAMPAIGNS, DISPATCH_TOPICS, NOTIFICATIONS, PETITIONS, type_name
from shared.events.envelope import format_time, utcnow
from shared.kafka import ensure_topics
from shared.migrate import upgrade
from shared.privacy import supporter_id
from shared.worker import Stoppable
from tests.fakes.providers import FakeRecords
from tests.support.polling import eventually

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-test-token"
SENDGRID_KEY = "SG.test"
FROM_NUMBER = "+15557654321"
HASH_KEY = "test-hash-key"
BASE_URL = "https://notify.example.org"
SOURCE = "/tests/producer"
# The SendGrid Event Webhook's ECDSA key pair: SendGrid signs, we hold the public half.
WEBHOOK_KEY = ec.generate_private_key(ec.SECP256R1())
WEBHOOK_PUBLIC_KEY = base64.b64encode(
    WEBHOOK_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def sendgrid_signature(payload: str, timestamp: str | None = None) -> dict[str, str]:
    """Return the headers SendGrid would send with a signed Event Webhook post."""
    timestamp = timestamp or str(int(time.time()))
    signed = WEBHOOK_KEY.sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signed).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def twilio_signature(path: str, form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    """Return the X-Twilio-Signature Twilio would send for a form post to path."""
    from twilio.request_validator import RequestValidator

    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(BASE_URL + path, form)}


def settings_for(database_url: str, bootstrap: str, sendgrid: str, twilio: str) -> Settings:
    return Settings(
        service="notifications",
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        hash_key=HASH_KEY,
        public_base_url=BASE_URL,
        email_backend="sendgrid",
        sms_backend="twilio",
        sendgrid_api_key=SENDGRID_KEY,
        sendgrid_api_host=sendgrid,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base_url=twilio,
        twilio_from_number=FROM_NUMBER,
    )


def fast_config(**changes: Any) -> NotificationConfig:
    base = NotificationConfig(
        retry_base_delay=0.05,
        retry_max_delay=2.0,
        provider_timeout=30.0,  # the default: a starved in-process fake is not a fault under test
        sms_rate_per_second=200.0,
        poll_interval=0.05,
        poll_ceiling=0.2,
        progress_interval=0.2,
        email_sender_threads=1,
        sms_sender_threads=1,
        dispatch_partitions=6,
        sendgrid_webhook_public_key=WEBHOOK_PUBLIC_KEY,
        # Small, so an alert's audience is read in both parts, a batch spanning the two.
        expander_head_rows=700,
    )
    return base.with_(**changes)


def build_sender(service: Service, channel: str = "email") -> Any:
    """Return a fresh SendGrid (or Twilio) sender for a service's settings."""
    from services.notifications.bootstrap import email_sender, sms_sender

    build = sms_sender if channel == "sms" else email_sender
    return build(service.deps.settings, service.deps.config, service.engine)


def start_groups_at_end(bootstrap: str, groups: list[str], topics: list[str]) -> None:
    """Make new consumer groups start after everything earlier tests produced."""
    for group in groups:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
        try:
            tps = [
                TopicPartition(t, p)
                for t in topics
                for p in (consumer.partitions_for_topic(t) or set())
            ]
            ends = consumer.end_offsets(tps)
            consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in ends.items()})
        finally:
            consumer.close()


@dataclass
class Service:
    deps: Deps
    app: Flask
    fakes: FakeRecords
    bootstrap: str
    group: str
    producer: KafkaProducer
    running: list[tuple[Stoppable, threading.Thread]] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.deps.engine

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def start(self, role: str = "all") -> None:
        """Start the role's parts, and return once each of their consumer groups holds its
        partitions: a test's own wait then measures the service, not a group's first join,
        which on a loaded broker has taken over a minute."""
        for part in parts(self.deps, role, group=self.group):
            thread = threading.Thread(target=part.run, name=type(part).__name__, daemon=True)
            thread.start()
            self.running.append((part, thread))
        config = self.deps.config
        members = {
            "core": {self.group: 1},
            "email": {f"{self.group}-email-sender": config.email_sender_threads},
            "sms": {f"{self.group}-sms-sender": config.sms_sender_threads},
        }
        groups = {
            group: count
            for name, wanted in members.items()
            if role in ("all", name)
            for group, count in wanted.items()
        }
        eventually(lambda: groups_stable(self.bootstrap, groups), timeout=180, interval=0.2)

    def stop(self) -> None:
        for part, _ in self.running:
            part.stop()
        for _, thread in self.running:
            thread.join(timeout=30)
        self.running.clear()

    def publish(self, *events: Event) -> None:
        topics = {
            "organization": CAMPAIGNS,
            "campaign": CAMPAIGNS,
            "alert": CAMPAIGNS,
            "apikey": CAMPAIGNS,
            "petition": PETITIONS,
            "signature": PETITIONS,
        }
        for event in events:
            entity = event.type.split(".")[1]
            self.producer.send(
                topics[entity], key=event.key.encode(), value=event.value(), headers=event.headers()
            )
        self.producer.flush(timeout=30)

    def rows(self, table: Any, *where: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(table).where(*where)).all())

    def count(self, table: Any, *where: Any) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).select_from(table).where(*where)
            return int(conn.execute(query).scalar_one())


@contextmanager
def running_service(
    database_url: str,
    bootstrap: str,
    sendgrid_url: str,
    twilio_url: str,
    fakes_db: Path,
    config: NotificationConfig | None = None,
    clock: Any = None,
) -> Iterator[Service]:
    settings = settings_for(database_url, bootstrap, sendgrid_url, twilio_url)
    upgrade("notifications", database_url)
    config = config or fast_config()
    engine = make_engine(database_url, pool_size=config.pool_size)
    deps = build(settings, config, engine)
    if clock is not None:
        deps.clock = clock
    group = f"nf-test-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [CAMPAIGNS, PETITIONS, NOTIFICATIONS], 3)
    ensure_topics(bootstrap, [*DISPATCH_TOPICS.values()], deps.config.dispatch_partitions)
    start_groups_at_end(
        bootstrap,
        [group, f"{group}-email-sender", f"{group}-sms-sender"],
        [CAMPAIGNS, PETITIONS, NOTIFICATIONS, *DISPATCH_TOPICS.values()],
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    service = Service(
        deps, create_app(deps=deps), FakeRecords(fakes_db), bootstrap, group, producer
    )
    try:
        yield service
    finally:
        service.stop()
        producer.close(timeout=10)
        engine.dispose()


# -- events other services would publish -----------------------------------------------------------


def event(short: str, key: str, **data: Any) -> Event:
    data.setdefault("at", format_time(utcnow()))
    return Event(type=type_name(short), key=key, data=data, source=SOURCE)


def organization(org_id: str, name: str = "Rainbow Bridge", **extra: Any) -> Event:
    return event(
        "organization.created",
        org_id,
        organization_id=org_id,
        slug=org_id,
        name=name,
        contact_email=extra.get("contact_email", f"team@{org_id}.example.org"),
        postal_address=extra.get("postal_address", "1 Unity Way, Oakland, CA 94601, USA"),
    )


def petition(petition_id: str, campaign_id: str, org_id: str, double_opt_in: bool = False) -> Event:
    return event(
        "petition.published",
        petition_id,
        petition_id=petition_id,
        campaign_id=campaign_id,
        organization_id=org_id,
        titles={"en": "Fund language access", "zh-Hant": "\u8cc7\u52a9\u8a9e\u8a00\u670d\u52d9"},
        default_locale="en",
        goal=100,
        double_opt_in=double_opt_in,
    )


def signature(
    email: str,
    petition_id: str,
    campaign_id: str,
    org_id: str,
    *,
    phone: str | None = None,
    locale: str = "en",
    sms: bool = False,
    email_ok: bool = True,
    duplicate: bool = False,
    double_opt_in: bool = False,
    given_name: str | None = "Alex",
    pronouns: str | None = None,
    country: str = "US",
    postal_code: str | None = "94601",
    discreet: bool = False,
    language: str | None = None,
    region: str | None = None,
) -> Event:
    sid = supporter_id(HASH_KEY, email)
    return event(
        "signature.created",
        sid,
        signature_id=uuid.uuid4().hex,
        petition_id=petition_id,
        campaign_id=campaign_id,
        organization_id=org_id,
        supporter_id=sid,
        duplicate=duplicate,
        double_opt_in=double_opt_in,
        confirm_url=f"https://sign.example.org/confirm/{uuid.uuid4().hex}"
        if double_opt_in
        else None,
        locale=locale,
        person={
            "given_name": given_name,
            "family_name": "Nguyen",
            "email": email,
            "phone": phone,
            "postal_code": postal_code,
            "country": country,
            "region": region,
            "language": language or locale,
            "pronouns": pronouns,
            "discreet": discreet,
        },
        consents={"email": email_ok, "sms": sms, "partner_organization_ids": []},
        attribution={"source": None, "partner_organization_id": None},
    )


def alert(
    alert_id: str,
    campaign_id: str,
    org_id: str,
    channels: list[str],
    *,
    audience: dict[str, Any] | None = None,
    sender: dict[str, Any] | None = None,
    **content: Any,
) -> Event:
    body = {
        "email_subject": "Call your council member today",
        "email_html": "<p>The vote on language access is Tuesday.</p>",
        "email_text": "The vote on language access is Tuesday.",
        "discreet_email_subject": "An update for you",
        "sms_text": "The language access vote is Tuesday: call now.",
        "sms_discreet_text": "A reminder from your group.",
    }
    body.update(content)
    return event(
        "alert.published",
        campaign_id,
        alert_id=alert_id,
        campaign_id=campaign_id,
        organization_id=org_id,
        channels=channels,
        default_locale="en",
        content={"en": body},
        audience=audience or {},
        **({"sender": sender} if sender is not None else {}),
    )


def seed_audience(
    engine: Engine,
    campaign_id: str,
    org_id: str,
    count: int,
    *,
    prefix: str = "s",
    phone_every: int = 0,
    discreet_every: int = 0,
    time_zone: str = "America/New_York",
    sms_consent: bool = True,
    email_consent: bool = True,
) -> list[dict[str, Any]]:
    """Insert supporters of a campaign straight into the projection (fast, for fan-out tests)."""
    from services.notifications.store import consents, supporter_campaigns, supporters
    from shared.privacy import email_hash, phone_hash

    now = utcnow()
    people, links, grants = [], [], []
    for i in range(count):
        email = f"{prefix}{i:07d}@example.org"
        sid = supporter_id(HASH_KEY, email)
        phone = f"+1415555{i:04d}" if phone_every and i % phone_every == 0 else None
        people.append(
            {
                "supporter_id": sid,
                "email": email,
                "email_hash": email_hash(HASH_KEY, email),
                "phone": phone,
                "phone_hash": phone_hash(HASH_KEY, phone) if phone else None,
                "given_name": f"P{i}",
                "family_name": None,
                "pronouns": None,
                "locale": "en",
                "language": "en",
                "country": "US",
                "region": None,
                "postal_code": None,
                "time_zone": time_zone,
                "discreet": bool(discreet_every and i % discreet_every == 0),
                "interests": [],
                "token": uuid.uuid4().hex,
                "created_at": now,
                "updated_at": now,
            }
        )
        links.append(
            {
                "campaign_id": campaign_id,
                "supporter_id": sid,
                "partner_organization_id": None,
                "source": None,
                "joined_at": now,
            }
        )
        if email_consent:
            grants.append(
                {"supporter_id": sid, "organization_id": org_id, "channel": "email",
                 "granted": True, "changed_at": now, "contact_hash": None}
            )  # fmt: skip
        if phone and sms_consent:
            grants.append(
                {"supporter_id": sid, "organization_id": org_id, "channel": "sms",
                 "granted": True, "changed_at": now, "contact_hash": phone_hash(HASH_KEY, phone)}
            )  # fmt: skip
    with engine.begin() as conn:
        for table, rows in ((supporters, people), (supporter_campaigns, links), (consents, grants)):
            for start in range(0, len(rows), 5000):
                conn.execute(table.insert(), rows[start : start + 5000])
    return people


def issue_key(engine: Engine, role: str, organization_id: str) -> dict[str, str]:
    """Store a new API key of a role and organization; return its Authorization header."""
    new = generate_key(role)
    row = {"key_id": new.key_id, "prefix": new.prefix, "key_hash": new.key_hash, "role": role,
           "organization_id": organization_id, "at": utcnow()}  # fmt: skip
    with engine.begin() as conn:
        store_issued(conn, api_keys, row)
    return {"Authorization": f"Bearer {new.secret}"}


def daytime_zone() -> str:
    """Return an Etc/GMT zone where it is about noon now (so SMS is not held for the night)."""
    from datetime import UTC, datetime

    offset = max(min(12 - datetime.now(UTC).hour, 12), -11)
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX signs are reversed


def copy_audience(
    database_url: str,
    campaign_id: str,
    org_id: str,
    count: int,
    *,
    prefix: str,
    email: bool = True,
    sms_first: int = 0,
    time_zone: str = "America/New_York",
) -> None:
    """COPY count supporters into the projection (fast enough for a million).

    Everyone consents to email (when email) from org_id; the first sms_first also have a phone
    number and consent to SMS.
    """
    import hashlib

    import psycopg

    now = utcnow()
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")

    def ident(i: int) -> tuple[str, str]:
        address = f"{prefix}{i:08d}@example.org"
        return str(uuid.UUID(bytes=hashlib.md5(address.encode()).digest())), address

    def phone_of(i: int) -> str:
        return f"+1{200 + i // 10_000_000:03d}{i % 10_000_000:07d}"

    def phone_digest(i: int) -> str:
        return hashlib.sha256(phone_of(i).encode()).hexdigest()

    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY nf_supporters (supporter_id, email, email_hash, phone, phone_hash, given_name,"
            " locale, country, time_zone, discreet, interests, token, created_at, updated_at)"
            " FROM STDIN"
        ) as copy:
            for i in range(count):
                sid, address = ident(i)
                phone = phone_of(i) if i < sms_first else None
                copy.write_row(
                    (
                        sid, address, hashlib.sha256(address.encode()).hexdigest(), phone,
                        phone_digest(i) if phone else None,
                        f"P{i}", "en", "US", time_zone, False, "[]", uuid.uuid4().hex, now, now,
                    )
                )  # fmt: skip
        with cur.copy(
            "COPY nf_supporter_campaigns (campaign_id, supporter_id, joined_at) FROM STDIN"
        ) as copy:
            for i in range(count):
                copy.write_row((campaign_id, ident(i)[0], now))
        with cur.copy(
            "COPY nf_consents (supporter_id, organization_id, channel, granted, changed_at,"
            " contact_hash) FROM STDIN"
        ) as copy:
            for i in range(count):
                sid = ident(i)[0]
                if email:
                    copy.write_row((sid, org_id, "email", True, now, None))
                if i < sms_first:
                    copy.write_row((sid, org_id, "sms", True, now, phone_digest(i)))
        cur.execute(
            "INSERT INTO nf_organizations (organization_id, name, postal_address, token_tag,"
            " updated_at) VALUES (%s, 'Coalition', '1 Unity Way, Oakland, CA', %s, now())"
            " ON CONFLICT DO NOTHING",
            (org_id, uuid.uuid4().hex[:12]),
        )
        conn.commit()
        cur.execute("ANALYZE")


def groups_stable(bootstrap: str, groups: dict[str, int]) -> bool:
    """Return True when every group is Stable with at least the given number of members."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        with KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-probe") as admin:
            described = admin.describe_groups(list(groups))
    except KafkaError:
        return False  # the coordinator is still loading
    for group, members in groups.items():
        info = described.get(group) or {}
        if info.get("group_state") != "Stable" or len(info.get("members") or []) < members:
            return False
    return True


def confirmation(signed: Event) -> Event:
    """The signature.confirmed of a double opt-in signature made by signature()."""
    data = signed.data
    return event(
        "signature.confirmed", signed.key, signature_id=data["signature_id"],
        petition_id=data["petition_id"], campaign_id=data["campaign_id"], supporter_id=signed.key,
    )  # fmt: skip


def project_org(service: Service, org_id: str, name: str = "Rainbow Bridge") -> None:
    from services.notifications.audience import upsert_organization
    from shared.events.envelope import utcnow

    with service.engine.begin() as conn:
        upsert_organization(
            conn, HASH_KEY,
            {"organization_id": org_id, "name": name, "postal_address": "1 Way"},
            utcnow(),
        )  # fmt: skip


def token_of(service: Service, person: dict, org_id: str) -> str:
    """Return the list token a person's emails from an organization carry."""
    from services.notifications.compliance import list_token
    from services.notifications.store import organizations

    tag = service.rows(organizations, organizations.c.organization_id == org_id)[0].token_tag
    return list_token(HASH_KEY, person["token"], tag)
