"""The fault test: an alert to 100,000 email and 5,000 SMS recipients through SIGKILLs, a broker
restart and providers answering 5% of requests with 429/503.

Afterwards every recipient got each channel's message exactly once at the fake provider, except
that a request in flight when a worker was SIGKILLed may have been repeated; every such
ambiguity is counted by the service, and the duplicates found must not exceed that count.
Sizes: KINSHIP_FAULT_EMAILS (100000) and KINSHIP_FAULT_SMS (5000).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaProducer

from services.notifications.store import alerts
from shared.events.catalog import CAMPAIGNS, DISPATCH_TOPICS, NOTIFICATIONS, PETITIONS
from shared.kafka import ensure_topics
from shared.local_kafka import LocalKafka
from shared.migrate import upgrade
from tests.fakes.providers import FakeRecords, start_fake_process
from tests.integration.notifications.harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SENDGRID_KEY,
    alert,
    copy_audience,
    daytime_zone,
    groups_stable,
)
from tests.support.polling import eventually
from tests.support.postgres import free_ports

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]
EMAILS = int(os.environ.get("KINSHIP_FAULT_EMAILS", "100000"))
SMS = int(os.environ.get("KINSHIP_FAULT_SMS", "5000"))
FAULTS = {
    "seed": 5,
    "rules": [
        {"kind": "status", "status": 429, "retry_after": 1, "probability": 0.025},
        {"kind": "status", "status": 503, "probability": 0.025},
    ],
}


class Workers:
    """Worker processes of the notifications service, killed and restarted by the test."""

    def __init__(self, env: dict[str, str], group: str, logs: Path) -> None:
        self.env = env
        self.group = group
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.spawned = 0

    def spawn(self) -> subprocess.Popen[bytes]:
        self.spawned += 1
        with open(self.logs / f"worker-{self.spawned}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "services.notifications.worker", "--group", self.group],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.timeout(3000)
def test_alert_survives_kills_broker_restart_and_provider_faults(
    database_url: str, tmp_path: Path
) -> None:
    port, controller_port = free_ports(2)
    broker = LocalKafka(tmp_path / "kafka", port=port, controller_port=controller_port)
    broker.start()
    fakes: list = []
    workers: Workers | None = None
    report: dict[str, object] = {"emails": EMAILS, "sms": SMS}
    try:
        upgrade("notifications", database_url)
        copy_audience(
            database_url, "camp-z", "org-z", EMAILS, prefix="z", sms_first=SMS,
            time_zone=daytime_zone(),
        )  # fmt: skip
        sendgrid = start_fake_process(
            "sendgrid", tmp_path / "sendgrid.sqlite", workers=2, threads=8, faults=FAULTS,
            api_key=SENDGRID_KEY,
        )  # fmt: skip
        fakes.append(sendgrid)
        twilio = start_fake_process(
            "twilio", tmp_path / "twilio.sqlite", workers=2, threads=8, faults=FAULTS,
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
        )  # fmt: skip
        fakes.append(twilio)
        ensure_topics(broker.bootstrap, [CAMPAIGNS, PETITIONS, NOTIFICATIONS], 3)
        ensure_topics(broker.bootstrap, [*DISPATCH_TOPICS.values()], 6)
        group = f"fault-{uuid.uuid4().hex[:6]}"
        env = {
            **os.environ,
            "NOTIFICATIONS_DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "EMAIL_BACKEND": "sendgrid",
            "SENDGRID_API_KEY": SENDGRID_KEY,
            "SENDGRID_API_HOST": sendgrid.url,
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE_URL": twilio.url,
            "TWILIO_FROM_NUMBER": "+15557654321",
            "KINSHIP_HASH_KEY": "test-hash-key",
            "KINSHIP_PUBLIC_BASE_URL": "https://notify.example.org",
            "EMAIL_SENDER_THREADS": "2",
            "SMS_SENDER_THREADS": "2",
            "SMS_RATE_PER_SECOND": "400",
            "SEND_MAX_ATTEMPTS": "10",
            "SEND_RETRY_BASE_DELAY": "0.2",
            "SEND_RETRY_MAX_DELAY": "3",
            "PROVIDER_TIMEOUT": "30",  # slow answers from loaded fakes are not a fault injected
            "BATCH_LEASE_SECONDS": "20",
            "DISPATCH_PARTITIONS": "6",
            "LOG_LEVEL": "WARNING",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        workers = Workers(env, group, tmp_path)
        workers.spawn()
        workers.spawn()
        members = {group: 2, f"{group}-email-sender": 4, f"{group}-sms-sender": 4}
        eventually(lambda: groups_stable(broker.bootstrap, members), timeout=300, interval=0.5)

        total = EMAILS + SMS
        engine_url = database_url
        from sqlalchemy import select

        from shared.db import make_engine

        engine = make_engine(engine_url)

        def progress() -> tuple[int, str]:
            with engine.connect() as conn:
                row = conn.execute(select(alerts).where(alerts.c.alert_id == "alert-z")).first()
            if row is None:
                return 0, "missing"
            return row.sent + row.failed + row.suppressed, row.status

        started = time.monotonic()
        event = alert("alert-z", "camp-z", "org-z", ["email", "sms"])
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        producer.send(
            CAMPAIGNS, key=event.key.encode(), value=event.value(), headers=event.headers()
        )
        producer.flush(timeout=30)
        producer.close()

        def reached(fraction: float) -> None:
            eventually(
                lambda: progress()[0] >= fraction * total, timeout=900, interval=0.2,
                message=f"{fraction:.0%} done",
            )  # fmt: skip

        chaos = []
        reached(0.05)
        workers.procs[0].send_signal(signal.SIGKILL)
        workers.procs[0].wait()
        workers.procs[0] = _respawn(workers)
        chaos.append(("SIGKILL worker", progress()[0]))
        reached(0.25)
        broker.stop()
        time.sleep(3)  # the broker stays down a while: chaos, not a wait for Kafka
        broker.start()
        chaos.append(("broker restarted", progress()[0]))
        reached(0.45)
        workers.procs[1].send_signal(signal.SIGKILL)
        workers.procs[1].wait()
        workers.procs[1] = _respawn(workers)
        chaos.append(("SIGKILL worker", progress()[0]))
        reached(0.6)
        workers.procs[0].send_signal(signal.SIGTERM)
        workers.procs[0].wait(timeout=120)
        workers.procs[0] = _respawn(workers)
        chaos.append(("SIGTERM worker", progress()[0]))
        reached(0.75)
        workers.procs[0].send_signal(signal.SIGKILL)
        workers.procs[0].wait()
        workers.procs[0] = _respawn(workers)
        chaos.append(("SIGKILL worker", progress()[0]))
        eventually(lambda: progress()[1] == "done", timeout=1800, interval=0.5, message="done")
        elapsed = time.monotonic() - started

        with engine.connect() as conn:
            row = conn.execute(select(alerts).where(alerts.c.alert_id == "alert-z")).one()
        engine.dispose()
        emails = Counter(e for e, _ in FakeRecords(sendgrid.db_path).sendgrid_recipients())
        texts = Counter(m.body["To"] for m in FakeRecords(twilio.db_path).twilio_messages())
        expected_emails = {f"z{i:08d}@example.org" for i in range(EMAILS)}
        expected_texts = {f"+1{200 + i // 10_000_000:03d}{i % 10_000_000:07d}" for i in range(SMS)}
        duplicates = sum(c - 1 for c in emails.values()) + sum(c - 1 for c in texts.values())
        report.update(
            seconds=round(elapsed, 1),
            chaos=chaos,
            faults_injected=len(FakeRecords(sendgrid.db_path).faults())
            + len(FakeRecords(twilio.db_path).faults()),
            total=row.total,
            sent=row.sent,
            failed=row.failed,
            suppressed=row.suppressed,
            ambiguous=row.ambiguous,
            duplicates_at_providers=duplicates,
            dead_batches=row.dead_batches,
        )
        print(f"\nFAULT TEST REPORT {report}")
        assert set(emails) == expected_emails, "an email recipient was missed"
        assert set(texts) == expected_texts, "an SMS recipient was missed"
        assert report["faults_injected"], "no provider fault was injected"
        assert row.total == total
        assert row.total == row.sent + row.failed + row.suppressed
        assert (row.failed, row.suppressed, row.dead_batches) == (0, 0, 0)
        # Every duplicate is one the service knew might happen and counted.
        assert duplicates <= row.ambiguous
        # Only requests in flight at a SIGKILL are ambiguous: at most one batch per email thread
        # and SMS_CONCURRENCY texts per SMS thread, per kill (3 kills; 2 + 2 threads a worker).
        assert row.ambiguous <= 3 * (2 * 1000 + 2 * 4)
    finally:
        if workers is not None:
            workers.stop()
        for fake in fakes:
            fake.stop()
        broker.stop()


def _respawn(workers: Workers) -> subprocess.Popen[bytes]:
    proc = workers.spawn()
    workers.procs.pop()  # the caller puts it in the slot of the process it replaces
    return proc
