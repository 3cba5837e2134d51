"""The demo's SMS signer: whichever one the hour picks, the petitions service must accept it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.petitions.domain import e164
from shared.cli.demo import SMS_SIGNERS, sms_signer


@pytest.mark.parametrize(("phone", "country", "zone", "postal"), SMS_SIGNERS)
def test_every_demo_phone_number_is_one_signing_accepts(
    phone: str, country: str, zone: str, postal: str | None
) -> None:
    assert e164(phone, country) == phone


def test_the_demo_picks_a_signer_for_each_hour_of_the_day() -> None:
    midnight = datetime(2026, 11, 28, tzinfo=UTC)
    picked = {sms_signer(midnight + timedelta(hours=hour))[0] for hour in range(24)}
    # Each signer is someone's daytime at some hour, so every number gets used by the demo.
    assert picked == {phone for phone, *_ in SMS_SIGNERS}


def test_keys_issued_before_the_demo_fails_are_revoked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo failing while it builds the coalition (an organization refused, a key not
    issued) still revokes the keys it had issued, its platform admin key last."""
    from shared.cli import demo

    calls: list[tuple[str, str, str | None]] = []

    def call(
        self: demo.Api, service: str, method: str, path: str, key: str | None = None,
        body: Any = None, expect: tuple[int, ...] = (),
    ) -> Any:  # fmt: skip
        calls.append((method, path, key))
        if path == "/api/v1/keys/me":
            return {"key_id": f"id-of-{key}"}
        if method == "POST" and path == "/api/v1/organizations" and len(calls) > 1:
            raise demo.DemoError("POST campaigns/api/v1/organizations: 500")
        return {"slug": "lead", "organization_id": "org-lead"}

    monkeypatch.setattr(demo.Api, "call", call)
    monkeypatch.setattr(demo, "stack_urls", lambda: dict.fromkeys(demo.SERVICES, "http://x"))
    monkeypatch.setattr(demo, "admin_key", lambda tag: "admin-secret")
    monkeypatch.setattr(demo, "captured_messages", lambda limit: [])
    monkeypatch.setattr(demo, "check_capture_senders", lambda: None)
    with pytest.raises(demo.DemoError, match="organizations: 500"):
        demo.run_demo(echo=lambda line: None)
    assert calls[-1] == ("DELETE", "/api/v1/keys/id-of-admin-secret", "admin-secret")
    # One key refused on the way (the service hiccups): the admin key is still revoked.
    calls.clear()
    keys = {"admin": "admin-secret", "lead": "lead-secret", "partner": "partner-secret"}

    def refusing(self: demo.Api, service: str, method: str, path: str, key: str | None = None,
                 body: Any = None, expect: tuple[int, ...] = ()) -> Any:  # fmt: skip
        calls.append((method, path, key))
        if key == "lead-secret":
            raise demo.DemoError("GET campaigns/api/v1/keys/me: 503")
        return {"key_id": f"id-of-{key}"}

    monkeypatch.setattr(demo.Api, "call", refusing)
    with pytest.raises(demo.DemoError, match="503"):
        demo.revoke_keys(demo.Api({}, 1.0), keys)
    assert calls[-1] == ("DELETE", "/api/v1/keys/id-of-admin-secret", "admin-secret")


def test_the_demo_refuses_a_stack_sending_through_real_providers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its supporters are fictional: SendGrid would bounce every address (and the sender's
    reputation suffers), and the report reads the capture outbox, which a real provider never
    fills (the demo waited three minutes and failed). It says so before it does anything."""
    import json

    from shared.cli import demo

    (tmp_path / "dev").mkdir()
    state = {"urls": {}, "backends": {"email": "sendgrid", "sms": "capture"}}
    (tmp_path / "dev" / "stack.json").write_text(json.dumps(state))
    monkeypatch.setenv("KINSHIP_VAR_DIR", str(tmp_path))
    called: list[str] = []
    monkeypatch.setattr(demo.Api, "call", lambda *a, **k: called.append("api"))
    with pytest.raises(demo.DemoError, match="sends through sendgrid"):
        demo.run_demo(echo=lambda line: None)
    assert called == []
    state["backends"] = {"email": "capture", "sms": "capture"}
    (tmp_path / "dev" / "stack.json").write_text(json.dumps(state))
    demo.check_capture_senders()  # the embedded default passes
