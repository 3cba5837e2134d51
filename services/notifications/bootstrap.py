"""Build the notifications service's dependencies from settings; nothing connects until used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from services.notifications import store
from services.notifications.config import NotificationConfig
from services.notifications.senders import EmailSender, SmsSender
from services.notifications.senders.capture import CaptureEmailSender, CaptureSmsSender
from services.notifications.webhooks.config import WebhookConfig
from shared.auth import KeyVerifier
from shared.config import Settings
from shared.db import make_engine
from shared.events.catalog import CATALOG
from shared.events.envelope import utcnow
from shared.outbox import Outbox

SOURCE = "/services/notifications"


@dataclass
class Deps:
    """What the API, the workers and the CLI share."""

    settings: Settings
    config: NotificationConfig
    engine: Engine
    verifier: KeyVerifier
    outbox: Outbox
    email: EmailSender
    sms: SmsSender
    clock: Callable[[], datetime] = field(default=utcnow)
    webhooks: WebhookConfig = field(default_factory=WebhookConfig.from_env)


def email_sender(settings: Settings, config: NotificationConfig, engine: Engine) -> EmailSender:
    """Choose the email adapter named by EMAIL_BACKEND."""
    if settings.email_backend == "sendgrid":
        from services.notifications.senders.sendgrid import SendGridSender

        return SendGridSender.build(
            settings.sendgrid_api_key, settings.sendgrid_api_host, config.provider_timeout
        )
    return CaptureEmailSender(engine)


def sms_sender(settings: Settings, config: NotificationConfig, engine: Engine) -> SmsSender:
    """Choose the SMS adapter named by SMS_BACKEND."""
    if settings.sms_backend == "twilio":
        from services.notifications.senders.twilio import TwilioSender

        return TwilioSender.build(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_api_base_url,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            from_number=settings.twilio_from_number,
            timeout=min(config.provider_timeout, 15.0),
            # every lane of every SMS sender thread, and the queue poller's sends
            connections=config.sms_sender_threads * config.sms_concurrency + 4,
        )
    return CaptureSmsSender(engine)


def build(
    settings: Settings | None = None,
    config: NotificationConfig | None = None,
    engine: Engine | None = None,
) -> Deps:
    """Wire the service from settings (the environment when none are given)."""
    settings = settings or Settings.from_env("notifications")
    config = config or NotificationConfig.from_env()
    engine = engine or make_engine(settings.database_url, pool_size=config.pool_size)
    return Deps(
        settings=settings,
        config=config,
        engine=engine,
        verifier=KeyVerifier(engine, store.api_keys, ttl=1.0),
        outbox=Outbox(store.outbox_table, CATALOG, source=SOURCE),
        email=email_sender(settings, config, engine),
        sms=sms_sender(settings, config, engine),
    )
