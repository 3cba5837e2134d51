"""Settings from the environment: one typed object per process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from shared.local_kafka import PROJECT_ROOT

SERVICES = ("campaigns", "petitions", "notifications")


def env_str(name: str, default: str) -> str:
    """Return an environment variable, or default when unset or empty."""
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_int(name: str, default: int) -> int:
    """Read an integer variable; a bad value is refused naming the variable."""
    raw = env_str(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = env_str(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name, "1" if default else "0").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {raw!r}")


def var_dir() -> Path:
    """Return the folder for local state (SQLite files, local Kafka, logs)."""
    return Path(env_str("KINSHIP_VAR_DIR", str(PROJECT_ROOT / "var")))


# secrets.token_urlsafe(32) gives 43 characters.
MIN_HASH_KEY_LENGTH = 32
ENVIRONMENTS = ("development", "production")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


@dataclass(frozen=True)
class Settings:
    """Everything a service or worker reads from its environment."""

    service: str
    database_url: str
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_partitions: int = 3
    kafka_replication_factor: int = 1
    environment: str = "development"
    log_level: str = "INFO"
    var_dir: Path = field(default_factory=var_dir)
    # Keys for hashing personal data (dedupe, suppression): must be secret in production.
    hash_key: str = "dev-only-hash-key-change-me"
    public_base_url: str = "http://127.0.0.1:8000"
    email_backend: str = "capture"
    sms_backend: str = "capture"
    sendgrid_api_key: str = ""
    sendgrid_api_host: str = "https://api.sendgrid.com"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_messaging_service_sid: str = ""
    twilio_from_number: str = ""
    relay_batch_size: int = 1000
    consumer_max_attempts: int = 5
    # A worker process serves /metrics on this port (0: not at all).
    worker_metrics_port: int = 0

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(cls, service: str) -> Settings:
        """Build the settings of one service from the process environment."""
        var_dir_path = var_dir()
        default_db = f"sqlite:///{var_dir_path / f'{service}.db'}"
        database_url = env_str(
            f"{service.upper()}_DATABASE_URL", env_str("DATABASE_URL", default_db)
        )
        sendgrid_key = env_str("SENDGRID_API_KEY", "")
        twilio_sid = env_str("TWILIO_ACCOUNT_SID", "")
        twilio_token = env_str("TWILIO_AUTH_TOKEN", "")
        settings = cls(
            service=service,
            database_url=normalize_database_url(database_url),
            kafka_bootstrap_servers=env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            kafka_topic_partitions=env_int("KAFKA_TOPIC_PARTITIONS", 3),
            kafka_replication_factor=env_int("KAFKA_REPLICATION_FACTOR", 1),
            environment=env_str("KINSHIP_ENV", "development"),
            log_level=env_str("LOG_LEVEL", "INFO").upper(),
            var_dir=var_dir_path,
            hash_key=env_str("KINSHIP_HASH_KEY", "dev-only-hash-key-change-me"),
            public_base_url=env_str("KINSHIP_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            email_backend=env_str("EMAIL_BACKEND", "sendgrid" if sendgrid_key else "capture"),
            sms_backend=env_str(
                "SMS_BACKEND", "twilio" if twilio_sid and twilio_token else "capture"
            ),
            sendgrid_api_key=sendgrid_key,
            sendgrid_api_host=env_str("SENDGRID_API_HOST", "https://api.sendgrid.com"),
            twilio_account_sid=twilio_sid,
            twilio_auth_token=twilio_token,
            twilio_api_base_url=env_str("TWILIO_API_BASE_URL", "https://api.twilio.com"),
            twilio_messaging_service_sid=env_str("TWILIO_MESSAGING_SERVICE_SID", ""),
            twilio_from_number=env_str("TWILIO_FROM_NUMBER", ""),
            relay_batch_size=env_int("OUTBOX_RELAY_BATCH_SIZE", 1000),
            consumer_max_attempts=env_int("CONSUMER_MAX_ATTEMPTS", 5),
            worker_metrics_port=env_int("WORKER_METRICS_PORT", 0),
        )
        settings.check()
        if settings.production and service == "notifications":
            # Chosen by default (no credentials), capture in production would send nothing and
            # keep every message, addresses and links included, in the database.
            for channel, variable, credentials in (
                ("email", "EMAIL_BACKEND", "SENDGRID_API_KEY"),
                ("sms", "SMS_BACKEND", "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
            ):
                if getattr(settings, f"{channel}_backend") == "capture" and not env_str(
                    variable, ""
                ):
                    raise ValueError(
                        f"no {channel} provider in production: set {credentials}, or"
                        f" {variable}=capture to send none on purpose (messages are then kept"
                        " in the database, not sent)"
                    )
        return settings

    def check(self) -> None:
        """Refuse settings that would be unsafe or cannot work."""
        if self.service not in SERVICES and not self.service.startswith("test"):
            raise ValueError(f"unknown service {self.service!r}")
        if self.email_backend not in {"sendgrid", "capture"}:
            raise ValueError("EMAIL_BACKEND must be 'sendgrid' or 'capture'")
        if self.sms_backend not in {"twilio", "capture"}:
            raise ValueError("SMS_BACKEND must be 'twilio' or 'capture'")
        if self.environment not in ENVIRONMENTS:
            # "prod" read as development would skip every check below.
            raise ValueError(f"KINSHIP_ENV must be one of {', '.join(ENVIRONMENTS)}")
        from shared.kafka import security_options  # it reads its settings with this module

        security_options()  # KAFKA_SECURITY_PROTOCOL and KAFKA_SASL_*: refused now, naming them
        if self.email_backend == "sendgrid" and not self.sendgrid_api_key:
            raise ValueError("EMAIL_BACKEND=sendgrid needs SENDGRID_API_KEY")
        if self.sms_backend == "twilio" and not (
            self.twilio_account_sid and self.twilio_auth_token
        ):
            raise ValueError("SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if self.production and self.database_url.startswith("sqlite"):
            # Each process would keep its own file: what one writes, no other reads.
            raise ValueError(
                f"{self.service.upper()}_DATABASE_URL (or DATABASE_URL) must name a PostgreSQL"
                " database in production"
            )
        if self.production and (urlsplit(self.public_base_url).hostname or "") in LOOPBACK_HOSTS:
            raise ValueError(
                "KINSHIP_PUBLIC_BASE_URL must be the address supporters reach in production:"
                " every confirmation, unsubscribe and preference link starts with it"
            )
        if self.production and (
            self.hash_key.startswith("dev-only") or "change-me" in self.hash_key.lower()
        ):
            # A known key lets anyone hash a list of addresses and find who signed, and forge
            # confirmation links.
            raise ValueError(
                "KINSHIP_HASH_KEY must be set to a secret in production"
                " (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )

    def production_warnings(self) -> list[str]:
        """What a production deployment allows but almost surely did not mean (logged at start)."""
        if not self.production:
            return []
        found = []
        if len(self.hash_key) < MIN_HASH_KEY_LENGTH:
            # Only a warning: changing the key breaks deduplication and supporters' ids.
            found.append(
                f"KINSHIP_HASH_KEY is shorter than {MIN_HASH_KEY_LENGTH} characters: easier to"
                " guess, and with it who signed"
            )
        if not self.public_base_url.startswith("https://"):
            found.append(
                "KINSHIP_PUBLIC_BASE_URL is not https: unsubscribe, preference and confirmation"
                " links carry tokens in every email"
            )
        if self.email_backend == "capture":
            found.append("EMAIL_BACKEND is capture: no email reaches anyone (SENDGRID_API_KEY?)")
        if self.sms_backend == "capture":
            found.append("SMS_BACKEND is capture: no text reaches anyone (TWILIO_* settings?)")
        return found

    def with_(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (tests, CLI overrides)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the common way."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
