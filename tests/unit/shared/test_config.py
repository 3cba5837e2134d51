"""Settings come from the environment and refuse what cannot be right."""

from __future__ import annotations

import pytest

from shared.config import Settings


def test_defaults_run_embedded_with_capture_senders(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "PETITIONS_DATABASE_URL",
        "SENDGRID_API_KEY",
        "TWILIO_ACCOUNT_SID",
        "EMAIL_BACKEND",
        "SMS_BACKEND",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env("petitions")
    assert (
        settings.database_url.startswith("sqlite:///") and "petitions.db" in settings.database_url
    )
    assert (settings.email_backend, settings.sms_backend) == ("capture", "capture")


def test_provider_credentials_switch_the_senders_and_urls_use_psycopg(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.x")
    monkeypatch.setenv("NOTIFICATIONS_DATABASE_URL", "postgres://u@h/db")
    settings = Settings.from_env("notifications")
    assert settings.email_backend == "sendgrid"
    assert settings.database_url == "postgresql+psycopg://u@h/db"


def test_production_needs_a_real_hash_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINSHIP_ENV", "production")
    monkeypatch.delenv("KINSHIP_HASH_KEY", raising=False)
    with pytest.raises(ValueError, match="KINSHIP_HASH_KEY"):
        Settings.from_env("campaigns")
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", "many")
    monkeypatch.setenv("KINSHIP_HASH_KEY", "s3cret")
    with pytest.raises(ValueError, match="KAFKA_TOPIC_PARTITIONS"):
        Settings.from_env("campaigns")
