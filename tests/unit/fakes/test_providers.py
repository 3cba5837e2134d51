"""The fake SendGrid and Twilio servers, driven by the official SDKs over real HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from jsonschema import Draft202012Validator
from python_http_client.exceptions import (
    BadRequestsError,
    InternalServerError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Content, CustomArg, Email, Mail, Personalization, To
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.fakes.providers import (
    FakeRecords,
    running_sendgrid_fake,
    running_twilio_fake,
    start_fake_process,
    twilio_response_schema,
)
from tests.support.polling import eventually

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "fake-token"
API_KEY = "SG.fake-key"
UNSUBSCRIBED = "+15550001111"
SID_RE = re.compile(r"^SM[0-9a-f]{32}$")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "fakes.sqlite"


@pytest.fixture
def records(db_path: Path) -> FakeRecords:
    return FakeRecords(db_path)


@pytest.fixture
def sendgrid_url(db_path: Path) -> Iterator[str]:
    with running_sendgrid_fake(db_path, api_key=API_KEY) as url:
        yield url


@pytest.fixture
def sg(sendgrid_url: str) -> SendGridAPIClient:
    return SendGridAPIClient(api_key=API_KEY, host=sendgrid_url)


@pytest.fixture
def twilio_url(db_path: Path) -> Iterator[str]:
    with running_twilio_fake(
        db_path, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, unsubscribed={UNSUBSCRIBED}
    ) as url:
        yield url


def twilio_client(url: str, **http: Any) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=TwilioHttpClient(**http))
    client.api.base_url = url
    return client


@pytest.fixture
def twilio(twilio_url: str) -> Client:
    return twilio_client(twilio_url)


def set_faults(url: str, config: dict[str, Any]) -> None:
    response = requests.post(f"{url}/_fake/faults", json=config, timeout=5)
    assert response.status_code == 200, response.text


def three_person_mail() -> Mail:
    mail = Mail(from_email=Email("alerts@example.org"), subject="Act now")
    mail.add_content(Content("text/plain", "Sign the petition"))
    for i in range(3):
        pers = Personalization()
        pers.add_to(To(f"member{i}@example.org"))
        pers.add_custom_arg(CustomArg("member_id", str(i)))
        mail.add_personalization(pers)
    mail.custom_arg = CustomArg("campaign", "c-42")
    return mail


def mail_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "from": {"email": "alerts@example.org"},
        "subject": "Act now",
        "content": [{"type": "text/plain", "value": "Sign"}],
        "personalizations": [{"to": [{"email": "a@example.org"}]}],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def error_fields(exc: BadRequestsError) -> list[str | None]:
    return [e["field"] for e in exc.to_dict["errors"]]


# --- SDK facts the README relies on ---


def test_sdk_defaults_have_no_timeout_and_target_the_expected_paths(sg: SendGridAPIClient) -> None:
    assert sg.client.timeout is None
    assert sg.client.mail.send._build_url(None) == f"{sg.host}/v3/mail/send"
    assert TwilioHttpClient().timeout is None
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    assert client.api.base_url == "https://api.twilio.com"


# --- SendGrid ---


def test_sendgrid_accepts_valid_mail_and_records_every_recipient(
    sg: SendGridAPIClient, records: FakeRecords
) -> None:
    response = sg.send(three_person_mail())

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert message_id
    [req] = records.sendgrid_requests()
    assert req.resource_id == message_id
    assert req.headers["Authorization"] == f"Bearer {API_KEY}"
    assert len(req.body["personalizations"]) == 3
    assert sorted(records.sendgrid_recipients()) == [
        (f"member{i}@example.org", {"campaign": "c-42", "member_id": str(i)}) for i in range(3)
    ]


def _to(*emails: str) -> dict[str, Any]:
    return {"to": [{"email": e} for e in emails]}


INVALID_MAILS = {
    "missing-from": (mail_body(**{"from": None}), "from"),
    "1001-personalizations": (
        mail_body(personalizations=[_to(f"u{i}@example.org") for i in range(1001)]),
        "personalizations",
    ),
    "empty-to": (mail_body(personalizations=[{"to": []}]), "personalizations.0.to"),
    "int-custom-arg": (
        mail_body(personalizations=[{**_to("a@example.org"), "custom_args": {"n": 1}}]),
        "personalizations.0.custom_args.n",
    ),
    "1002-recipients": (
        mail_body(
            personalizations=[_to(*(f"p{p}-{i}@example.org" for i in range(501))) for p in range(2)]
        ),
        "personalizations",
    ),
    "no-content": (mail_body(content=None), "content"),
    "bad-email": (
        mail_body(personalizations=[_to("not-an-address")]),
        "personalizations.0.to.0.email",
    ),
}


@pytest.mark.parametrize(("body", "field"), INVALID_MAILS.values(), ids=INVALID_MAILS.keys())
def test_sendgrid_rejects_invalid_mail_naming_the_field(
    sg: SendGridAPIClient, records: FakeRecords, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadRequestsError) as caught:
        sg.send(body)

    assert caught.value.status_code == 400
    assert field in error_fields(caught.value)
    assert all(set(e) == {"message", "field", "help"} for e in caught.value.to_dict["errors"])
    assert records.count() == 0
    assert len(records.rejected("sendgrid")) == 1


def test_sendgrid_requires_bearer_auth(sendgrid_url: str, records: FakeRecords) -> None:
    missing = requests.post(f"{sendgrid_url}/v3/mail/send", json=mail_body(), timeout=5)
    assert missing.status_code == 401
    assert missing.json() == {
        "errors": [{"message": "authorization required", "field": None, "help": None}]
    }
    with pytest.raises(UnauthorizedError):
        SendGridAPIClient(api_key="SG.wrong", host=sendgrid_url).send(mail_body())
    assert records.count() == 0


def test_sendgrid_injected_429_carries_retry_after(
    sg: SendGridAPIClient, sendgrid_url: str, records: FakeRecords
) -> None:
    set_faults(
        sendgrid_url, {"rules": [{"kind": "status", "status": 429, "retry_after": 7, "count": 1}]}
    )

    with pytest.raises(TooManyRequestsError) as caught:
        sg.send(mail_body())
    assert caught.value.headers["Retry-After"] == "7"
    assert sg.send(mail_body()).status_code == 202  # the single 429 is used up
    assert [(f.kind, f.status) for f in records.faults()] == [("status", 429)]
    assert records.count() == 1


@pytest.mark.parametrize(
    ("status", "error"), [(500, InternalServerError), (503, ServiceUnavailableError)]
)
def test_sendgrid_injected_5xx_raises_the_sdk_error_without_retry(
    sg: SendGridAPIClient,
    sendgrid_url: str,
    records: FakeRecords,
    status: int,
    error: type[Exception],
) -> None:
    set_faults(sendgrid_url, {"rules": [{"kind": "status", "status": status, "count": 1}]})

    with pytest.raises(error):
        sg.send(mail_body())
    assert [f.status for f in records.faults("sendgrid")] == [status]  # one attempt, no retry
    assert records.count() == 0


def test_sendgrid_injected_latency_delays_the_answer(
    sg: SendGridAPIClient, sendgrid_url: str, records: FakeRecords
) -> None:
    set_faults(sendgrid_url, {"rules": [{"kind": "delay", "delay_ms": 300}]})

    started = time.monotonic()
    assert sg.send(mail_body()).status_code == 202
    assert time.monotonic() - started >= 0.3
    [req] = records.sendgrid_requests()
    assert req.delay_ms == pytest.approx(300)


def test_sendgrid_timeout_fault_outlasts_the_client_timeout(
    sg: SendGridAPIClient, sendgrid_url: str, records: FakeRecords
) -> None:
    set_faults(sendgrid_url, {"rules": [{"kind": "timeout", "seconds": 5, "count": 1}]})
    sg.client.timeout = 0.3  # the SDK has none by default; python_http_client passes it to urllib

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        sg.send(mail_body())
    assert time.monotonic() - started < 3.0  # the client's timeout ended it, not the fake's 5 s
    eventually(lambda: [(f.kind, f.status) for f in records.faults()] == [("timeout", 504)])
    assert records.count() == 0


def test_seeded_probability_faults_are_reproducible(sendgrid_url: str) -> None:
    config = {"seed": 42, "rules": [{"kind": "status", "status": 503, "probability": 0.5}]}

    def outcomes() -> list[int]:
        set_faults(sendgrid_url, config)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        url = f"{sendgrid_url}/v3/mail/send"
        return [
            requests.post(url, json=mail_body(), headers=headers, timeout=5).status_code
            for _ in range(20)
        ]

    first = outcomes()
    assert first == outcomes()
    assert set(first) == {202, 503}


def test_http_control_endpoints(sg: SendGridAPIClient, sendgrid_url: str) -> None:
    sg.send(mail_body())
    listed = requests.get(f"{sendgrid_url}/_fake/requests", timeout=5).json()
    assert listed["count"] == 1
    assert listed["requests"][0]["body"]["personalizations"][0]["to"][0]["email"] == "a@example.org"

    bad = requests.post(
        f"{sendgrid_url}/_fake/faults", json={"rules": [{"kind": "nope"}]}, timeout=5
    )
    assert bad.status_code == 400
    set_faults(sendgrid_url, {"rules": [{"kind": "status", "status": 500, "count": 2}]})
    assert requests.get(f"{sendgrid_url}/_fake/faults", timeout=5).json()["remaining"] == [2]

    assert requests.delete(f"{sendgrid_url}/_fake/requests", timeout=5).status_code == 204
    assert requests.get(f"{sendgrid_url}/_fake/requests", timeout=5).json()["count"] == 0


# --- Twilio ---


def test_twilio_creates_and_records_a_message(twilio: Client, records: FakeRecords) -> None:
    message = twilio.messages.create(
        to="+15551234567",
        from_="+15557654321",
        body="Call your senator",
        status_callback="https://hooks.example.org/twilio/status",
    )

    assert SID_RE.match(message.sid)
    assert message.status == "queued"
    assert (message.to, message.from_, message.body) == (
        "+15551234567",
        "+15557654321",
        "Call your senator",
    )
    assert message.num_segments == "1"
    assert message.date_created is not None and message.date_created.tzinfo is not None
    assert message.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message.sid}.json"
    [recorded] = records.twilio_messages()
    assert recorded.resource_id == message.sid
    assert recorded.body == {
        "To": "+15551234567",
        "From": "+15557654321",
        "Body": "Call your senator",
        "StatusCallback": "https://hooks.example.org/twilio/status",
    }


def test_twilio_response_matches_the_spec_response_schema(twilio_url: str) -> None:
    response = requests.post(
        f"{twilio_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": "+447700900123", "MessagingServiceSid": "MG" + "0" * 32, "Body": "ж" * 71},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )

    assert response.status_code == 201
    payload = response.json()
    Draft202012Validator(twilio_response_schema()).validate(payload)
    assert payload["num_segments"] == "2"  # 71 UCS-2 characters do not fit one segment
    assert payload["from"] is None


@pytest.mark.parametrize("to", ["5551234567", "+1 555 123 4567", "+15005550001"])
def test_twilio_rejects_invalid_to_with_21211(
    twilio: Client, records: FakeRecords, to: str
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        twilio.messages.create(to=to, from_="+15557654321", body="hi")

    assert (caught.value.status, caught.value.code) == (400, 21211)
    assert records.count() == 0


def test_twilio_rejects_unsubscribed_recipient_with_21610(
    twilio: Client, records: FakeRecords
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        twilio.messages.create(to=UNSUBSCRIBED, from_="+15557654321", body="hi")

    assert (caught.value.status, caught.value.code) == (400, 21610)
    assert "unsubscribed recipient" in caught.value.msg
    assert records.count() == 0
    assert [r.body["To"] for r in records.rejected("twilio")] == [UNSUBSCRIBED]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"from_": "+15557654321"}, 21602),
        ({"body": "hi"}, 21603),
        ({"from_": "+15557654321", "body": "hi", "status_callback": "not a url"}, 21609),
        ({"from_": "+15557654321", "body": "x" * 1601}, 21617),
        ({"from_": "+0123", "body": "hi"}, 21212),
    ],
    ids=["no-body", "no-from", "bad-callback", "too-long", "bad-from"],
)
def test_twilio_rejects_other_invalid_creates(
    twilio: Client, records: FakeRecords, kwargs: dict[str, Any], code: int
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        twilio.messages.create(to="+15551234567", **kwargs)

    assert caught.value.code == code
    assert records.count() == 0


def test_twilio_requires_basic_auth(twilio_url: str, records: FakeRecords) -> None:
    client = Client(ACCOUNT_SID, "wrong-token")
    client.api.base_url = twilio_url
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="+15551234567", from_="+15557654321", body="hi")
    assert (caught.value.status, caught.value.code) == (401, 20003)

    anonymous = requests.post(
        f"{twilio_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": "+1"},
        timeout=5,
    )
    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"code", "message", "more_info", "status"}
    assert records.count() == 0


def test_twilio_injected_429_and_no_sdk_retry(
    twilio: Client, twilio_url: str, records: FakeRecords
) -> None:
    set_faults(
        twilio_url, {"rules": [{"kind": "status", "status": 429, "retry_after": 3, "count": 1}]}
    )

    with pytest.raises(TwilioRestException) as caught:
        twilio.messages.create(to="+15551234567", from_="+15557654321", body="hi")
    assert (caught.value.status, caught.value.code) == (429, 20429)
    assert twilio.http_client._test_only_last_response.headers["Retry-After"] == "3"
    assert len(records.faults("twilio")) == 1  # the SDK did not retry
    assert SID_RE.match(
        twilio.messages.create(to="+15551234567", from_="+15557654321", body="hi").sid
    )


def test_twilio_injected_latency_delays_the_answer(twilio: Client, twilio_url: str) -> None:
    set_faults(twilio_url, {"seed": 1, "rules": [{"kind": "delay", "delay_ms": [250, 300]}]})

    started = time.monotonic()
    twilio.messages.create(to="+15551234567", from_="+15557654321", body="hi")
    assert time.monotonic() - started >= 0.25


def test_twilio_timeout_with_accept_records_the_lost_answer(
    twilio_url: str, records: FakeRecords
) -> None:
    set_faults(
        twilio_url, {"rules": [{"kind": "timeout", "seconds": 5, "accept": True, "count": 1}]}
    )
    client = twilio_client(twilio_url, timeout=0.3)

    with pytest.raises(requests.exceptions.ReadTimeout):
        client.messages.create(to="+15551234567", from_="+15557654321", body="hi")
    eventually(lambda: [(f.kind, f.status) for f in records.faults()] == [("timeout", 201)])
    assert records.count("twilio") == 1  # accepted although the client never saw the answer


# --- gunicorn process mode ---


def _wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [
            p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
        ]
        time.sleep(0.05)
    return alive


def test_gunicorn_process_mode_shares_records_and_faults(db_path: Path) -> None:
    fake = start_fake_process(
        "sendgrid", db_path, workers=2, api_key=API_KEY,
        faults={"rules": [{"kind": "status", "status": 503, "count": 3}]},
    )  # fmt: skip
    try:
        pids = fake.pids()
        assert len(pids) >= 3  # master + 2 workers
        sg = SendGridAPIClient(api_key=API_KEY, host=fake.url)
        outcomes = []
        for _ in range(8):
            try:
                outcomes.append(sg.send(mail_body()).status_code)
            except ServiceUnavailableError:
                outcomes.append(503)
        assert outcomes == [503] * 3 + [202] * 5  # the count of 3 is shared by the workers
        assert fake.records.count() == 5
        listed = requests.get(f"{fake.url}/_fake/requests", timeout=5).json()
        assert (listed["count"], len(listed["faults"])) == (5, 3)
    finally:
        fake.stop()
    assert fake.process.returncode is not None
    assert _wait_gone(pids) == []


def test_gunicorn_twilio_process(db_path: Path) -> None:
    with start_fake_process("twilio", db_path, workers=2, unsubscribed=[UNSUBSCRIBED]) as fake:
        client = twilio_client(fake.url)
        message = client.messages.create(to="+15551234567", from_="+15557654321", body="hi")
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(to=UNSUBSCRIBED, from_="+15557654321", body="hi")
        pids = fake.pids()
    assert caught.value.code == 21610
    assert [m.resource_id for m in FakeRecords(db_path).twilio_messages()] == [message.sid]
    assert _wait_gone(pids) == []
