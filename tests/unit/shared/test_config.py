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


SECRET = "kT3v9Qx2LmP8wZr5Yb7Nc1Hd4Fg6Js0Ae2Ui"  # 36 characters, random


def test_production_needs_a_real_hash_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINSHIP_ENV", "production")
    monkeypatch.delenv("KINSHIP_HASH_KEY", raising=False)
    with pytest.raises(ValueError, match="KINSHIP_HASH_KEY"):
        Settings.from_env("campaigns")
    # The example Secret's placeholder is no secret; a short key starts, with a warning (a
    # deployment cannot change its key without breaking deduplication).
    monkeypatch.setenv("KINSHIP_HASH_KEY", "change-me-to-a-long-random-secret-of-43-characters")
    with pytest.raises(ValueError, match="KINSHIP_HASH_KEY"):
        Settings.from_env("campaigns")
    monkeypatch.setenv("KINSHIP_HASH_KEY", "s3cret")
    assert "KINSHIP_HASH_KEY" in " ".join(Settings.from_env("campaigns").production_warnings())
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", "many")
    monkeypatch.setenv("KINSHIP_HASH_KEY", SECRET)
    with pytest.raises(ValueError, match="KAFKA_TOPIC_PARTITIONS"):
        Settings.from_env("campaigns")


def test_production_settings_that_look_like_mistakes_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KINSHIP_ENV", "production")
    monkeypatch.setenv("KINSHIP_HASH_KEY", SECRET)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.setenv("KINSHIP_PUBLIC_BASE_URL", "http://kinship.example.org")
    found = " ".join(Settings.from_env("notifications").production_warnings())
    assert "KINSHIP_PUBLIC_BASE_URL" in found and "EMAIL_BACKEND" in found
    assert "SMS_BACKEND" in found
    monkeypatch.setenv("KINSHIP_PUBLIC_BASE_URL", "https://kinship.example.org")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.x")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC1")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t")
    assert Settings.from_env("notifications").production_warnings() == []
    monkeypatch.setenv("KINSHIP_ENV", "development")
    monkeypatch.setenv("KINSHIP_PUBLIC_BASE_URL", "http://127.0.0.1:8000")
    assert Settings.from_env("notifications").production_warnings() == []
