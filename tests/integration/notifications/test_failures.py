"""Provider failures: retries honour Retry-After, permanent errors fail (and opt out), DLQ."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from services.notifications.delivery import Deliverer, Stopped
from services.notifications.store import alerts, deliveries, suppressions
from shared.db import aware
from shared.events.catalog import DISPATCH_TOPICS, NOTIFICATIONS
from shared.kafka import dead_letter_topic
from tests.integration.notifications.harness import (
    HASH_KEY,
    Service,
    alert,
    fast_config,
    issue_key,
    project_org,
    running_service,
    seed_audience,
    token_of,
)
from tests.support.kafka import end_offsets, headers_of, read_all
from tests.support.polling import eventually

pytestmark = pytest.mark.integration
NOON_UTC = datetime(2026, 11, 28, 12, tzinfo=UTC)


def done(service: Service, alert_id: str) -> bool:
    rows = service.rows(alerts, alerts.c.alert_id == alert_id)
    return bool(rows and rows[0].status == "done")


def test_429_and_503_are_retried_without_duplicates(service: Service) -> None:
    seed_audience(service.engine, "camp-r", "org-r", 2500)
    service.fakes.set_faults(
        "sendgrid",
        {"rules": [
            {"kind": "status", "status": 429, "retry_after": 1, "count": 2},
            {"kind": "status", "status": 503, "count": 1},
        ]},
    )  # fmt: skip
    service.start()
    service.publish(alert("alert-r", "camp-r", "org-r", ["email"]))
    eventually(lambda: done(service, "alert-r"), timeout=90, message="alert done")
    faults = service.fakes.faults("sendgrid")
    assert [f.status for f in faults] == [429, 429, 503]
    got = Counter(e for e, _ in service.fakes.sendgrid_recipients())
    assert len(got) == 2500 and set(got.values()) == {1}
    row = service.rows(alerts)[0]
    assert (row.sent, row.failed, row.ambiguous) == (2500, 0, 0)
    # Each 429 asked for a second's pause (Retry-After: 1); the next attempt waited for it.
    events = sorted(
        [(f.ts, f.status) for f in faults]
        + [(r.ts, 202) for r in service.fakes.sendgrid_requests()]
    )
    for (at, status), (next_at, _) in zip(events, events[1:], strict=False):
        if status == 429:
            assert next_at - at >= 0.95


def test_a_refused_api_key_pauses_sending_and_fails_nothing(
    database_url: str, kafka_bootstrap: str, provider_urls: tuple[str, str], fakes_db: Path
) -> None:
    """A revoked or rotated key (401/403) says nothing about the messages: a million-recipient
    alert must not be failed for good in seconds. Sending waits until the key works again."""
    from tests.integration.notifications.harness import organization, petition, signature

    config = fast_config(credentials_pause_seconds=0.3)
    with running_service(
        database_url, kafka_bootstrap, *provider_urls, fakes_db, config=config
    ) as service:
        seed_audience(service.engine, "camp-a", "org-a", 1500)
        service.fakes.set_faults(
            "sendgrid",
            {"rules": [
                {"kind": "status", "status": 401, "count": 3},
                {"kind": "status", "status": 403, "count": 2},
            ]},
        )  # fmt: skip
        service.start()
        service.publish(alert("alert-a", "camp-a", "org-a", ["email"]))
        eventually(lambda: done(service, "alert-a"), timeout=90, message="alert done")
        row = service.rows(alerts, alerts.c.alert_id == "alert-a")[0]
        assert (row.total, row.sent, row.failed, row.dead_batches) == (1500, 1500, 0, 0)
        assert sorted(f.status for f in service.fakes.faults("sendgrid")) == [401] * 3 + [403] * 2
        got = Counter(email for email, args in service.fakes.sendgrid_recipients())
        assert len(got) == 1500 and set(got.values()) == {1}
        # A transactional email waits the same way.
        service.fakes.set_faults(
            "sendgrid", {"rules": [{"kind": "status", "status": 401, "count": 2}]}
        )
        service.publish(organization("org-t"), petition("pet-t", "camp-t", "org-t"))
        service.publish(signature("tia@example.org", "pet-t", "camp-t", "org-t"))
        thanked = eventually(
            lambda: [e for e, _ in service.fakes.sendgrid_recipients() if e == "tia@example.org"],
            timeout=30,
            message="thank-you after the pause",
        )
        assert thanked == ["tia@example.org"]
        thanks = service.rows(deliveries, deliveries.c.kind == "thank_you")
        assert [(r.status, r.error_code) for r in thanks] == [("sent", None)]


def test_permanent_sms_errors_fail_and_21610_suppresses(service: Service) -> None:
    seed_audience(
        service.engine, "camp-p", "org-p", 3, phone_every=1, email_consent=False,
        time_zone="UTC", prefix=f"perm{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    from sqlalchemy import update

    from services.notifications.store import consents, supporters
    from shared.privacy import phone_hash

    rows = service.rows(supporters)
    numbers = ["+15005550004", "+15005550001"]  # Twilio's unsubscribed and invalid test numbers
    with service.engine.begin() as conn:
        for row, number in zip(rows, numbers, strict=False):
            conn.execute(
                update(supporters)
                .where(supporters.c.supporter_id == row.supporter_id)
                .values(phone=number, phone_hash=phone_hash("test-hash-key", number))
            )
            conn.execute(  # their texts consent was given with that number
                update(consents)
                .where(consents.c.supporter_id == row.supporter_id, consents.c.channel == "sms")
                .values(contact_hash=phone_hash("test-hash-key", number))
            )
    service.deps.clock = lambda: NOON_UTC
    service.start()
    service.publish(alert("alert-p", "camp-p", "org-p", ["sms"]))
    eventually(lambda: done(service, "alert-p"), message="alert done")
    failed = {r.error_code for r in service.rows(deliveries, deliveries.c.status == "failed")}
    assert failed == {"21610", "21211"}
    row = service.rows(alerts)[0]
    assert (row.total, row.sent, row.failed) == (3, 1, 2)
    stopped = service.rows(suppressions)
    assert [(s.contact_hash, s.reason) for s in stopped] == [
        (phone_hash("test-hash-key", "+15005550004"), "stop")
    ]
    stopped_id = rows[0].supporter_id

    def published_changes() -> list[str]:
        return [
            json.loads(r.value)["change"]
            for r in read_all(service.bootstrap, NOTIFICATIONS, timeout=60)
            if headers_of(r)["ce_type"] == "kinship.consent.changed.v1"
            and json.loads(r.value)["supporter_id"] == stopped_id
        ]

    assert eventually(published_changes, message="consent.changed published") == ["stop"]

    # The organizer learns why two texts failed, in plain words, without a name or number.
    report = service.client().get(
        "/api/v1/delivery-reports/alert-p", headers=issue_key(service.engine, "organizer", "org-p")
    )
    assert report.status_code == 200, report.get_json()
    body = report.get_json()
    assert body["channels"] == [
        {"channel": "sms", "total": 3, "queued": 0, "sending": 0, "deferred": 0, "sent": 1,
         "delivered": 0, "failed": 2, "suppressed": 0}
    ]  # fmt: skip
    assert {(r["status"], r["reason"], r["count"]) for r in body["reasons"]} == {
        ("failed", "21610", 1),
        ("failed", "21211", 1),
    }
    meanings = {r["reason"]: r["meaning"] for r in body["reasons"]}
    assert "STOP" in meanings["21610"] and "not a valid phone number" in meanings["21211"]
    assert "+1500555" not in report.get_data(as_text=True)
    stranger = issue_key(service.engine, "organizer", "org-other")
    assert service.client().get("/api/v1/delivery-reports/alert-p",
                                headers=stranger).status_code == 404  # fmt: skip


def test_a_provider_outage_pauses_sending_and_fails_nobody(
    database_url: str, kafka_bootstrap: str, provider_urls: tuple[str, str], fakes_db: Path
) -> None:
    """SendGrid answers 503 for longer than a batch's retries last: the batch is not failed
    (that lost the alert for everyone a brief incident met); its rows go back to queued, the
    sender pauses and tries again, and once SendGrid answers every recipient gets it once."""
    config = fast_config(send_max_attempts=2, provider_pause_seconds=0.3)
    with running_service(
        database_url, kafka_bootstrap, *provider_urls, fakes_db, config=config
    ) as service:
        people = seed_audience(service.engine, "camp-o", "org-o", 1500)
        outage = 7  # more than three batches' worth of attempts
        service.fakes.set_faults(
            "sendgrid", {"rules": [{"kind": "status", "status": 503, "count": outage}]}
        )
        service.start()
        service.publish(alert("alert-o", "camp-o", "org-o", ["email"]))
        eventually(lambda: done(service, "alert-o"), timeout=90, message="alert done")
        row = service.rows(alerts)[0]
        assert (row.total, row.sent, row.failed, row.dead_batches) == (1500, 1500, 0, 0)
        assert len(service.fakes.faults("sendgrid")) == outage
        recipients = [address for address, _ in service.fakes.sendgrid_recipients()]
        assert sorted(recipients) == sorted(p["email"] for p in people)  # each once
        dlq = dead_letter_topic(DISPATCH_TOPICS["email"], f"{service.group}-email-sender")
        assert sum(end_offsets(service.bootstrap, dlq).values()) == 0


def test_a_provider_outage_past_its_allowance_fails_the_batch_and_dead_letters_it(
    database_url: str, kafka_bootstrap: str, provider_urls: tuple[str, str], fakes_db: Path
) -> None:
    config = fast_config(send_max_attempts=3, provider_outage_seconds=0)
    with running_service(
        database_url, kafka_bootstrap, *provider_urls, fakes_db, config=config
    ) as service:
        seed_audience(service.engine, "camp-d", "org-d", 1500)
        service.fakes.set_faults("sendgrid", {"rules": [{"kind": "status", "status": 503}]})
        service.start()
        service.publish(alert("alert-d", "camp-d", "org-d", ["email"]))
        eventually(lambda: done(service, "alert-d"), timeout=90, message="alert done")
        row = service.rows(alerts)[0]
        assert (row.total, row.sent, row.failed, row.dead_batches) == (1500, 0, 1500, 2)
        assert row.total == row.sent + row.failed + row.suppressed
        assert len(service.fakes.faults("sendgrid")) == 2 * 3  # every attempt was made
        assert service.fakes.sendgrid_requests() == []
        dlq = dead_letter_topic(DISPATCH_TOPICS["email"], f"{service.group}-email-sender")
        dead = read_all(service.bootstrap, dlq, expected=2)
        assert len(dead) == 2 and sum(end_offsets(service.bootstrap, dlq).values()) == 2
        assert all(json.loads(r.value)["alert_id"] == "alert-d" for r in dead)
        assert all("kinship_error" in headers_of(r) for r in dead)


def test_a_batch_failing_by_a_fault_of_its_own_is_given_up_failed_and_dead_lettered(
    database_url: str,
    kafka_bootstrap: str,
    provider_urls: tuple[str, str],
    fakes_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error that is neither the provider's nor an outage (a fault in our code or the
    alert's data) fails the batch every time it is tried: it is given up after
    BATCH_MAX_ATTEMPTS, its recipients failed, and the alert finishes; the other batch goes."""
    config = fast_config(batch_max_attempts=3)
    with running_service(
        database_url, kafka_bootstrap, *provider_urls, fakes_db, config=config
    ) as service:
        seed_audience(service.engine, "camp-p", "org-p", 1500)
        sender = service.deps.email
        send_batch = sender.send_batch
        tries: list[int] = []

        def faulty(batch: Any) -> Any:
            if len(batch.recipients) == 1000:  # the first slice; the second has 500
                tries.append(1)
                raise ValueError("a fault of ours")
            return send_batch(batch)

        monkeypatch.setattr(sender, "send_batch", faulty)
        service.start()
        service.publish(alert("alert-p", "camp-p", "org-p", ["email"]))
        eventually(lambda: done(service, "alert-p"), timeout=90, message="alert done")
        row = service.rows(alerts)[0]
        assert (row.total, row.sent, row.failed, row.dead_batches) == (1500, 500, 1000, 1)
        assert row.total == row.sent + row.failed + row.suppressed
        assert len(tries) == 3
        assert len(service.fakes.sendgrid_recipients()) == 500
        failed = service.rows(deliveries, deliveries.c.status == "failed")
        assert len(failed) == 1000
        assert {r.error_code for r in failed} == {"batch_error:ValueError"}
        dlq = dead_letter_topic(DISPATCH_TOPICS["email"], f"{service.group}-email-sender")
        dead = read_all(service.bootstrap, dlq, expected=1)
        assert sum(end_offsets(service.bootstrap, dlq).values()) == 1  # dead-lettered once
        assert len(json.loads(dead[0].value)["supporter_ids"]) == 1000
        assert headers_of(dead[0])["kinship_error_class"] == "ValueError"


def _published_batch_record(service: Service, tag: str, size: int) -> Any:
    """Publish an email alert to `size` new supporters; return its first dispatch batch as
    the record a sender reads."""
    from types import SimpleNamespace

    from services.notifications.fanout import BATCH_TYPES
    from services.notifications.handlers import handle_alert_published
    from shared.events import Event

    camp, org, alert_id = f"camp-{tag}", f"org-{tag}", f"alert-{tag}"
    people = seed_audience(service.engine, camp, org, size, prefix=tag)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert(alert_id, camp, org, ["email"]), conn)
    batch = Event(
        type=BATCH_TYPES["email"], key=f"{alert_id}:1", source="test", subject="email",
        data={**_batch(alert_id, people), "campaign_id": camp, "organization_id": org,
              "channel": "email", "seq": 1, "at": "2026-11-28T12:00:00Z"},
    )  # fmt: skip
    return SimpleNamespace(
        topic=DISPATCH_TOPICS["email"], partition=0, offset=7, key=batch.key.encode(),
        value=batch.value(), headers=batch.headers(), timestamp=0,
    )  # fmt: skip


def test_a_batch_given_up_and_delivered_again_is_dead_lettered_once(service: Service) -> None:
    """A batch given up by a fault of its own comes back (a commit lost in a rebalance) and
    fails as before: its recipients and the alert's count stay as they were, and the
    dead-letter topic gets it once."""

    from services.notifications.fanout import DispatchSender

    record = _published_batch_record(service, "g", 3)
    sender = DispatchSender(service.deps, "email", "given-up", group=f"{service.group}-gu")
    try:
        for _ in range(2):  # given up, then delivered again and given up again
            waits = [
                sender._after_failure(record, ValueError("a fault of ours"))
                for _ in range(service.deps.config.batch_max_attempts)
            ]
            assert waits[-1] is None and all(w is not None for w in waits[:-1])
            sender._failing.clear()  # the record comes back as a new delivery
    finally:
        if sender._producer is not None:
            sender._producer.close()
    dlq = dead_letter_topic(DISPATCH_TOPICS["email"], sender.group)
    assert sum(end_offsets(service.bootstrap, dlq).values()) == 1
    row = service.rows(alerts)[0]
    assert (row.failed, row.dead_batches) == (3, 1)


def test_a_batch_whose_failure_cannot_be_recorded_is_dead_lettered_not_retried_for_ever(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data the ledger refuses fails the batch and then its giving up alike: it goes to the
    dead-letter topic after its tries, so the partition moves on (it was retried every
    second for ever)."""

    from services.notifications.delivery import Busy
    from services.notifications.fanout import DispatchSender

    record = _published_batch_record(service, "u", 2)
    sender = DispatchSender(service.deps, "email", "unrecorded", group=f"{service.group}-un")

    def refused(*args: Any) -> None:
        raise ValueError("value too long for type character varying(80)")

    def busy(*args: Any) -> None:
        raise Busy("alert-u:1")

    tries = service.deps.config.batch_max_attempts
    try:
        # Rows another live worker holds say nothing of the batch: tried again, not given up.
        monkeypatch.setattr(sender.deliverer, "fail_batch", busy)
        assert all(sender._after_failure(record, ValueError("x")) for _ in range(tries + 2))
        sender._failing.clear()
        monkeypatch.setattr(sender.deliverer, "fail_batch", refused)
        waits = [sender._after_failure(record, ValueError("value too long")) for _ in range(tries)]
    finally:
        if sender._producer is not None:
            sender._producer.close()
    assert waits[-1] is None and all(w is not None for w in waits[:-1])
    dlq = dead_letter_topic(DISPATCH_TOPICS["email"], sender.group)
    assert sum(end_offsets(service.bootstrap, dlq).values()) == 1


def test_a_dead_batch_is_dead_lettered_and_counted_even_if_its_first_write_fails(
    database_url: str, kafka_bootstrap: str, provider_urls: tuple[str, str], fakes_db: Path
) -> None:
    """The sender loses the broker (or stops) after failing a dead batch's deliveries and
    before its dead-letter write: the batch comes back with nothing left to send, and is
    dead-lettered then, counted once."""
    from kafka.errors import KafkaTimeoutError

    from services.notifications.fanout import DispatchSender

    config = fast_config(send_max_attempts=2, email_sender_threads=1, provider_outage_seconds=0)
    with running_service(
        database_url, kafka_bootstrap, *provider_urls, fakes_db, config=config
    ) as service:
        seed_audience(service.engine, "camp-w", "org-w", 500)
        service.fakes.set_faults("sendgrid", {"rules": [{"kind": "status", "status": 503}]})
        service.start()
        senders = [p for p, _ in service.running if isinstance(p, DispatchSender)]
        email = [p for p in senders if p.channel == "email"]
        assert len(email) == 1
        first_write = email[0]._dead_letter
        refused: list[int] = []

        def broker_gone_once(record: Any, exc: BaseException) -> None:
            if not refused:
                refused.append(record.offset)
                raise KafkaTimeoutError("dead-letter write not acknowledged")
            first_write(record, exc)

        email[0]._dead_letter = broker_gone_once  # type: ignore[method-assign]
        service.publish(alert("alert-w", "camp-w", "org-w", ["email"]))
        dlq = dead_letter_topic(DISPATCH_TOPICS["email"], f"{service.group}-email-sender")
        dead = read_all(service.bootstrap, dlq, expected=1, timeout=60)
        assert refused and len(dead) == 1 and json.loads(dead[0].value)["alert_id"] == "alert-w"
        eventually(lambda: done(service, "alert-w"), timeout=60, message="alert done")
        row = service.rows(alerts)[0]
        assert (row.total, row.sent, row.failed, row.dead_batches) == (500, 0, 500, 1)
        assert len(service.fakes.faults("sendgrid")) == 2  # not sent again when it came back
        assert sum(end_offsets(service.bootstrap, dlq).values()) == 1


def test_a_batch_held_by_a_live_worker_waits_and_a_dead_ones_is_taken_over(
    service: Service,
) -> None:
    from services.notifications.delivery import Busy
    from services.notifications.handlers import handle_alert_published

    people = seed_audience(service.engine, "camp-l", "org-l", 3)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-l", "camp-l", "org-l", ["email"]), conn)
    batch = _batch("alert-l", people)
    # The first owner claimed the batch and was cut off in the middle of its request.
    service.deps.email = _Crash()  # type: ignore[assignment]
    _crash(service, lambda d: d.send_alert_email_batch(batch))
    from tests.integration.notifications.harness import build_sender

    service.deps.email = build_sender(service)
    second = Deliverer(service.deps)
    with pytest.raises(Busy):  # the first owner may still be alive: do not send twice
        second.send_alert_email_batch(batch)
    _age(service)  # the first owner fell silent long ago: it died
    assert second.send_alert_email_batch(batch) == "done"
    row = service.rows(alerts)[0]
    assert (row.sent, row.ambiguous) == (3, 3)
    assert len(service.fakes.sendgrid_recipients()) == 3


def test_rows_taken_over_during_a_long_backoff_are_not_sent_again_by_their_first_owner(
    service: Service,
) -> None:
    """A 429's Retry-After outlasts the batch lease, and a rebalance hands the batch to another
    worker, which takes the released rows over and sends them. The first owner must not send
    them too when its wait ends."""
    from services.notifications.delivery import ClaimLost
    from services.notifications.handlers import handle_alert_published

    people = seed_audience(service.engine, "camp-k", "org-k", 3)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-k", "camp-k", "org-k", ["email"]), conn)
    batch = _batch("alert-k", people)
    service.fakes.set_faults(
        "sendgrid", {"rules": [{"kind": "status", "status": 429, "retry_after": 1, "count": 1}]}
    )
    first, second = Deliverer(service.deps), Deliverer(service.deps)
    waited: list[float] = []

    def long_wait(seconds: float) -> None:  # the lease runs out, the batch changes hands
        waited.append(seconds)
        _age(service)
        assert second.send_alert_email_batch(batch) == "done"

    first.wait = long_wait  # type: ignore[method-assign]
    with pytest.raises(ClaimLost):
        first.send_alert_email_batch(batch)
    assert waited and waited[0] >= 1.0  # it honoured Retry-After
    got = Counter(email for email, _ in service.fakes.sendgrid_recipients())
    assert got == Counter({p["email"]: 1 for p in people})
    row = service.rows(alerts)[0]
    assert (row.sent, row.failed, row.ambiguous) == (3, 0, 0)


def test_rows_taken_over_after_a_timeout_are_not_sent_again_by_their_first_owner(
    service: Service,
) -> None:
    """A timeout may have gone through, so the rows stay `sending` through the backoff. If
    the wait outlasts the lease and the batch changes hands, the new owner resends them (and
    counts them ambiguous); the first owner must not send them a third time."""
    from services.notifications.delivery import ClaimLost
    from services.notifications.handlers import handle_alert_published
    from services.notifications.senders import TransientSendError

    people = seed_audience(service.engine, "camp-t", "org-t", 3)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-t", "camp-t", "org-t", ["email"]), conn)
    batch = _batch("alert-t", people)
    real = service.deps.email
    calls: list[int] = []

    class TimesOutOnce:
        def send_batch(self, email_batch: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                raise TransientSendError("read timed out", ambiguous=True)
            return real.send_batch(email_batch)

    service.deps.email = TimesOutOnce()  # type: ignore[assignment]
    first, second = Deliverer(service.deps), Deliverer(service.deps)

    def long_wait(seconds: float) -> None:  # the lease runs out, the batch changes hands
        _age(service)
        assert second.send_alert_email_batch(batch) == "done"

    first.wait = long_wait  # type: ignore[method-assign]
    with pytest.raises(ClaimLost):
        first.send_alert_email_batch(batch)
    got = Counter(email for email, _ in service.fakes.sendgrid_recipients())
    assert got == Counter({p["email"]: 1 for p in people})  # the timed-out request never arrived
    row = service.rows(alerts)[0]
    assert (row.sent, row.ambiguous) == (3, 6)  # counted by the first owner and by the second


def test_a_variant_waiting_its_turn_is_not_taken_over_from_a_live_worker(
    service: Service,
) -> None:
    """A batch in two languages goes as two requests, one after the other. The first took
    longer than the lease (a timeout, its backoff, the retry); a rebalance handed the batch
    to another worker meanwhile. That worker must not take the second language's rows, which
    waited untouched since the batch began, while their owner is about to send them."""
    from services.notifications.delivery import Busy
    from services.notifications.senders import TransientSendError

    people = _two_languages(service, "alert-v")
    batch = _batch("alert-v", people)
    real = service.deps.email
    first, second = Deliverer(service.deps), Deliverer(service.deps)
    subjects: list[str] = []
    took_over: list[object] = []

    class SlowFirstLanguage:
        def send_batch(self, email_batch: Any) -> Any:
            subjects.append(email_batch.subject)
            if len(subjects) == 1:
                raise TransientSendError("read timed out", ambiguous=True)
            if len(set(subjects)) == 2 and not took_over:
                # The second language's turn: the other worker comes for the batch.
                took_over.append("coming")
                try:
                    took_over.append(second.send_alert_email_batch(batch))
                except Busy as busy:
                    took_over.append(busy)
            return real.send_batch(email_batch)

    service.deps.email = SlowFirstLanguage()  # type: ignore[assignment]
    first.wait = lambda seconds: _age(service)  # type: ignore[method-assign]
    assert first.send_alert_email_batch(batch) == "done"
    assert len(took_over) == 2 and isinstance(took_over[1], Busy), took_over
    got = Counter(email for email, _ in service.fakes.sendgrid_recipients())
    assert got == Counter({p["email"]: 1 for p in people})
    row = service.rows(alerts)[0]
    assert (row.sent, row.ambiguous) == (4, 2)  # the first language's timed-out request


def test_languages_not_yet_sent_when_a_worker_stops_are_not_counted_ambiguous(
    service: Service,
) -> None:
    """SIGTERM while the first language's request waits out a 429: no request carried the
    second language's rows, so whoever takes the batch up sends them as fresh ones."""
    from services.notifications.delivery import Stopped

    people = _two_languages(service, "alert-x")
    batch = _batch("alert-x", people)
    service.fakes.set_faults(
        "sendgrid", {"rules": [{"kind": "status", "status": 429, "retry_after": 1, "count": 1}]}
    )
    first = Deliverer(service.deps)

    def stopped(seconds: float) -> None:
        raise Stopped()

    first.wait = stopped  # type: ignore[method-assign]
    with pytest.raises(Stopped):
        first.send_alert_email_batch(batch)
    _age(service)
    assert Deliverer(service.deps).send_alert_email_batch(batch) == "done"
    got = Counter(email for email, _ in service.fakes.sendgrid_recipients())
    assert got == Counter({p["email"]: 1 for p in people})
    row = service.rows(alerts)[0]
    assert (row.sent, row.ambiguous) == (4, 0)


def _two_languages(service: Service, alert_id: str) -> list[dict[str, Any]]:
    """Four supporters, two reading English and two Spanish, and an email alert in both."""
    from sqlalchemy import update

    from services.notifications.handlers import handle_alert_published
    from services.notifications.store import supporters

    campaign, org = f"camp-{alert_id}", f"org-{alert_id}"
    people = seed_audience(service.engine, campaign, org, 4)
    spanish = [p["supporter_id"] for p in people[2:]]
    with service.engine.begin() as conn:
        conn.execute(
            update(supporters)
            .where(supporters.c.supporter_id.in_(spanish))
            .values(locale="es", language="es")
        )
        published = alert(alert_id, campaign, org, ["email"])
        published.data["content"]["es"] = {
            "email_subject": "Llame hoy a su concejal",
            "email_text": "La votación es el martes.",
        }
        handle_alert_published(service.deps, published, conn)
    return people


def test_two_progress_publishers_at_once_report_each_change_once(service: Service) -> None:
    """During a rolling deploy two publishers run. The one that reads an alert's counts
    reports them; the other skips that alert rather than report the same counts again, stamped
    with another time (campaigns keeps the report with the latest time, which could then be
    the older counts)."""
    from dataclasses import replace

    from services.notifications.fanout import ProgressPublisher
    from services.notifications.handlers import handle_alert_published
    from services.notifications.store import outbox_table

    if service.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-r", "camp-r", "org-r", ["email"]), conn)
    other = ProgressPublisher(service.deps)
    meanwhile: list[int] = []

    class Outbox:
        def add(self, conn: Any, *events: Any) -> None:
            if not meanwhile:
                meanwhile.append(-1)
                meanwhile.append(other.publish_once())  # while the first holds its look
            service.deps.outbox.add(conn, *events)

    first = ProgressPublisher(replace(service.deps, outbox=Outbox()))  # type: ignore[arg-type]
    assert first.publish_once() == 1
    assert meanwhile == [-1, 0]
    assert other.publish_once() == 0  # reported: nothing changed since
    progressed = [r for r in service.rows(outbox_table) if r.type.endswith("alert.progressed.v1")]
    assert len(progressed) == 1


def _batch(alert_id: str, people: list[dict[str, Any]]) -> dict[str, Any]:
    """The alert's first dispatch batch, holding every one of people."""
    return {
        "alert_id": alert_id,
        "batch_id": f"{alert_id}:1",
        "supporter_ids": [p["supporter_id"] for p in people],
    }


def _crash(service: Service, deliver: Callable[[Deliverer], object]) -> None:
    """Let a first owner claim a batch and die mid-request (its sender raises _Crashed)."""
    with pytest.raises(_Crashed):
        deliver(Deliverer(service.deps))


def _age(service: Service) -> None:
    """Make every ledger row look untouched for a day: whoever held them died long ago."""
    from sqlalchemy import update

    with service.engine.begin() as conn:
        conn.execute(update(deliveries).values(updated_at=NOON_UTC - timedelta(days=1)))


def _crash_then_age(service: Service, deliver: Callable[[Deliverer], object]) -> None:
    _crash(service, deliver)
    _age(service)


def test_a_taken_over_batch_skips_who_opted_out_or_was_erased_meanwhile(
    service: Service,
) -> None:
    from services.notifications import audience, erasure
    from services.notifications.handlers import handle_alert_published
    from tests.integration.notifications.harness import build_sender

    people = seed_audience(service.engine, "camp-o", "org-o", 4)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-o", "camp-o", "org-o", ["email"]), conn)
    batch = _batch("alert-o", people)
    service.deps.email = _Crash()  # type: ignore[assignment]
    _crash_then_age(service, lambda d: d.send_alert_email_batch(batch))
    now = datetime.now(UTC)
    with service.engine.begin() as conn:  # while the batch was stranded:
        audience.suppress(conn, people[0]["email_hash"], "email", "org-o", "unsubscribe", now)
        erasure.apply_erasure(service.deps, conn, {"supporter_id": people[1]["supporter_id"]})
    service.deps.email = build_sender(service)
    assert Deliverer(service.deps).send_alert_email_batch(batch) == "done"
    got = {email for email, _ in service.fakes.sendgrid_recipients()}
    assert got == {people[2]["email"], people[3]["email"]}
    row = service.rows(alerts)[0]
    assert (row.sent, row.suppressed, row.failed, row.ambiguous) == (2, 2, 0, 2)
    rows = service.rows(deliveries, deliveries.c.alert_id == "alert-o")
    assert Counter(r.status for r in rows) == {"sent": 2, "suppressed": 2}


def test_a_taken_over_sms_batch_waits_for_the_morning_when_it_is_now_night(
    service: Service,
) -> None:
    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published
    from tests.integration.notifications.harness import build_sender

    people = seed_audience(
        service.engine, "camp-q", "org-q", 3, phone_every=1, time_zone="America/New_York"
    )
    service.deps.clock = lambda: NOON_UTC + timedelta(hours=4)  # 11:00 in New York
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-q", "camp-q", "org-q", ["sms"]), conn)
    batch = _batch("alert-q", people)
    service.deps.sms = _Crash()  # type: ignore[assignment]
    _crash_then_age(service, lambda d: d.send_alert_sms_batch(batch, TokenBucket(100.0)))
    in_flight = [r for r in service.rows(deliveries) if r.status == "sending"]
    assert in_flight  # the text the crash cut off (and any its lanes had claimed)
    service.deps.clock = lambda: NOON_UTC + timedelta(hours=14)  # 23:00 in New York
    service.deps.sms = build_sender(service, "sms")
    assert Deliverer(service.deps).send_alert_sms_batch(batch, TokenBucket(100.0)) == "done"
    assert service.fakes.twilio_messages() == []
    rows = service.rows(deliveries, deliveries.c.alert_id == "alert-q")
    assert {r.status for r in rows} == {"deferred"}
    assert {r.not_before for r in rows} == {datetime(2026, 11, 29, 13, tzinfo=UTC)}  # 08:00
    row = service.rows(alerts, alerts.c.alert_id == "alert-q")[0]
    # A text in flight at the crash may have gone out, and goes again in the morning.
    assert (row.deferred, row.ambiguous) == (3, len(in_flight))


def test_a_text_whose_wait_for_the_rate_runs_past_nine_pm_waits_for_the_morning(
    service: Service,
) -> None:
    """Quiet hours are checked when a text's turn under the rate comes, not only before its
    wait: at a long code's one text a second, with lanes queued on one bucket, a text checked
    at 20:59:58 went out after 21:00."""
    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published

    people = seed_audience(
        service.engine, "camp-n", "org-n", 2, phone_every=1, time_zone="America/New_York"
    )
    moment = [NOON_UTC + timedelta(hours=13, minutes=59, seconds=58)]  # 20:59:58 there
    service.deps.clock = lambda: moment[0]
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-n", "camp-n", "org-n", ["sms"]), conn)

    class SlowBucket(TokenBucket):
        def acquire(self) -> None:  # each token comes 3 s later
            moment[0] += timedelta(seconds=3)

    batch = _batch("alert-n", people)
    assert Deliverer(service.deps).send_alert_sms_batch(batch, SlowBucket(1.0)) == "done"
    assert service.fakes.twilio_messages() == []
    rows = service.rows(deliveries, deliveries.c.alert_id == "alert-n")
    assert {r.status for r in rows} == {"deferred"}
    assert service.rows(alerts, alerts.c.alert_id == "alert-n")[0].deferred == 2


def test_texts_taken_over_and_stopped_before_their_requests_are_counted_once(
    service: Service,
) -> None:
    """A batch taken over from a crashed sender counts its texts that may have gone as
    ambiguous, once. Stopped before any request of its own, the new owner hands every row
    back: left `sending`, the next owner counted them ambiguous all over again."""
    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published
    from tests.integration.notifications.harness import build_sender

    people = seed_audience(service.engine, "camp-s", "org-s", 3, phone_every=1, time_zone="UTC")
    service.deps.clock = lambda: NOON_UTC
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-s", "camp-s", "org-s", ["sms"]), conn)
    batch = _batch("alert-s", people)
    service.deps.sms = _Crash()  # type: ignore[assignment]
    _crash_then_age(service, lambda d: d.send_alert_sms_batch(batch, TokenBucket(100.0)))
    in_flight = len([r for r in service.rows(deliveries) if r.status == "sending"])
    assert in_flight
    service.deps.sms = build_sender(service, "sms")
    stopping = Deliverer(service.deps)
    stopping.stop.set()  # a SIGTERM as it takes the batch up
    with pytest.raises(Stopped):
        stopping.send_alert_sms_batch(batch, TokenBucket(100.0))
    assert {r.status for r in service.rows(deliveries)} == {"queued"}
    _age(service)  # the stopped owner's lease runs out
    assert Deliverer(service.deps).send_alert_sms_batch(batch, TokenBucket(100.0)) == "done"
    assert len(service.fakes.twilio_messages()) == 3
    row = service.rows(alerts, alerts.c.alert_id == "alert-s")[0]
    assert (row.sent, row.ambiguous) == (3, in_flight)


def test_a_discreet_supporter_gets_no_text_when_the_alert_has_no_discreet_one(
    service: Service,
) -> None:
    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published

    people = seed_audience(
        service.engine, "camp-z", "org-z", 2, phone_every=1, discreet_every=2,
        time_zone="America/New_York",
    )  # fmt: skip
    service.deps.clock = lambda: NOON_UTC + timedelta(hours=4)  # 11:00 in New York
    published = alert("alert-z", "camp-z", "org-z", ["sms"], sms_discreet_text=None)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, published, conn)
    batch = _batch("alert-z", people)
    assert Deliverer(service.deps).send_alert_sms_batch(batch, TokenBucket(100.0)) == "done"
    texts = service.fakes.twilio_messages()
    assert [t.body["To"] for t in texts] == [people[1]["phone"]]  # the one not in discreet mode
    rows = {r.recipient_id: r for r in service.rows(deliveries)}
    quiet = rows[people[0]["supporter_id"]]
    assert (quiet.status, quiet.error_code) == ("failed", "no_discreet_text")


def test_a_discreet_supporter_whose_language_lacks_a_discreet_text_gets_the_default_ones(
    service: Service,
) -> None:
    from sqlalchemy import update

    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published
    from services.notifications.store import supporters

    people = seed_audience(
        service.engine, "camp-d", "org-d", 2, phone_every=1, discreet_every=2,
        time_zone="America/New_York",
    )  # fmt: skip
    with service.engine.begin() as conn:  # both read Vietnamese
        conn.execute(update(supporters).values(language="vi", locale="vi"))
    service.deps.clock = lambda: NOON_UTC + timedelta(hours=4)  # 11:00 in New York
    published = alert("alert-d", "camp-d", "org-d", ["sms"])
    english = dict(published.data["content"]["en"])
    published.data["content"] = {
        "en": english,
        "vi": {**english, "sms_text": "Cuộc bỏ phiếu về tiếp cận ngôn ngữ là thứ Ba.",
               "sms_discreet_text": None},
    }  # fmt: skip
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, published, conn)
    batch = _batch("alert-d", people)
    assert Deliverer(service.deps).send_alert_sms_batch(batch, TokenBucket(100.0)) == "done"
    texts = {t.body["To"]: t.body["Body"] for t in service.fakes.twilio_messages()}
    discreet, open_ = people[0], people[1]
    # The discreet one gets the English discreet text, never the Vietnamese one naming the cause.
    assert texts[discreet["phone"]].startswith("A reminder from your group.")
    assert texts[open_["phone"]].startswith("Cuộc bỏ phiếu")
    assert {r.status for r in service.rows(deliveries)} == {"sent"}


def test_texts_a_night_deferred_do_not_hold_up_a_later_email(service: Service) -> None:
    """At 08:00 every text deferred overnight falls due at once, and goes at the SMS rate; a
    confirmation link queued a minute later must not wait behind all of them."""
    from services.notifications import ledger
    from services.notifications.fanout import SMS_SLICE, QueuePoller
    from shared.events.envelope import utcnow

    now = utcnow()
    texts = [
        ledger.new_row(
            message_key=f"alert-night:{i}",
            recipient_id=f"night-{i:03d}",
            channel="sms",
            kind="alert",
            status="deferred",
            now=now,
            not_before=now - timedelta(minutes=1),
        )  # fmt: skip
        for i in range(120)
    ]
    email = ledger.new_row(message_key="confirm:sig-1", recipient_id="morning-signer",
                           channel="email", kind="confirmation", status="queued",
                           now=now)  # fmt: skip
    with service.engine.begin() as conn:
        ledger.insert_new(conn, [*texts, email])
    service.deps.clock = lambda: now + timedelta(seconds=1)
    QueuePoller(service.deps).run_once()
    (row,) = service.rows(deliveries, deliveries.c.message_key == "confirm:sig-1")
    assert row.status != "queued"  # taken in the first round, ahead of the texts
    still = service.rows(
        deliveries, deliveries.c.channel == "sms", deliveries.c.status == "deferred"
    )
    assert len(still) == 120 - SMS_SLICE  # and the texts go a slice at a time


def test_transactional_emails_go_a_few_at_once_on_their_own_poller(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Confirmation links went one after another at the provider's latency (a few a second
    against signing's 1,200 a second), and a slow provider's email slice held up the texts'
    (a welcome then missed its window): emails go EMAIL_CONCURRENCY at once, and a worker
    runs a poller for each channel."""
    import threading

    from services.notifications import ledger
    from services.notifications.fanout import QueuePoller
    from services.notifications.worker import parts
    from shared.events.envelope import utcnow

    now = utcnow()
    links = [
        ledger.new_row(message_key=f"confirm:sig-{i}", recipient_id=f"signer-{i}",
                       channel="email", kind="confirmation", status="queued", now=now)
        for i in range(8)
    ]  # fmt: skip
    with service.engine.begin() as conn:
        ledger.insert_new(conn, links)
    poller = QueuePoller(service.deps, None, ["email"])
    in_flight, most, lock = 0, 0, threading.Lock()

    def slow(claim: str, row: Any) -> None:  # the provider's latency
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.2)
        with lock:
            in_flight -= 1

    monkeypatch.setattr(poller.deliverer, "send_claimed", slow)
    assert poller.run_once() == 8
    assert most == service.deps.config.email_concurrency == 4
    pollers = [p for p in parts(service.deps, "core") if isinstance(p, QueuePoller)]
    assert sorted(p.channels for p in pollers) == [("email",), ("sms",)]


def test_a_cancellation_that_overtakes_its_alert_keeps_the_alert_from_being_sent(
    service: Service,
) -> None:
    from services.notifications.handlers import handle_alert_cancelled, handle_alert_published
    from tests.integration.notifications.harness import event

    seed_audience(service.engine, "camp-k", "org-k", 3)
    cancelled = event("alert.cancelled", "camp-k", alert_id="alert-k", campaign_id="camp-k")
    with service.engine.begin() as conn:  # alert.published failed once and went to retry
        handle_alert_cancelled(service.deps, cancelled, conn)
    with service.engine.begin() as conn:  # ... and comes back after the cancellation
        handle_alert_published(service.deps, alert("alert-k", "camp-k", "org-k", ["email"]), conn)
    row = service.rows(alerts, alerts.c.alert_id == "alert-k")[0]
    assert row.status == "cancelled" and row.version == 0
    service.start()
    with service.engine.begin() as conn:  # a second alert, to know the workers ran
        handle_alert_published(service.deps, alert("alert-k2", "camp-k", "org-k", ["email"]), conn)
    eventually(lambda: done(service, "alert-k2"), message="the other alert sent")
    assert len(service.fakes.sendgrid_recipients()) == 3  # the other alert's, none of alert-k
    assert service.count(deliveries, deliveries.c.alert_id == "alert-k") == 0


def test_an_alert_cancelled_while_sending_sends_nothing_more_and_counts_the_rest(
    service: Service,
) -> None:
    """An organizer stops an alert mid-send (a wrong link): batches still on their way send
    nothing, and their recipients count as suppressed, so sent + failed + suppressed still
    adds up to the total (before, such a batch was skipped and its people stayed `queued`)."""
    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_cancelled, handle_alert_published
    from tests.integration.notifications.harness import event

    people = seed_audience(
        service.engine, "camp-c", "org-c", 6, phone_every=1, time_zone="America/New_York"
    )
    service.deps.clock = lambda: NOON_UTC + timedelta(hours=4)  # 11:00 in New York
    with service.engine.begin() as conn:
        handle_alert_published(
            service.deps, alert("alert-c", "camp-c", "org-c", ["email", "sms"]), conn
        )
    first, rest = _batch("alert-c", people[:3]), _batch("alert-c", people[3:])
    rest["batch_id"] = "alert-c:2"
    # One sender throughout, as a worker's: it has read the alert before the cancel.
    after = Deliverer(service.deps)
    assert after.send_alert_email_batch(first) == "done"
    cancelled = event("alert.cancelled", "camp-c", alert_id="alert-c", campaign_id="camp-c")
    with service.engine.begin() as conn:
        handle_alert_cancelled(service.deps, cancelled, conn)
    assert after.send_alert_email_batch(rest) == "done"
    assert after.send_alert_sms_batch(first, TokenBucket(100.0)) == "done"
    assert after.send_alert_email_batch(rest) == "done"  # delivered again: counted once
    sent = sorted(address for address, _ in service.fakes.sendgrid_recipients())
    assert sent == sorted(p["email"] for p in people[:3])
    assert service.fakes.twilio_messages() == []
    row = service.rows(alerts, alerts.c.alert_id == "alert-c")[0]
    assert (row.status, row.sent, row.suppressed, row.failed) == ("cancelled", 3, 6, 0)
    statuses = Counter((r.channel, r.status) for r in service.rows(deliveries))
    assert statuses == {("email", "sent"): 3, ("email", "suppressed"): 3,
                        ("sms", "suppressed"): 3}  # fmt: skip


class _Crashed(Exception):
    pass


class _Crash:
    def send_batch(self, batch: object) -> None:
        raise _Crashed("killed mid-request")

    def send(self, sms: object) -> None:
        raise _Crashed("killed mid-request")


def test_each_channel_reads_only_its_own_dispatch_topic(service: Service) -> None:
    from kafka import KafkaConsumer, TopicPartition

    from services.notifications.fanout import BATCH_TYPES
    from shared.events import Event

    service.start()
    email_topic = DISPATCH_TOPICS["email"]
    # On the email topic: a batch no one can decode, and a well-formed SMS batch put there by
    # mistake. The email senders dead-letter both and send nothing; the SMS senders never read
    # the email topic at all.
    sms_batch = Event(
        type=BATCH_TYPES["sms"],
        key="alert-x:2",
        source="test",
        subject="sms",
        data={
            "batch_id": "alert-x:2",
            "alert_id": "alert-x",
            "campaign_id": "camp-x",
            "organization_id": "org-x",
            "channel": "sms",
            "seq": 2,
            "supporter_ids": ["someone"],
            "at": "2026-11-28T12:00:00Z",
        },
    )
    partition = TopicPartition(email_topic, 0)
    groups = {channel: f"{service.group}-{channel}-sender" for channel in ("email", "sms")}
    readers = {
        channel: KafkaConsumer(bootstrap_servers=service.bootstrap, group_id=group)
        for channel, group in groups.items()
    }
    try:
        sms_place = readers["sms"].committed(partition)  # where the harness set it, if at all
        service.producer.send(email_topic, key=b"alert-x:1", value=b"{not json", partition=0)
        last = service.producer.send(
            email_topic,
            key=sms_batch.key.encode(),
            value=sms_batch.value(),
            headers=sms_batch.headers(),
            partition=0,
        ).get(timeout=10)
        dlq = dead_letter_topic(email_topic, groups["email"])
        dead = read_all(service.bootstrap, dlq, expected=2, timeout=60)
        assert sum(end_offsets(service.bootstrap, dlq).values()) == 2
        # By their place on the dispatch topic: the dead-letter topic keys them to partitions.
        dead.sort(key=lambda r: int(headers_of(r)["kinship_origin_offset"]))
        assert [r.value for r in dead] == [b"{not json", sms_batch.value()]
        assert "not a batch for the email senders" in headers_of(dead[1])["kinship_error"]
        # Where each came from exactly, and when: as every consumer's dead letters say it.
        for record in dead:
            origin = headers_of(record)
            assert (origin["kinship_origin_topic"], origin["kinship_origin_partition"]) == (
                email_topic,
                "0",
            )
            assert origin["kinship_attempt"] == "0" and origin["kinship_failed_at"][:2] == "20"
        eventually(
            lambda: (readers["email"].committed(partition) or 0) > last.offset,
            timeout=60,
            message="the email senders committed their place past both",
        )
        assert readers["sms"].committed(partition) == sms_place
    finally:
        for reader in readers.values():
            reader.close()
    assert service.fakes.twilio_messages() == [] and service.fakes.sendgrid_requests() == []
    sms_dlq = dead_letter_topic(DISPATCH_TOPICS["sms"], groups["sms"])
    assert sum(end_offsets(service.bootstrap, sms_dlq).values()) == 0


def test_an_sms_lane_sends_on_the_one_connection_it_holds(service: Service) -> None:
    # Each lane of a batch holds a connection for its texts. A lane that needed a second one
    # to claim its first text waited on the pool with every other lane: when the lanes held the
    # whole pool, none could start before the pool's timeout (CI once saw a 29 s stall). So a
    # lane must send on its own connection alone: a pool of one serves one lane.
    from dataclasses import replace

    from sqlalchemy import create_engine

    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published

    people = seed_audience(service.engine, "camp-p", "org-p", 3, phone_every=1, time_zone="UTC")
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-p", "camp-p", "org-p", ["sms"]), conn)
    one = create_engine(
        service.engine.url, pool_size=1, max_overflow=0, pool_timeout=3, hide_parameters=True
    )
    # (Its once-a-second recheck of the texts still to go takes a pool transaction, as a failed
    # text's settling does: the pool is sized for those. Not this lane's subject.)
    config = service.deps.config.with_(sms_concurrency=1, sms_recheck_seconds=3600.0)
    deps = replace(service.deps, engine=one, config=config)
    deps.clock = lambda: NOON_UTC
    try:
        outcome = Deliverer(deps).send_alert_sms_batch(_batch("alert-p", people), TokenBucket(1e3))
    finally:
        one.dispose()
    assert outcome == "done"
    assert len(service.fakes.twilio_messages()) == 3
    assert service.rows(alerts, alerts.c.alert_id == "alert-p")[0].sent == 3


class _Meanwhile:
    """An SMS sender that does something (a STOP arrives, the clock turns) after a text."""

    def __init__(self, real: Any, after: int, then: Callable[[], None]) -> None:
        self.real, self.after, self.then, self.sent = real, after, then, 0

    def send(self, sms: Any) -> Any:
        accepted = self.real.send(sms)
        self.sent += 1
        if self.sent == self.after:
            self.then()
        return accepted


def _one_lane_rechecking(service: Service, sender: Any) -> Any:
    from dataclasses import replace

    config = service.deps.config.with_(sms_concurrency=1, sms_recheck_seconds=0.0)
    return replace(service.deps, sms=sender, config=config)


def test_a_stop_texted_while_a_batch_goes_out_holds_for_the_rest_of_it(service: Service) -> None:
    """A batch of 100 at 10 texts a second takes 10 s (100 s at a long code's rate): a STOP
    received meanwhile must stop the batch's text to that number, not only the next batch's."""
    from services.notifications import compliance
    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published

    people = seed_audience(service.engine, "camp-m", "org-m", 4, phone_every=1, time_zone="UTC")
    service.deps.clock = lambda: NOON_UTC
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-m", "camp-m", "org-m", ["sms"]), conn)

    def stop_texted() -> None:
        with service.engine.begin() as conn:
            compliance.sms_stop(conn, service.deps.outbox, people[2]["phone_hash"], NOON_UTC)

    deps = _one_lane_rechecking(service, _Meanwhile(service.deps.sms, 1, stop_texted))
    batch = _batch("alert-m", people)
    assert Deliverer(deps).send_alert_sms_batch(batch, TokenBucket(1e3)) == "done"
    sent_to = [t.body["To"] for t in service.fakes.twilio_messages()]
    assert sorted(sent_to) == sorted(people[i]["phone"] for i in (0, 1, 3))
    row = service.rows(alerts, alerts.c.alert_id == "alert-m")[0]
    assert (row.sent, row.suppressed, row.failed) == (3, 1, 0)  # the expander counts total
    stopped = service.rows(deliveries, deliveries.c.recipient_id == people[2]["supporter_id"])
    assert [r.status for r in stopped] == ["suppressed"]


class _RefusedOnce:
    """A sender (SMS or email) whose provider answers 429 to its first request, while
    something happens (a STOP, an unsubscribe, a new address) before the retry."""

    def __init__(self, real: Any, meanwhile: Callable[[], None]) -> None:
        self.real, self.meanwhile, self.tried = real, meanwhile, 0

    def send(self, sms: Any) -> Any:
        return self._after_one_refusal(self.real.send, sms)

    def send_batch(self, batch: Any) -> Any:
        return self._after_one_refusal(self.real.send_batch, batch)

    def _after_one_refusal(self, call: Callable[[Any], Any], message: Any) -> Any:
        from services.notifications.senders import TransientSendError

        self.tried += 1
        if self.tried == 1:
            self.meanwhile()
            raise TransientSendError("provider 429", retry_after=0.1)
        return call(message)


def test_a_stop_texted_during_a_retry_wait_holds_for_the_retry(service: Service) -> None:
    """The provider's Retry-After can be long: a STOP (or 21:00) during the wait holds for
    the text being retried, as for those still to go, and it is not sent."""
    from services.notifications import compliance
    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published

    people = seed_audience(service.engine, "camp-w", "org-w", 2, phone_every=1, time_zone="UTC")
    service.deps.clock = lambda: NOON_UTC
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-w", "camp-w", "org-w", ["sms"]), conn)
    first = people[0]

    def stop_texted() -> None:
        with service.engine.begin() as conn:
            compliance.sms_stop(conn, service.deps.outbox, first["phone_hash"], NOON_UTC)

    # One lane, rechecking only before a retry: the STOP comes after its text was tried once.
    config = service.deps.config.with_(sms_concurrency=1, sms_recheck_seconds=3600.0)
    from dataclasses import replace

    deps = replace(service.deps, sms=_RefusedOnce(service.deps.sms, stop_texted), config=config)
    outcome = Deliverer(deps).send_alert_sms_batch(_batch("alert-w", people), TokenBucket(1e3))
    assert outcome == "done"
    assert [t.body["To"] for t in service.fakes.twilio_messages()] == [people[1]["phone"]]
    row = service.rows(alerts, alerts.c.alert_id == "alert-w")[0]
    assert (row.sent, row.suppressed, row.failed) == (1, 1, 0)
    [stopped] = service.rows(deliveries, deliveries.c.recipient_id == first["supporter_id"])
    assert stopped.status == "suppressed"


def test_texts_met_by_a_twilio_outage_wait_for_it_and_go_once(service: Service) -> None:
    """Twilio answers 503 for longer than a text's retries last, over two tries of the batch:
    each try stops failing nobody, its texts queued again, none counted as possibly sent
    (they were refused); taken up after the outage, each goes once."""
    from dataclasses import replace

    from services.notifications.delivery import ProviderDown
    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published

    people = seed_audience(service.engine, "camp-t", "org-t", 6, phone_every=1, time_zone="UTC")
    service.deps.clock = lambda: NOON_UTC
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-t", "camp-t", "org-t", ["sms"]), conn)
    service.fakes.set_faults("twilio", {"rules": [{"kind": "status", "status": 503}]})
    config = service.deps.config.with_(send_max_attempts=2)  # four lanes, as by default
    deliverer = Deliverer(replace(service.deps, config=config))
    batch = _batch("alert-t", people)
    for _ in range(2):
        with pytest.raises(ProviderDown):
            deliverer.send_alert_sms_batch(batch, TokenBucket(1e3))
        assert {r.status for r in service.rows(deliveries)} == {"queued"}
    service.fakes.clear_faults("twilio")
    assert deliverer.send_alert_sms_batch(batch, TokenBucket(1e3)) == "done"  # taken up again
    sent = sorted(t.body["To"] for t in service.fakes.twilio_messages())
    assert sent == sorted(p["phone"] for p in people)
    row = service.rows(alerts, alerts.c.alert_id == "alert-t")[0]
    assert (row.sent, row.failed, row.ambiguous, row.dead_batches) == (6, 0, 0, 0)


def test_discreet_mode_turned_on_during_a_retry_wait_holds_for_the_retry(service: Service) -> None:
    """A supporter turns discreet mode on while the provider's Retry-After runs: the text
    retried is the discreet one, not the one naming the cause."""
    from dataclasses import replace

    from sqlalchemy import update

    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published
    from services.notifications.store import supporters

    people = seed_audience(service.engine, "camp-d", "org-d", 1, phone_every=1, time_zone="UTC")
    service.deps.clock = lambda: NOON_UTC
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-d", "camp-d", "org-d", ["sms"]), conn)

    def discreet_now() -> None:
        with service.engine.begin() as conn:
            conn.execute(
                update(supporters)
                .where(supporters.c.supporter_id == people[0]["supporter_id"])
                .values(discreet=True)
            )

    config = service.deps.config.with_(sms_concurrency=1, sms_recheck_seconds=3600.0)
    deps = replace(service.deps, sms=_RefusedOnce(service.deps.sms, discreet_now), config=config)
    outcome = Deliverer(deps).send_alert_sms_batch(_batch("alert-d", people), TokenBucket(1e3))
    assert outcome == "done"
    [text] = service.fakes.twilio_messages()
    assert text.body["Body"].startswith("A reminder from your group.")
    assert "language access" not in text.body["Body"]


def test_an_unsubscribe_during_an_email_retry_wait_holds_for_the_retry(service: Service) -> None:
    """SendGrid's Retry-After can be long: a one-click unsubscribe during the wait holds for
    the request being retried, which goes to the others only."""
    from dataclasses import replace

    from services.notifications.handlers import handle_alert_published

    project_org(service, "org-e")
    people = seed_audience(service.engine, "camp-e", "org-e", 3, sms_consent=False)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-e", "camp-e", "org-e", ["email"]), conn)

    def unsubscribed() -> None:
        response = service.client().post(f"/unsubscribe/{token_of(service, people[1], 'org-e')}")
        assert response.status_code == 200

    deps = replace(service.deps, email=_RefusedOnce(service.deps.email, unsubscribed))
    assert Deliverer(deps).send_alert_email_batch(_batch("alert-e", people)) == "done"
    [request] = service.fakes.sendgrid_requests()
    to = [p["to"][0]["email"] for p in request.body["personalizations"]]
    assert sorted(to) == sorted(people[i]["email"] for i in (0, 2))
    row = service.rows(alerts, alerts.c.alert_id == "alert-e")[0]
    assert (row.sent, row.suppressed, row.failed) == (2, 1, 0)
    [held] = service.rows(deliveries, deliveries.c.recipient_id == people[1]["supporter_id"])
    assert held.status == "suppressed"


def test_discreet_mode_turned_on_during_an_email_retry_wait_holds_for_the_retry(
    service: Service,
) -> None:
    """As for a text: the email request retried after a Retry-After is built for the
    supporter as now stored, with the neutral subject and sender and no preview of the body
    (it was sent as first built, its subject naming the cause)."""
    from dataclasses import replace

    from sqlalchemy import update

    from services.notifications.handlers import handle_alert_published
    from services.notifications.store import supporters

    project_org(service, "org-v")
    people = seed_audience(service.engine, "camp-v", "org-v", 2, sms_consent=False)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-v", "camp-v", "org-v", ["email"]), conn)
    turned = people[1]

    def discreet_now() -> None:
        with service.engine.begin() as conn:
            conn.execute(
                update(supporters)
                .where(supporters.c.supporter_id == turned["supporter_id"])
                .values(discreet=True)
            )

    deps = replace(service.deps, email=_RefusedOnce(service.deps.email, discreet_now))
    assert Deliverer(deps).send_alert_email_batch(_batch("alert-v", people)) == "done"
    [request] = service.fakes.sendgrid_requests()
    sent = {p["to"][0]["email"]: p for p in request.body["personalizations"]}
    assert set(sent) == {p["email"] for p in people}
    assert sent[turned["email"]]["subject"] == "An update for you"
    assert sent[turned["email"]]["from"]["name"] == "Kinship"
    assert "subject" not in sent[people[0]["email"]]


def test_an_alert_cancelled_during_an_email_retry_wait_sends_nothing(service: Service) -> None:
    """An organizer cancels while a batch waits out SendGrid's Retry-After: the retry sends
    nothing, and the batch's recipients count as suppressed."""
    from dataclasses import replace

    from services.notifications.handlers import handle_alert_cancelled, handle_alert_published
    from tests.integration.notifications.harness import event

    project_org(service, "org-x")
    people = seed_audience(service.engine, "camp-x", "org-x", 3, sms_consent=False)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-x", "camp-x", "org-x", ["email"]), conn)

    def cancel() -> None:
        cancelled = event("alert.cancelled", "camp-x", alert_id="alert-x", campaign_id="camp-x")
        with service.engine.begin() as conn:
            handle_alert_cancelled(service.deps, cancelled, conn)

    deps = replace(service.deps, email=_RefusedOnce(service.deps.email, cancel))
    assert Deliverer(deps).send_alert_email_batch(_batch("alert-x", people)) == "done"
    assert service.fakes.sendgrid_requests() == []
    row = service.rows(alerts, alerts.c.alert_id == "alert-x")[0]
    assert (row.status, row.sent, row.suppressed, row.failed) == ("cancelled", 0, 3, 0)


def test_an_alert_prints_the_sender_and_address_campaigns_checked(service: Service) -> None:
    """organization.updated is keyed apart from the alert and may come after it: the footer
    is the one campaigns checked when it published, not this service's older copy."""
    from services.notifications.handlers import handle_alert_published

    project_org(service, "org-s", name="Old Name")  # before its address was set
    people = seed_audience(service.engine, "camp-s", "org-s", 2, sms_consent=False)
    sender = {"name": "Hapa Voices", "postal_address": "88 Harmony St, Seattle, WA 98104"}
    published = alert("alert-s", "camp-s", "org-s", ["email"], sender=sender)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, published, conn)
    assert Deliverer(service.deps).send_alert_email_batch(_batch("alert-s", people)) == "done"
    [request] = service.fakes.sendgrid_requests()
    assert request.body["from"]["name"] == "Hapa Voices"
    text = request.body["content"][0]["value"]
    assert "88 Harmony St, Seattle, WA 98104" in text and "1 Way" not in text


def test_an_email_retry_goes_to_the_address_a_supporter_moved_to_during_the_wait(
    service: Service,
) -> None:
    from dataclasses import replace

    from sqlalchemy import update

    from services.notifications.handlers import handle_alert_published
    from services.notifications.store import supporters
    from shared.privacy import email_hash

    project_org(service, "org-n")
    people = seed_audience(service.engine, "camp-n", "org-n", 2, sms_consent=False)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-n", "camp-n", "org-n", ["email"]), conn)
    new = "moved@example.org"

    def moved() -> None:
        with service.engine.begin() as conn:
            conn.execute(
                update(supporters)
                .where(supporters.c.supporter_id == people[0]["supporter_id"])
                .values(email=new, email_hash=email_hash(HASH_KEY, new))
            )

    deps = replace(service.deps, email=_RefusedOnce(service.deps.email, moved))
    assert Deliverer(deps).send_alert_email_batch(_batch("alert-n", people)) == "done"
    [request] = service.fakes.sendgrid_requests()
    to = sorted(p["to"][0]["email"] for p in request.body["personalizations"])
    assert to == sorted([new, people[1]["email"]])


def test_texts_of_a_batch_still_going_at_nine_pm_wait_for_the_morning(service: Service) -> None:
    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published

    people = seed_audience(
        service.engine, "camp-n", "org-n", 5, phone_every=1, time_zone="America/New_York"
    )
    evening = datetime(2026, 11, 29, 1, 59, 59, tzinfo=UTC)  # 20:59:59 in New York
    service.deps.clock = lambda: evening
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-n", "camp-n", "org-n", ["sms"]), conn)

    def nine_pm() -> None:
        deps.clock = lambda: evening + timedelta(seconds=2)

    deps = _one_lane_rechecking(service, _Meanwhile(service.deps.sms, 2, nine_pm))
    assert Deliverer(deps).send_alert_sms_batch(_batch("alert-n", people), TokenBucket(1e3)) == (
        "done"
    )
    assert len(service.fakes.twilio_messages()) == 2
    rows = service.rows(deliveries, deliveries.c.alert_id == "alert-n")
    assert Counter(r.status for r in rows) == {"sent": 2, "deferred": 3}
    morning = datetime(2026, 11, 29, 13, tzinfo=UTC)  # 08:00 in New York
    assert {r.not_before for r in rows if r.status == "deferred"} == {morning}
    assert all(r.batch_key is None for r in rows if r.status == "deferred")  # the poller's
    row = service.rows(alerts, alerts.c.alert_id == "alert-n")[0]
    assert (row.sent, row.deferred) == (2, 3)


def test_a_welcome_queued_at_eight_goes_before_the_texts_deferred_overnight(
    service: Service,
) -> None:
    """At 08:00 an alert's texts deferred overnight are all due, and go at the SMS rate: a
    welcome text queued a few minutes later must not wait behind every one of them."""
    from services.notifications.domain import TokenBucket
    from services.notifications.handlers import handle_alert_published, queue_sms_welcome

    people = seed_audience(
        service.engine, "camp-m", "org-m", 12, phone_every=1, time_zone="America/New_York"
    )
    night = datetime(2026, 11, 29, 4, tzinfo=UTC)  # 23:00 in New York
    service.deps.clock = lambda: night
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-m", "camp-m", "org-m", ["sms"]), conn)
    deliverer = Deliverer(service.deps)
    assert deliverer.send_alert_sms_batch(_batch("alert-m", people[:10]), TokenBucket(1e3)) == (
        "done"
    )
    assert service.count(deliveries, deliveries.c.status == "deferred") == 10
    morning = datetime(2026, 11, 29, 13, 5, tzinfo=UTC)  # 08:05 in New York
    with service.engine.begin() as conn:
        params = {"organization_id": "org-m", "title": "Fund language access"}
        queue_sms_welcome(conn, people[11]["supporter_id"], None, params, morning)
    service.deps.clock = lambda: morning + timedelta(minutes=1)
    claim, rows = deliverer.claim_due(4, "sms")
    assert len(rows) == 4 and "sms_welcome" in {row.kind for row in rows}


def _queue_thanks(service: Service, people: list[dict[str, Any]]) -> None:
    from services.notifications.handlers import queue

    with service.engine.begin() as conn:
        for person in people:
            queue(
                conn, message_key=f"thanks:{person['supporter_id']}",
                recipient_id=person["supporter_id"], channel="email", kind="thank_you",
                params={"organization_id": "org-q", "title": "Fund language access"},
                now=datetime.now(UTC),
            )  # fmt: skip


def _claims_age(service: Service) -> None:
    from sqlalchemy import update

    with service.engine.begin() as conn:
        conn.execute(update(deliveries).values(claimed_at=datetime.now(UTC) - timedelta(hours=1)))


def test_a_refused_email_key_pauses_email_only_and_texts_go_on(service: Service) -> None:
    """A revoked SendGrid key must not hold up welcome texts (nor a revoked Twilio key the
    confirmation links): the poller pauses the refused channel alone."""
    from services.notifications.fanout import QueuePoller
    from services.notifications.handlers import queue_sms_welcome

    people = seed_audience(service.engine, "camp-q", "org-q", 2, phone_every=1, time_zone="UTC")
    _queue_thanks(service, people[:1])
    with service.engine.begin() as conn:
        params = {"organization_id": "org-q", "title": "Fund language access"}
        queue_sms_welcome(conn, people[1]["supporter_id"], None, params, datetime.now(UTC))
    service.fakes.set_faults("sendgrid", {"rules": [{"kind": "status", "status": 401}]})
    poller = QueuePoller(service.deps)
    assert poller.run_once() == 2
    assert [t.body["To"] for t in service.fakes.twilio_messages()] == [people[1]["phone"]]
    [thanks] = service.rows(deliveries, deliveries.c.kind == "thank_you")
    assert (thanks.status, thanks.attempts) == ("queued", 0)  # waiting, not failed
    assert poller.run_once() == 0  # email paused: SendGrid is not asked again at once
    assert len(service.fakes.faults("sendgrid")) == 1


class _CountingInFlight:
    """An SMS sender that notes how many of its requests were in flight at once."""

    def __init__(self, real: Any) -> None:
        self.real, self.lock = real, threading.Lock()
        self.now = self.most = 0

    def send(self, sms: Any) -> Any:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.05)  # a provider's latency
            return self.real.send(sms)
        finally:
            with self.lock:
                self.now -= 1


def test_texts_due_together_go_out_several_at_a_time_each_once(service: Service) -> None:
    """The texts a night deferred all come due at 08:00: the poller sends them in lanes
    (SMS_CONCURRENCY) under the rate, not one after another at a provider's latency (a few a
    second, whatever SMS_RATE_PER_SECOND said)."""
    from dataclasses import replace

    from services.notifications.fanout import QueuePoller
    from services.notifications.handlers import queue_sms_welcome

    people = seed_audience(service.engine, "camp-l", "org-l", 8, phone_every=1, time_zone="UTC")
    with service.engine.begin() as conn:
        for person in people:
            params = {"organization_id": "org-l", "title": "Fund language access"}
            queue_sms_welcome(conn, person["supporter_id"], None, params, datetime.now(UTC))
    counting = _CountingInFlight(service.deps.sms)
    poller = QueuePoller(replace(service.deps, sms=counting))
    assert poller.run_once() == len(people)
    sent = sorted(t.body["To"] for t in service.fakes.twilio_messages())
    assert sent == sorted(p["phone"] for p in people)
    assert counting.most > 1
    assert {r.status for r in service.rows(deliveries)} == {"sent"}


def test_a_refused_key_pauses_texts_even_when_a_lane_meets_an_outage_too(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One lane's text meets a refused key while another's meets the database gone: the
    channel still pauses (the next round would send more with the key refused) and the
    rows not tried are handed back, before the outage reaches the run loop."""
    from types import SimpleNamespace

    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from services.notifications.fanout import QueuePoller
    from services.notifications.senders import CredentialsRefused

    poller = QueuePoller(service.deps)
    rows = [SimpleNamespace(channel="sms", delivery_id=f"d{i}") for i in range(3)]
    handed_back: list[list[str]] = []

    second_lane = threading.Event()

    def send_claimed(claim: str, row: Any) -> None:
        if row.delivery_id == "d0":
            second_lane.wait(10)  # the other lane has d1 in hand
            raise CredentialsRefused("twilio 401 20003")
        second_lane.set()
        time.sleep(0.3)  # d0's refusal is known before d1's lane fails
        raise PoolTimeout("no connection free")

    monkeypatch.setattr(poller.deliverer, "send_claimed", send_claimed)
    monkeypatch.setattr(
        poller.deliverer, "unclaim", lambda claim, left: handed_back.append(
            [r.delivery_id for r in left]
        )
    )  # fmt: skip
    with pytest.raises(PoolTimeout):
        poller._send_claim("sms", "poll:test", rows, 2)
    assert handed_back == [["d2"]]
    assert poller._paused["sms"] > time.monotonic()


def test_a_sqlite_file_pool_holds_what_a_worker_asks_for(tmp_path: Path) -> None:
    """SQLite (the embedded default) got SQLAlchemy's 5 and 10 overflow whatever the worker's
    threads hold at once; a checkout past them waited 30 s and failed."""
    from shared.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'n.db'}", pool_size=22)
    try:
        assert engine.pool.size() == 22  # type: ignore[attr-defined]
    finally:
        engine.dispose()


class _OutageAfterSending:
    """An email sender whose request goes through, after which the database goes away for a
    couple of seconds: the settle that records it meets the outage."""

    def __init__(self, real: Any, postgres: Any, then: Callable[[], object] = lambda: None) -> None:
        self.real, self.postgres, self.then = real, postgres, then

    def send_batch(self, batch: Any) -> Any:
        accepted = self.real.send_batch(batch)
        self.postgres.stop_server()
        threading.Timer(2.0, self.postgres.start_server).start()
        self.then()
        return accepted


@pytest.mark.parametrize("stopping", [False, True], ids=["running", "SIGTERM in the outage"])
@pytest.mark.parametrize("kind", ["thank-you", "alert"])
def test_a_message_the_provider_took_is_recorded_after_a_database_outage_not_sent_again(
    service: Service, postgres: Any, kind: str, stopping: bool
) -> None:
    """A failover or a restart between SendGrid's 202 and the commit that records it left the
    rows `sending`; whoever took them over sent them again. The settle waits for the database,
    also when the worker is asked to stop meanwhile."""
    from dataclasses import replace

    from services.notifications.handlers import handle_alert_published

    if postgres is None:
        pytest.skip("needs the test session's own PostgreSQL to stop it")
    people = seed_audience(service.engine, "camp-q", "org-q", 3)
    stop = threading.Event()
    then = stop.set if stopping else stop.is_set
    outage = _OutageAfterSending(service.deps.email, postgres, then)
    deliverer = Deliverer(replace(service.deps, email=outage), stop)
    try:
        if kind == "thank-you":
            _queue_thanks(service, people[:1])
            claim, [row] = deliverer.claim_due()
            deliverer.send_claimed(claim, row)
        else:
            with service.engine.begin() as conn:
                handle_alert_published(
                    service.deps, alert("alert-o", "camp-q", "org-q", ["email"]), conn
                )
            assert deliverer.send_alert_email_batch(_batch("alert-o", people)) == "done"
    finally:
        eventually(lambda: (postgres.data / "postmaster.pid").exists(), timeout=30)
    sent = service.rows(deliveries)
    assert {r.status for r in sent} == {"sent"} and len(sent) == (1 if kind == "thank-you" else 3)
    assert len(service.fakes.sendgrid_requests()) == 1
    assert Deliverer(service.deps).claim_due() == (ANY, [])  # nothing left to send again
    if kind == "alert":
        row = service.rows(alerts, alerts.c.alert_id == "alert-o")[0]
        assert (row.sent, row.ambiguous) == (3, 0)


def test_a_confirmation_link_outlasts_a_provider_incident(service: Service) -> None:
    """A queued message waits for its retries in the ledger: a few minutes of SendGrid 503s
    (more attempts than an alert batch makes in its thread) must not lose it."""
    people = seed_audience(service.engine, "camp-q", "org-q", 1)
    _queue_thanks(service, people)
    tries = service.deps.config.send_max_attempts + 3
    service.fakes.set_faults(
        "sendgrid", {"rules": [{"kind": "status", "status": 503, "count": tries}]}
    )
    moment = datetime.now(UTC)
    deliverer = Deliverer(service.deps)
    for _ in range(tries + 1):
        service.deps.clock = lambda at=moment: at
        claim, rows = deliverer.claim_due()
        for row in rows:
            deliverer.send_claimed(claim, row)
        moment += timedelta(minutes=10)  # past any back-off
    [thanks] = service.rows(deliveries, deliveries.c.kind == "thank_you")
    assert (thanks.status, thanks.attempts) == ("sent", tries + 1)
    assert len(service.fakes.sendgrid_requests()) == 1


def test_a_queued_message_failing_by_an_error_of_its_own_holds_up_no_other(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug, or data the code cannot handle, in one message: the rest of the poller's claim
    goes at once (not after the claim's 5-minute lease), and the bad one is retried a
    bounded number of times, then failed with the error's class."""
    from dataclasses import replace

    from services.notifications.fanout import QueuePoller

    people = seed_audience(service.engine, "camp-q", "org-q", 3)
    _queue_thanks(service, people)
    bad = people[0]["supporter_id"]
    real = Deliverer._single_email

    def single_email(self: Deliverer, row: Any, *args: Any) -> Any:
        if row.recipient_id == bad:
            raise ValueError("a template this code cannot fill")
        return real(self, row, *args)

    monkeypatch.setattr(Deliverer, "_single_email", single_email)
    service.deps.config = replace(service.deps.config, queued_max_attempts=3)
    moment = datetime.now(UTC)
    poller = QueuePoller(service.deps)
    for _ in range(3):
        service.deps.clock = lambda at=moment: at
        poller.run_once()
        moment += timedelta(minutes=10)  # past the back-off
    sent = sorted(email for email, _ in service.fakes.sendgrid_recipients())
    assert sent == sorted(p["email"] for p in people[1:])
    [failed] = service.rows(deliveries, deliveries.c.recipient_id == bad)
    assert (failed.status, failed.error_code, failed.attempts) == ("failed", "error:ValueError", 3)


def test_a_live_pollers_message_in_flight_is_not_taken_over_and_sent_again(
    service: Service,
) -> None:
    """A poller claims its due messages together and sends them one after another; a slow
    provider can make the last ones start after the claim's lease. Another poller must not
    take over the one being sent."""
    people = seed_audience(service.engine, "camp-q", "org-q", 1)
    _queue_thanks(service, people)
    first, second = Deliverer(service.deps), Deliverer(service.deps)
    claim, rows = first.claim_due()
    assert len(rows) == 1
    _claims_age(service)  # the earlier sends of the claim took the lease's whole length
    real = service.deps.email
    polled: list[int] = []

    class MeanwhileTheOtherPollerLooks:
        def send_batch(self, batch: Any) -> Any:
            other_claim, other_rows = second.claim_due()
            polled.append(len(other_rows))
            for row in other_rows:
                second.send_claimed(other_claim, row)
            return real.send_batch(batch)

    service.deps.email = MeanwhileTheOtherPollerLooks()  # type: ignore[assignment]
    first.send_claimed(claim, rows[0])
    service.deps.email = real
    assert polled == [0]
    assert [email for email, _ in service.fakes.sendgrid_recipients()] == [people[0]["email"]]
    assert service.rows(deliveries)[0].status == "sent"


def test_a_message_a_dead_poller_left_mid_request_is_resent_and_counted_as_ambiguous(
    service: Service,
) -> None:
    """Thank-you emails have no alert to count on: a possible duplicate still has to show."""
    from prometheus_client import REGISTRY

    def ambiguous() -> float:
        labels = {"channel": "email", "kind": "thank_you"}
        return REGISTRY.get_sample_value("kinship_notifications_ambiguous_total", labels) or 0.0

    before = ambiguous()
    people = seed_audience(service.engine, "camp-q", "org-q", 1)
    _queue_thanks(service, people)
    dead = Deliverer(service.deps)
    claim, rows = dead.claim_due()
    service.deps.email, real = _Crash(), service.deps.email  # type: ignore[assignment]
    with pytest.raises(_Crashed):
        dead.send_claimed(claim, rows[0])
    service.deps.email = real
    _claims_age(service)
    survivor = Deliverer(service.deps)
    claim, rows = survivor.claim_due()
    assert [row.status for row in rows] == ["sending"]
    survivor.send_claimed(claim, rows[0])
    assert [email for email, _ in service.fakes.sendgrid_recipients()] == [people[0]["email"]]
    assert ambiguous() == before + 1


def test_two_expanders_never_write_the_same_slice(service: Service) -> None:
    """The expander's lock lives in a session that can die (a dropped idle connection, a
    failover) while it goes on expanding and a standby takes the lead: only one of them may
    write each slice, or the alert's total counts its audience twice and it never finishes."""
    from services.notifications.fanout import Expander, LeadLost
    from services.notifications.handlers import handle_alert_published

    people = seed_audience(service.engine, "camp-x", "org-x", 2)
    with service.engine.begin() as conn:
        handle_alert_published(service.deps, alert("alert-x", "camp-x", "org-x", ["email"]), conn)
    row = service.rows(alerts)[0]
    ids = sorted(p["supporter_id"] for p in people)
    leader, standby = Expander(service.deps), Expander(service.deps)
    leader._flush(row, "email", ids, 1, {"email": None})
    with pytest.raises(LeadLost):
        standby._flush(row, "email", ids, 1, {"email": None})
    row = service.rows(alerts)[0]
    assert (row.total, row.batches) == (2, 1)


def test_a_welcome_text_sent_late_keeps_quiet_hours_and_a_fresh_one_goes_at_once(
    service: Service,
) -> None:
    """A welcome answers the person's own opt-in: fresh, it goes at once whatever the hour.
    One that waited (a backlog, a provider's pause) waits for daytime, as an alert's do, even
    when it was queued only now (a consumer catching up on a signature made hours ago)."""
    from services.notifications.handlers import queue_sms_welcome
    from shared.events.envelope import format_time

    [late, fresh, queued] = seed_audience(
        service.engine, "camp-n", "org-n", 3, phone_every=1, time_zone="America/Los_Angeles"
    )
    night = datetime(2026, 6, 2, 6, 0, tzinfo=UTC)  # 23:00 in Los Angeles
    params = {"organization_id": "org-n", "title": "Fund language access"}
    hour_ago, just_now = night - timedelta(hours=1), night - timedelta(minutes=2)
    with service.engine.begin() as conn:
        queue_sms_welcome(conn, late["supporter_id"], None, params, hour_ago)
        opted = {**params, "opted_in_at": format_time(just_now)}
        queue_sms_welcome(conn, fresh["supporter_id"], None, opted, just_now)
        behind = {**params, "opted_in_at": format_time(hour_ago)}
        queue_sms_welcome(conn, queued["supporter_id"], None, behind, just_now)
    service.deps.clock = lambda: night
    deliverer = Deliverer(service.deps)
    claim, rows = deliverer.claim_due()
    for row in rows:
        deliverer.send_claimed(claim, row)
    texts = service.fakes.twilio_messages()
    assert [text.body["To"] for text in texts] == [fresh["phone"]]
    morning = datetime(2026, 6, 2, 15, 0, tzinfo=UTC)  # 08:00 in Los Angeles
    for person in (late, queued):
        [waiting] = service.rows(deliveries, deliveries.c.recipient_id == person["supporter_id"])
        assert (waiting.status, aware(waiting.not_before)) == ("deferred", morning)
    service.deps.clock = lambda: morning
    claim, rows = deliverer.claim_due()
    assert sorted(row.recipient_id for row in rows) == sorted(
        p["supporter_id"] for p in (late, queued)
    )
    for row in rows:
        deliverer.send_claimed(claim, row)
    sent = sorted(text.body["To"] for text in service.fakes.twilio_messages()[1:])
    assert sent == sorted([late["phone"], queued["phone"]])


def test_a_poller_whose_lease_ran_out_does_not_defer_a_text_another_is_sending(
    service: Service,
) -> None:
    """Poller A's lease on a claimed welcome ran out (a slow provider on the rows before it)
    and poller B took it and is sending it; A, reaching it at night, must not move it to
    deferred, or it would go again in the morning."""
    from services.notifications import ledger
    from services.notifications.handlers import queue_sms_welcome

    [person] = seed_audience(
        service.engine, "camp-l", "org-l", 1, phone_every=1, time_zone="America/Los_Angeles"
    )
    night = datetime(2026, 6, 2, 6, 0, tzinfo=UTC)  # 23:00 in Los Angeles
    with service.engine.begin() as conn:
        params = {"organization_id": "org-l", "title": "Fund language access"}
        queue_sms_welcome(conn, person["supporter_id"], None, params, night - timedelta(hours=1))
    service.deps.clock = lambda: night
    first, second = Deliverer(service.deps), Deliverer(service.deps)
    claim_a, [row_a] = first.claim_due()
    service.deps.clock = lambda: night + timedelta(hours=1)  # A's lease has run out
    claim_b, [row_b] = second.claim_due()
    with service.engine.begin() as conn:  # B holds it in `sending`: its request is under way
        ledger.transition(
            conn, [row_b.delivery_id], "sending", night,
            from_status=("queued",), batch_key=claim_b, new_key=claim_b,
        )  # fmt: skip
    first.send_claimed(claim_a, row_a)
    [row] = service.rows(deliveries, deliveries.c.delivery_id == row_a.delivery_id)
    assert (row.status, row.batch_key) == ("sending", claim_b)


def test_a_welcome_waiting_for_the_morning_needs_the_consent_still_standing(
    service: Service,
) -> None:
    """A welcome deferred to 08:00 goes under the consent as it stands then: not to a person
    who turned texts off in the night, nor to a number typed since with their address (the
    consent was given with the old one)."""
    from sqlalchemy import update

    from services.notifications import audience, preferences
    from services.notifications.handlers import queue_sms_welcome
    from services.notifications.store import supporters
    from shared.privacy import phone_hash

    people = seed_audience(
        service.engine, "camp-c", "org-c", 3, phone_every=1, time_zone="America/Los_Angeles"
    )
    [turned_off, renumbered, kept] = people
    night = datetime(2026, 6, 2, 6, 0, tzinfo=UTC)  # 23:00 in Los Angeles
    params = {"organization_id": "org-c", "title": "Fund language access"}
    with service.engine.begin() as conn:
        for person in people:
            queue_sms_welcome(
                conn, person["supporter_id"], None, params, night - timedelta(hours=1)
            )
    service.deps.clock = lambda: night
    deliverer = Deliverer(service.deps)
    claim, rows = deliverer.claim_due()
    for row in rows:
        deliverer.send_claimed(claim, row)
    assert service.fakes.twilio_messages() == []  # all three wait for the morning
    with service.engine.begin() as conn:
        person = audience.load_supporters(conn, [turned_off["supporter_id"]])[
            turned_off["supporter_id"]
        ]
        preferences.set_sms_consent(conn, service.deps.outbox, person, "org-c", False, night)
        stranger = "+14155559999"
        conn.execute(
            update(supporters)
            .where(supporters.c.supporter_id == renumbered["supporter_id"])
            .values(phone=stranger, phone_hash=phone_hash(HASH_KEY, stranger))
        )
    service.deps.clock = lambda: datetime(2026, 6, 2, 15, 0, tzinfo=UTC)  # 08:00 there
    claim, rows = deliverer.claim_due()
    assert len(rows) == 3
    for row in rows:
        deliverer.send_claimed(claim, row)
    assert [text.body["To"] for text in service.fakes.twilio_messages()] == [kept["phone"]]
    for person in (turned_off, renumbered):
        [row] = service.rows(deliveries, deliveries.c.recipient_id == person["supporter_id"])
        assert (row.status, row.error_code) == ("suppressed", "no_consent")


def test_batches_failing_in_turns_are_each_given_up(service: Service) -> None:
    """A sender owns several partitions: batches failing at their heads come back in turns,
    and each is still given up after BATCH_MAX_ATTEMPTS tries of its own (a count kept for
    the latest record only was reset by the other each time: neither was ever given up, and
    the channel stalled behind them)."""
    from services.notifications.fanout import DispatchSender

    first = _published_batch_record(service, "t1", 2)
    second = _published_batch_record(service, "t2", 2)
    second.partition = 1
    sender = DispatchSender(service.deps, "email", "in-turns", group=f"{service.group}-it")
    waits: dict[int, list[float | None]] = {0: [], 1: []}
    try:
        for _ in range(service.deps.config.batch_max_attempts):
            for record in (first, second):
                waits[record.partition].append(
                    sender._after_failure(record, ValueError("a fault of ours"))
                )
    finally:
        if sender._producer is not None:
            sender._producer.close()
    for each in waits.values():
        assert each[-1] is None and None not in each[:-1]
    dlq = dead_letter_topic(DISPATCH_TOPICS["email"], sender.group)
    assert sum(end_offsets(service.bootstrap, dlq).values()) == 2
    assert sorted((r.failed, r.dead_batches) for r in service.rows(alerts)) == [(2, 1), (2, 1)]
