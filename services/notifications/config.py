"""Settings only the notifications service reads (the shared Settings hold the common ones)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.config import Settings, env_float, env_int, env_str

# RFC 2606's reserved names: what example configurations ship with (as "kinship.example.org").
PLACEHOLDER_DOMAINS = ("example", "example.com", "example.net", "example.org")


@dataclass(frozen=True)
class NotificationConfig:
    """Senders, pacing, retries and compliance details of the notifications service."""

    from_email: str = "alerts@kinship.example"
    from_name: str = "Kinship"
    help_contact: str = "help@kinship.example"
    # SendGrid Event Webhook verification key (base64 DER or PEM of the ECDSA P-256 key).
    sendgrid_webhook_public_key: str = ""
    sms_rate_per_second: float = 10.0
    email_batch_size: int = 1000
    sms_batch_size: int = 100
    send_max_attempts: int = 6
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    # A queued message (a confirmation link, a thank-you, a text deferred to the morning) waits
    # for its retry in the ledger, not in a thread: it can outlast a provider's incident of
    # about an hour (20 attempts, at most 5 minutes apart) instead of failing after ~16 s,
    # which lost the confirmation links of every signature in a 20 s SendGrid 5xx spell.
    queued_max_attempts: int = 20
    queued_retry_max_delay: float = 300.0
    provider_timeout: float = 30.0
    email_sender_threads: int = 2
    sms_sender_threads: int = 1
    # Texts of one batch in flight at once (each claimed in the ledger before its request).
    sms_concurrency: int = 4
    # Transactional emails (confirmation links, thank-yous) the queue poller sends at once:
    # one at a time, a provider's latency (150-300 ms) held them to a few a second.
    email_concurrency: int = 4
    # A lane checks its texts still to go against opt-outs, consents and quiet hours again this
    # often: a batch takes sms_batch_size / sms_rate_per_second (10 s by default, 100 s at a
    # long code's one text a second), and a STOP or 21:00 in between must hold for the rest.
    sms_recheck_seconds: float = 1.0
    dispatch_partitions: int = 6
    poll_interval: float = 0.2
    # An idle queue poller looks less often, down to once per ceiling (shared.pacing.Pacer).
    poll_ceiling: float = 1.0
    progress_interval: float = 1.0
    # A poller's claim on a row older than this is taken over (the poller died).
    claim_lease_seconds: float = 300.0
    # A dispatch batch's rows untouched for this long belong to a worker that died. Longer than
    # the longest silence of a live sender: one provider timeout plus one backoff wait.
    batch_lease_seconds: float = 90.0
    # A dispatch batch that fails this many times in a row with an error of its own (not a
    # provider's, not an outage of the database or the broker) is given up: its recipients
    # fail, and it goes to the dead-letter topic.
    batch_max_attempts: int = 5
    # Supporters the expander reads with a plan that starts at once, before the plan for the
    # rest (which starts ~2 s later for a million): about what the senders send meanwhile.
    expander_head_rows: int = 60_000
    # How long sending pauses when a provider refuses our credentials (a revoked key), before
    # trying again; nothing is failed meanwhile.
    credentials_pause_seconds: float = 30.0
    # A dispatch batch whose provider kept refusing it (429, 5xx, refused connections) through
    # its send_max_attempts (~16 s) is not failed: its rows go back to queued and sending
    # pauses this long before the batch is tried again, for up to provider_outage_seconds from
    # the first such refusal. Failing it at once lost the alert for every recipient of every
    # batch that a provider's brief incident met.
    provider_pause_seconds: float = 30.0
    provider_outage_seconds: float = 3600.0
    quiet_start_hour: int = 8
    quiet_end_hour: int = 21
    # An unconfirmed double opt-in signature (and a supporter recorded only to be sent its
    # link) is forgotten after this. Keep it above PETITIONS_CONFIRM_TTL_HOURS (72).
    pending_ttl_hours: float = 30 * 24

    @classmethod
    def from_env(cls) -> NotificationConfig:
        """Read NOTIFICATIONS_* (and SENDGRID_WEBHOOK_PUBLIC_KEY, SMS_RATE_PER_SECOND)."""
        d = cls()
        return cls(
            from_email=env_str("NOTIFICATIONS_FROM_EMAIL", d.from_email),
            from_name=env_str("NOTIFICATIONS_FROM_NAME", d.from_name),
            help_contact=env_str("NOTIFICATIONS_HELP_CONTACT", d.help_contact),
            sendgrid_webhook_public_key=env_str("SENDGRID_WEBHOOK_PUBLIC_KEY", ""),
            sms_rate_per_second=env_float("SMS_RATE_PER_SECOND", d.sms_rate_per_second),
            email_batch_size=min(env_int("EMAIL_BATCH_SIZE", d.email_batch_size), 1000),
            # A dispatch batch names at most 1,000 supporters (the event's schema).
            sms_batch_size=min(env_int("SMS_BATCH_SIZE", d.sms_batch_size), 1000),
            send_max_attempts=env_int("SEND_MAX_ATTEMPTS", d.send_max_attempts),
            retry_base_delay=env_float("SEND_RETRY_BASE_DELAY", d.retry_base_delay),
            retry_max_delay=env_float("SEND_RETRY_MAX_DELAY", d.retry_max_delay),
            queued_max_attempts=env_int("QUEUED_SEND_MAX_ATTEMPTS", d.queued_max_attempts),
            queued_retry_max_delay=env_float("QUEUED_RETRY_MAX_DELAY", d.queued_retry_max_delay),
            provider_timeout=env_float("PROVIDER_TIMEOUT", d.provider_timeout),
            email_sender_threads=env_int("EMAIL_SENDER_THREADS", d.email_sender_threads),
            sms_sender_threads=env_int("SMS_SENDER_THREADS", d.sms_sender_threads),
            sms_concurrency=env_int("SMS_CONCURRENCY", d.sms_concurrency),
            email_concurrency=env_int("EMAIL_CONCURRENCY", d.email_concurrency),
            sms_recheck_seconds=env_float("SMS_RECHECK_SECONDS", d.sms_recheck_seconds),
            dispatch_partitions=env_int("DISPATCH_PARTITIONS", d.dispatch_partitions),
            batch_lease_seconds=env_float("BATCH_LEASE_SECONDS", d.batch_lease_seconds),
            batch_max_attempts=env_int("BATCH_MAX_ATTEMPTS", d.batch_max_attempts),
            expander_head_rows=env_int("EXPANDER_HEAD_ROWS", d.expander_head_rows),
            credentials_pause_seconds=env_float(
                "CREDENTIALS_PAUSE_SECONDS", d.credentials_pause_seconds
            ),
            provider_pause_seconds=env_float("PROVIDER_PAUSE_SECONDS", d.provider_pause_seconds),
            provider_outage_seconds=env_float("PROVIDER_OUTAGE_SECONDS", d.provider_outage_seconds),
            pending_ttl_hours=env_float("PENDING_SIGNATURE_TTL_HOURS", d.pending_ttl_hours),
        )

    def production_warnings(self, settings: Settings) -> list[str]:
        """What production allows here but almost surely did not mean (logged at start)."""
        found = []
        if settings.email_backend == "sendgrid" and not self.sendgrid_webhook_public_key:
            # Every SendGrid event is then refused (403): bounces and complaints suppress nobody.
            found.append(
                "SENDGRID_WEBHOOK_PUBLIC_KEY is empty: bounces and spam complaints are never"
                " applied"
            )
        for variable, value in (
            ("NOTIFICATIONS_FROM_EMAIL", self.from_email),
            ("NOTIFICATIONS_HELP_CONTACT", self.help_contact),
        ):
            domain = value.rpartition("@")[2].lower()
            if any(domain == d or domain.endswith("." + d) for d in PLACEHOLDER_DOMAINS):
                # The HELP reply of every text names it: supporters are told to write nowhere.
                found.append(f"{variable} is the placeholder {value}")
        return found

    @property
    def pool_size(self) -> int:
        """Database connections a worker process keeps (as many again may overflow).

        One for each SMS lane (it holds its connection through its texts) and each email
        sender, two for each lane of the queue pollers (sms_concurrency and email_concurrency:
        a message's checks read the alert on a second connection), and eight for the other
        parts (relay and its LISTEN, consumer, expander and its lock, progress, webhook
        dispatcher). The overflow covers a lane's second, brief connection when a text fails
        or it checks its texts still to go again (sms_recheck_seconds), so the lanes can never
        hold the whole pool."""
        lanes = self.sms_sender_threads * self.sms_concurrency
        pollers = 2 * (self.sms_concurrency + self.email_concurrency)
        return lanes + self.email_sender_threads + pollers + 8

    def with_(self, **changes: object) -> NotificationConfig:
        """Return a copy with some fields changed (tests)."""
        return replace(self, **changes)  # type: ignore[arg-type]
