"""The local tools' pure parts: masked recipients in `kinship outbox`, ports of `kinship dev`."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.cli.outbox import format_message, mask, mask_email, mask_phone, summarize
from shared.devstack import DevStackError, service_ports, sqlite_database
from shared.local_kafka import LocalKafka


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("mei.tanaka@hapavoices.example.org", "m***@h***.org"),
        ("a@b.co", "a***@b***.co"),
        ("x@localhost", "x***@localhost"),
    ],
)
def test_email_addresses_are_masked(address: str, masked: str) -> None:
    assert mask_email(address) == masked


def test_phone_numbers_keep_only_their_last_two_digits() -> None:
    assert mask_phone("+886912345678") == "+" + "•" * 10 + "78"
    assert mask("sms", "+12135550147").endswith("47")
    assert "213555" not in mask("sms", "+12135550147")


def test_outbox_rows_hide_recipients_unless_shown() -> None:
    row = {
        "id": 7,
        "created_at": "2026-11-28 00:00:00",
        "channel": "email",
        "to_address": "mei@example.org",
        "alert_id": "a-1",
        "supporter_id": "s-1",
        "subject": "The board votes Thursday",
        "body": "Call today.",
        "headers": {"List-Unsubscribe": "<https://x/unsubscribe/t>"},
    }
    hidden = summarize(row, show=False)
    assert hidden["to"] == "m***@e***.org" and hidden["kind"] == "alert"
    assert "mei@example.org" not in format_message(hidden)
    assert "[List-Unsubscribe]" in format_message(hidden)
    assert summarize(row, show=True)["to"] == "mei@example.org"
    assert summarize({**row, "alert_id": None}, show=False)["kind"] == "transactional"


def test_outbox_bodies_hide_the_tokens_of_personal_links_unless_shown() -> None:
    # Each token opens its holder's preferences (consents, erasure) or confirms a signature.
    body = (
        "Change: https://act.example.org/preferences/Abc123.tag.mac\n"
        "Leave: <https://act.example.org/unsubscribe/Zz9-_x>\n"
        "Confirm: https://act.example.org/confirmations/tok_42 and read the petition."
    )
    row = {"id": 1, "created_at": "now", "channel": "email", "to_address": "a@b.org",
           "body": body, "headers": {}}  # fmt: skip
    hidden = summarize(row, show=False)["body"]
    for token in ("Abc123.tag.mac", "Zz9-_x", "tok_42"):
        assert token not in hidden
    assert "/preferences/…" in hidden and "/unsubscribe/…>" in hidden
    assert hidden.endswith("/confirmations/… and read the petition.")
    assert summarize(row, show=True)["body"] == body


def test_outbox_rows_hide_the_recipients_names_and_pronouns_unless_shown() -> None:
    # A greeting or a subject quotes them; pronouns can out a trans supporter.
    row = {
        "id": 2, "created_at": "now", "channel": "email", "to_address": "mei@example.org",
        "subject": "Mei, the board votes Thursday",
        "body": "Hi Mei Chen, we have you as Mei (she/her). Meiko signed too.",
        "headers": {}, "personal": ["she/her", "Chen", "Mei"],
    }  # fmt: skip
    hidden = summarize(row, show=False)
    assert hidden["subject"] == "‹…›, the board votes Thursday"
    assert hidden["body"] == "Hi ‹…› ‹…›, we have you as ‹…› (‹…›). Meiko signed too."
    shown = summarize(row, show=True)
    assert (shown["subject"], shown["body"]) == (row["subject"], row["body"])
    # Korean, Japanese and Chinese write a name straight into the next word.
    cjk = {**row, "subject": "지우님, 투표는 목요일", "body": "美玲さん、こんにちは。怡君，你好",
           "personal": ["지우", "美玲", " 怡君 "]}  # fmt: skip
    masked = summarize(cjk, show=False)
    assert masked["subject"] == "‹…›님, 투표는 목요일"
    assert masked["body"] == "‹…›さん、こんにちは。‹…›，你好"


def test_ports_default_to_8001_8003_and_can_move() -> None:
    assert service_ports({}) == {"campaigns": 8001, "petitions": 8002, "notifications": 8003}
    assert service_ports({"KINSHIP_PETITIONS_PORT": "9102"})["petitions"] == 9102
    with pytest.raises(DevStackError, match="KINSHIP_CAMPAIGNS_PORT"):
        service_ports({"KINSHIP_CAMPAIGNS_PORT": "http"})


def test_services_on_sqlite_run_threaded_workers() -> None:
    """sqlite3 waits for its lock in C: under gevent that would stall a whole worker."""
    assert sqlite_database({}, "petitions")
    assert sqlite_database({"DATABASE_URL": "sqlite:////tmp/x.db"}, "petitions")
    postgres = "postgresql+psycopg://kinship@db/kinship"
    assert not sqlite_database({"DATABASE_URL": postgres}, "petitions")
    assert not sqlite_database({"PETITIONS_DATABASE_URL": postgres}, "petitions")
    assert sqlite_database({"CAMPAIGNS_DATABASE_URL": postgres}, "petitions")


def test_local_links_point_at_the_service_that_answers_them(tmp_path: Path) -> None:
    """An alert preview's links go to notifications' /preview page (campaigns answers 404)."""
    from shared.devstack import DevStack

    stack = DevStack(tmp_path, LocalKafka(tmp_path / "kafka"), environ={})
    urls = {name: stack.env_for(name)["KINSHIP_PUBLIC_BASE_URL"] for name in stack.ports}
    assert (
        urls["campaigns"]
        == urls["notifications"]
        == f"http://127.0.0.1:{stack.ports['notifications']}"
    )
    assert urls["petitions"] == f"http://127.0.0.1:{stack.ports['petitions']}"


def test_commands_without_the_port_variables_find_the_running_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`up` ran with KINSHIP_PETITIONS_PORT and KAFKA_PORT moved; `status`, `down` or a second
    `up` in a shell without them looked at the default ports (NOT READY, the wrong stack)."""
    import json

    from shared.cli.main import local_kafka
    from shared.devstack import DevStack

    (tmp_path / "dev").mkdir()
    state = {
        "kafka_bootstrap": "127.0.0.1:19092",
        "kafka_owned": True,
        "urls": {"campaigns": "http://127.0.0.1:8001", "petitions": "http://127.0.0.1:18002",
                 "notifications": "http://127.0.0.1:8003"},
    }  # fmt: skip
    (tmp_path / "dev" / "stack.json").write_text(json.dumps(state))
    stack = DevStack(tmp_path, LocalKafka(tmp_path / "kafka"), environ={})
    assert stack.ports == {"campaigns": 8001, "petitions": 18002, "notifications": 8003}
    named = DevStack(tmp_path, LocalKafka(tmp_path / "kafka"),
                     environ={"KINSHIP_PETITIONS_PORT": "28002"})  # fmt: skip
    assert named.ports["petitions"] == 28002
    monkeypatch.setenv("KINSHIP_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("KAFKA_PORT", raising=False)
    assert local_kafka().bootstrap.endswith(":19092")


def test_the_stack_records_the_backends_its_notifications_were_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second `up` from a shell with other settings starts nothing new: the record keeps
    what the running services send with (the demo refuses real providers by it)."""
    from shared.devstack import DevStack

    stack = DevStack(tmp_path, LocalKafka(tmp_path / "kafka"), environ={})
    stack.run_dir.mkdir(parents=True)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.real")
    stack._write_state(spawning=["campaigns-api", "notifications-worker"])
    assert stack._read_state()["backends"] == {"email": "sendgrid", "sms": "capture"}
    monkeypatch.delenv("SENDGRID_API_KEY")
    stack._write_state(spawning=["notifications-api"])  # the worker already running
    assert stack._read_state()["backends"] == {"email": "sendgrid", "sms": "capture"}
    stack._write_state(spawning=["notifications-worker"])  # started under this environment
    assert stack._read_state()["backends"] == {"email": "capture", "sms": "capture"}
