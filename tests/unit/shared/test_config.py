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


def production(monkeypatch: pytest.MonkeyPatch) -> None:
    """A production environment that passes every check (tests then break one thing)."""
    monkeypatch.setenv("KINSHIP_ENV", "production")
    monkeypatch.setenv("KINSHIP_HASH_KEY", SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgresql://kinship@db.internal/kinship")
    monkeypatch.setenv("KINSHIP_PUBLIC_BASE_URL", "https://kinship.example.org")
    for name in ("EMAIL_BACKEND", "SMS_BACKEND", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.x")
    monkeypatch.setenv("SMS_BACKEND", "capture")


def test_production_needs_a_real_hash_key(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch)
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
    production(monkeypatch)
    monkeypatch.delenv("SENDGRID_API_KEY")
    monkeypatch.setenv("EMAIL_BACKEND", "capture")  # on purpose: started, and named
    monkeypatch.setenv("KINSHIP_PUBLIC_BASE_URL", "http://kinship.example.org")
    found = " ".join(Settings.from_env("notifications").production_warnings())
    assert "KINSHIP_PUBLIC_BASE_URL" in found and "EMAIL_BACKEND" in found
    assert "SMS_BACKEND" in found
    monkeypatch.setenv("KINSHIP_PUBLIC_BASE_URL", "https://kinship.example.org")
    monkeypatch.delenv("EMAIL_BACKEND")
    monkeypatch.delenv("SMS_BACKEND")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.x")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC1")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t")
    assert Settings.from_env("notifications").production_warnings() == []
    monkeypatch.setenv("KINSHIP_ENV", "development")
    monkeypatch.setenv("KINSHIP_PUBLIC_BASE_URL", "http://127.0.0.1:8000")
    assert Settings.from_env("notifications").production_warnings() == []


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        # Read as development, "prod" would have skipped every production check.
        ("KINSHIP_ENV", "prod", "KINSHIP_ENV"),
        # Each process its own SQLite file: what the API writes, no worker reads.
        ("DATABASE_URL", "", "DATABASE_URL"),
        # Links in every email that lead nowhere.
        ("KINSHIP_PUBLIC_BASE_URL", "", "KINSHIP_PUBLIC_BASE_URL"),
        ("KINSHIP_PUBLIC_BASE_URL", "http://localhost:8003", "KINSHIP_PUBLIC_BASE_URL"),
        # No credentials: capture chosen by default would send nothing and keep everything.
        ("SENDGRID_API_KEY", "", "SENDGRID_API_KEY"),
        ("SMS_BACKEND", "", "SMS_BACKEND=capture"),
        # A provider named without its credentials: every send refused, for ever.
        ("EMAIL_BACKEND", "sendgrid", "SENDGRID_API_KEY"),
        ("SMS_BACKEND", "twilio", "TWILIO_ACCOUNT_SID"),
    ],
)
def test_production_refuses_to_start_half_working(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    production(monkeypatch)
    assert Settings.from_env("notifications").production
    monkeypatch.setenv(variable, value)
    if variable == "EMAIL_BACKEND":
        monkeypatch.delenv("SENDGRID_API_KEY")
    with pytest.raises(ValueError, match=named):
        Settings.from_env("notifications")


def test_the_other_services_need_no_provider_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production(monkeypatch)
    monkeypatch.delenv("SENDGRID_API_KEY")
    monkeypatch.delenv("SMS_BACKEND")
    assert Settings.from_env("petitions").production
    assert Settings.from_env("campaigns").production


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # Read as false before: http endpoints allowed in production.
        ("WEBHOOK_REQUIRE_HTTPS", "ture"),
        ("WEBHOOK_RETRY_SCHEDULE", "5,5m"),
        ("SMS_RATE_PER_SECOND", "fast"),
        ("PETITIONS_PROXY_HOPS", "one"),
    ],
)
def test_a_bad_number_or_switch_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    from services.notifications.config import NotificationConfig
    from services.notifications.webhooks.config import WebhookConfig
    from services.petitions.bootstrap import PetitionsConfig

    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        for config in (NotificationConfig, WebhookConfig, PetitionsConfig):
            config.from_env()


def test_placeholder_addresses_in_production_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every SMS HELP reply names the help contact: the shipped placeholder tells supporters
    to write nowhere."""
    from services.notifications.config import NotificationConfig

    production(monkeypatch)
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", "MFkw")
    settings = Settings.from_env("notifications")
    found = " ".join(NotificationConfig.from_env().production_warnings(settings))
    assert "NOTIFICATIONS_HELP_CONTACT" in found and "NOTIFICATIONS_FROM_EMAIL" in found
    monkeypatch.setenv("NOTIFICATIONS_HELP_CONTACT", "help@kinship.example.org")  # Kubernetes'
    found = " ".join(NotificationConfig.from_env().production_warnings(settings))
    assert "NOTIFICATIONS_HELP_CONTACT" in found
    monkeypatch.setenv("NOTIFICATIONS_HELP_CONTACT", "help@rainbowexample.org")
    monkeypatch.setenv("NOTIFICATIONS_FROM_EMAIL", "alerts@rainbow.org")
    assert NotificationConfig.from_env().production_warnings(settings) == []
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEY")
    found = " ".join(NotificationConfig.from_env().production_warnings(settings))
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY" in found


def test_kafka_security_settings_are_checked_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.kafka import security_options

    for name in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    assert security_options() == {"security_protocol": "PLAINTEXT"}
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValueError, match="KAFKA_SECURITY_PROTOCOL"):
        security_options()
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME"):
        security_options()
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "kinship")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", "/etc/kafka-ca/ca.crt")
    assert security_options() == {
        "security_protocol": "SASL_SSL", "ssl_cafile": "/etc/kafka-ca/ca.crt",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "kinship",
        "sasl_plain_password": "s3cret",
    }  # fmt: skip
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "GSSAPI")
    with pytest.raises(ValueError, match="KAFKA_SASL_MECHANISM"):
        security_options()


def test_a_kafka_security_mistake_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found only when a client connects, it showed as a /readyz 503 naming no variable."""
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.delenv("KAFKA_SASL_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="KAFKA_SASL_PASSWORD"):
        Settings.from_env("campaigns")
