"""One contract for each port, run against every adapter: capture and the real SDKs over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from services.notifications.capture import list_captured
from services.notifications.senders import (
    Accepted,
    CredentialsRefused,
    EmailBatch,
    EmailSender,
    PermanentSendError,
    Recipient,
    Sms,
    SmsSender,
    TransientSendError,
    substitute,
)
from services.notifications.senders.capture import CaptureEmailSender, CaptureSmsSender
from services.notifications.senders.sendgrid import SendGridSender
from services.notifications.senders.twilio import TwilioSender
from services.notifications.store import metadata
from shared.db import make_engine
from tests.fakes.providers import FakeRecords
from tests.integration.notifications.harness import ACCOUNT_SID, AUTH_TOKEN, SENDGRID_KEY
from tests.support.postgres import free_port

pytestmark = pytest.mark.integration


def batch(*addresses: str) -> EmailBatch:
    return EmailBatch(
        from_email="alerts@example.org",
        from_name="Org",
        subject="Hello",
        text="Hi -unsubscribe_url-",
        html="<p>Hi</p>",
        recipients=[
            Recipient(
                a, None, {"notification_id": str(i)}, substitutions={"-unsubscribe_url-": "u"}
            )
            for i, a in enumerate(addresses)
        ],
    )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'capture.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["capture", "sendgrid"])
def email(
    request: pytest.FixtureRequest, engine: Engine, provider_urls: tuple[str, str]
) -> EmailSender:
    if request.param == "capture":
        return CaptureEmailSender(engine)
    return SendGridSender.build(SENDGRID_KEY, provider_urls[0], timeout=10.0)


@pytest.fixture(params=["capture", "twilio"])
def sms(
    request: pytest.FixtureRequest, engine: Engine, provider_urls: tuple[str, str]
) -> SmsSender:
    if request.param == "capture":
        return CaptureSmsSender(engine)
    return TwilioSender.build(
        ACCOUNT_SID, AUTH_TOKEN, provider_urls[1], from_number="+15557654321", timeout=10.0
    )


def test_email_sender_delivers_a_batch(email: EmailSender, engine: Engine, fakes_db: Path) -> None:
    accepted = email.send_batch(batch("a@example.org", "b@example.org"))
    assert accepted.provider_message_id
    if isinstance(email, CaptureEmailSender):
        arrived = [
            (row["to_address"], row["delivery_id"], row["body"])
            for row in list_captured(engine, channel="email")
        ]
    else:  # the one request the fake SendGrid answered with this message id
        [request] = [
            r
            for r in FakeRecords(fakes_db).sendgrid_requests()
            if r.resource_id == accepted.provider_message_id
        ]
        text = request.body["content"][0]["value"]
        arrived = [
            (to["email"], p["custom_args"]["notification_id"], substitute(text, p["substitutions"]))
            for p in request.body["personalizations"]
            for to in p["to"]
        ]
    assert sorted(arrived) == [("a@example.org", "0", "Hi u"), ("b@example.org", "1", "Hi u")]


def test_sms_sender_delivers_a_message(sms: SmsSender, engine: Engine, fakes_db: Path) -> None:
    accepted = sms.send(Sms("+14155550100", "Hi. Reply STOP to opt out."))
    assert accepted.provider_message_id
    if isinstance(sms, CaptureSmsSender):
        arrived = [(row["to_address"], row["body"]) for row in list_captured(engine)]
    else:
        arrived = [
            (r.body["To"], r.body["Body"])
            for r in FakeRecords(fakes_db).twilio_messages()
            if r.resource_id == accepted.provider_message_id
        ]
    assert arrived == [("+14155550100", "Hi. Reply STOP to opt out.")]


def test_sendgrid_errors_map_to_transient_or_permanent(
    provider_urls: tuple[str, str], fakes_db: Path
) -> None:
    # Answers are awaited generously; only the stalled request below meets a short timeout.
    sender = SendGridSender.build(SENDGRID_KEY, provider_urls[0], timeout=10.0)
    records = FakeRecords(fakes_db)
    records.set_faults(
        "sendgrid", {"rules": [{"kind": "status", "status": 429, "retry_after": 2, "count": 1}]}
    )
    with pytest.raises(TransientSendError) as busy:
        sender.send_batch(batch("a@example.org"))
    assert busy.value.retry_after == 2 and not busy.value.ambiguous
    records.set_faults(
        "sendgrid", {"rules": [{"kind": "timeout", "seconds": 5, "accept": True, "count": 1}]}
    )
    impatient = SendGridSender.build(SENDGRID_KEY, provider_urls[0], timeout=0.5)
    with pytest.raises(TransientSendError) as slow:
        impatient.send_batch(batch("a@example.org"))
    assert slow.value.ambiguous  # it may have been accepted
    records.clear_faults("sendgrid")
    with pytest.raises(PermanentSendError) as bad:
        sender.send_batch(batch("a@example.org", "not-an-address", "c@example.org"))
    assert bad.value.bad_indices == [1]


def test_a_provider_that_cannot_be_reached_is_an_outage_not_an_ambiguity() -> None:
    """A connection never made (refused here; a name that does not resolve, no route) means
    the provider never had the request: sending waits it out as a 5xx, where an ambiguous
    error fails the batch after its retries (two minutes of SendGrid unreachable lost every
    batch tried meanwhile)."""
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(TransientSendError) as email:
        SendGridSender.build(SENDGRID_KEY, nowhere, timeout=5.0).send_batch(batch("a@x.org"))
    sms_sender = TwilioSender.build(
        ACCOUNT_SID, AUTH_TOKEN, nowhere, from_number="+15557654321", timeout=5.0
    )
    with pytest.raises(TransientSendError) as sms:
        sms_sender.send(Sms("+14155550100", "hi"))
    assert not email.value.ambiguous and not sms.value.ambiguous
    assert "unreachable" in str(email.value) and "unreachable" in str(sms.value)


def test_twilio_refusing_our_sender_pauses_sending_instead_of_failing_the_text(
    provider_urls: tuple[str, str], fakes_db: Path
) -> None:
    """A mistyped TWILIO_FROM_NUMBER (21212) says nothing about the text: every one would
    fail the same way, so it is refused like a revoked key (sending pauses, nobody fails)."""
    sender = TwilioSender.build(
        ACCOUNT_SID, AUTH_TOKEN, provider_urls[1], from_number="+1555-NOT-A-NUMBER", timeout=5.0
    )
    with pytest.raises(CredentialsRefused, match="21212"):
        sender.send(Sms("+14155550100", "hi"))


def test_twilio_errors_map_to_transient_permanent_and_opt_out(
    provider_urls: tuple[str, str], fakes_db: Path
) -> None:
    sender = TwilioSender.build(
        ACCOUNT_SID, AUTH_TOKEN, provider_urls[1], from_number="+15557654321", timeout=5.0
    )
    with pytest.raises(PermanentSendError) as stopped:
        sender.send(Sms("+15005550004", "hi"))
    assert stopped.value.code == "21610" and stopped.value.opt_out
    with pytest.raises(PermanentSendError) as invalid:
        sender.send(Sms("+15005550001", "hi"))
    assert invalid.value.code == "21211" and not invalid.value.opt_out
    FakeRecords(fakes_db).set_faults(
        "twilio", {"rules": [{"kind": "status", "status": 429, "retry_after": 3, "count": 1}]}
    )
    with pytest.raises(TransientSendError) as busy:
        sender.send(Sms("+14155550100", "hi"))
    assert busy.value.retry_after == 3
    FakeRecords(fakes_db).set_faults(
        "twilio", {"rules": [{"kind": "timeout", "seconds": 5, "accept": True, "count": 1}]}
    )
    slow_sender = TwilioSender.build(
        ACCOUNT_SID, AUTH_TOKEN, provider_urls[1], from_number="+15557654321", timeout=0.5
    )
    with pytest.raises(TransientSendError) as slow:
        slow_sender.send(Sms("+14155550102", "hi"))
    assert slow.value.ambiguous  # it may have been accepted
    assert sender.send(Sms("+14155550103", "hi")).provider_message_id


def test_a_twilio_429_keeps_its_retry_after_while_other_lanes_send(
    provider_urls: tuple[str, str], fakes_db: Path
) -> None:
    """SMS lanes share one client. Another lane's request landing between a 429 and the read
    of its Retry-After must not take the pause away (or lend its own)."""
    sender = TwilioSender.build(
        ACCOUNT_SID, AUTH_TOKEN, provider_urls[1], from_number="+15557654321", timeout=5.0
    )
    http = sender.client.http_client
    own_request = http.request
    me = threading.current_thread()
    others: list[Accepted] = []

    def request_then_another_lane(*args: Any, **kwargs: Any) -> Any:
        response = own_request(*args, **kwargs)
        if threading.current_thread() is me and not others:
            lane = threading.Thread(
                target=lambda: others.append(sender.send(Sms("+14155550101", "hi")))
            )
            lane.start()
            lane.join()
        return response

    http.request = request_then_another_lane  # type: ignore[method-assign]
    FakeRecords(fakes_db).set_faults(
        "twilio", {"rules": [{"kind": "status", "status": 429, "retry_after": 5, "count": 1}]}
    )
    with pytest.raises(TransientSendError) as busy:
        sender.send(Sms("+14155550100", "hi"))
    assert len(others) == 1 and others[0].provider_message_id  # the other lane's text went
    assert busy.value.retry_after == 5


def test_sendgrid_body_reaches_the_provider_whole_and_stays_out_of_debug_logs(
    provider_urls: tuple[str, str], fakes_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK's HTTP client formats each body into a debug message: it shows only a size."""
    sender = SendGridSender.build(SENDGRID_KEY, provider_urls[0], timeout=10.0)
    caplog.set_level("DEBUG", logger="python_http_client")
    sender.send_batch(batch("ngoc.anh@example.org", "José.Ñúñez@example.org"))
    body = FakeRecords(fakes_db).sendgrid_requests()[-1].body
    sent = [p["to"][0]["email"] for p in body["personalizations"]]
    assert sent == ["ngoc.anh@example.org", "José.Ñúñez@example.org"]
    # Never tracked: no link through SendGrid's redirects, no pixel, whatever the account says.
    tracking = body["tracking_settings"]
    assert tracking["click_tracking"] == {"enable": False, "enable_text": False}
    assert tracking["open_tracking"] == {"enable": False}
    # Nor SendGrid's own unsubscribe link: it would put the address on the account's global
    # list, one organization's unsubscribe dropping every organization's mail.
    assert tracking["subscription_tracking"] == {"enable": False}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "PAYLOAD: <" in logged and "bytes of JSON>" in logged
    assert "example.org" not in logged
