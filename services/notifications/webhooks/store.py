"""Tables of partner webhooks, defined on the notifications service's metadata."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from services.notifications.store import metadata
from shared.db import BigId, Moment

# failing_since: the first failure since the last success (None while healthy).
# disabled_reason: "gone" (410), "failing" (failing too long), "partner" (turned off by its owner).
endpoints = Table(
    "wh_endpoints",
    metadata,
    Column("endpoint_id", String(40), primary_key=True),
    Column("organization_id", String(64), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("description", String(500), nullable=False, default=""),
    Column("event_types", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(16)),
    Column("disabled_at", Moment()),
    # The signing secret is needed in clear to sign; it never leaves except once, when made.
    Column("secret", String(80), nullable=False),
    # Secrets rotated out that still sign alongside it: [{"secret", "expires_at"}], newest
    # last; previous_secret_expires_at is when the last of them stops.
    Column("previous_secrets", JSON),
    # The newest of them, as versions before 0027 read it: kept in step for their pods while a
    # rollout replaces them; to be dropped by a later release.
    Column("previous_secret", String(80)),
    Column("previous_secret_expires_at", Moment()),
    Column("failing_since", Moment()),
    # "pending" once disabled automatically (gone, failing), "sending" while taken (updated_at
    # stamped; reclaimed after 5 min), then "sent", "no_email" (no contact) or "failed" (refused).
    Column("notice", String(8)),
    # Unused since creates go through shared.idempotency (its records expire, and a replay
    # there never hands out the secret); kept for the endpoints registered before.
    Column("idempotency_key", String(200)),
    Column("created_at", Moment(), nullable=False),
    Column("updated_at", Moment(), nullable=False),
    UniqueConstraint("organization_id", "idempotency_key", name="uq_wh_endpoints_idempotency"),
)

# One message per event per endpoint; message_id is the stable webhook-id.
# status: pending -> delivering -> succeeded | failed (retries exhausted or endpoint disabled).
messages = Table(
    "wh_messages",
    metadata,
    Column("message_id", String(40), primary_key=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("organization_id", String(64), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False),
    # Set only when the body carries a signer's personal data, so erasure can find it, and
    # with it the signature's campaign, so a partner's removal from it can (migration 0033).
    Column("supporter_id", String(64), index=True),
    Column("campaign_id", String(64)),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Moment()),
    # Why the next attempt happens: scheduled | test | replay | recover (kept in the log).
    Column("trigger", String(12), nullable=False),
    Column("claimed_at", Moment()),
    Column("event_time", Moment(), nullable=False),
    Column("created_at", Moment(), nullable=False),
    Column("finished_at", Moment()),
    Column("last_status_code", Integer),
    UniqueConstraint("endpoint_id", "event_id", name="uq_wh_messages_once"),
    # Only in-flight rows, for reclaiming a crashed dispatcher's claims. An index led by status
    # also matched the claim query, and PostgreSQL's generic plan then walked every pending row
    # (a dead endpoint's whole backlog) to find one endpoint's: the claim must use the index
    # below, which is led by the endpoint.
    Index(
        "ix_wh_messages_delivering",
        "claimed_at",
        postgresql_where=text("status = 'delivering'"),
        sqlite_where=text("status = 'delivering'"),
    ),
    Index("ix_wh_messages_endpoint", "endpoint_id", "created_at"),
    # Finished messages, purged once past the retention (Dispatcher.purge).
    Index(
        "ix_wh_messages_finished",
        "finished_at",
        postgresql_where=text("finished_at IS NOT NULL"),
        sqlite_where=text("finished_at IS NOT NULL"),
    ),
    Index("ix_wh_messages_endpoint_due", "endpoint_id", "status", "next_attempt_at"),
    Index(
        "ix_wh_messages_person_campaign",
        "organization_id",
        "campaign_id",
        postgresql_where=text("supporter_id IS NOT NULL"),
        sqlite_where=text("supporter_id IS NOT NULL"),
    ),
)

attempts = Table(
    "wh_attempts",
    metadata,
    Column("attempt_id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(40), nullable=False, index=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("attempted_at", Moment(), nullable=False),
    # scheduled | test | replay | recover
    Column("trigger", String(12), nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Integer, nullable=False),
    Column("error", String(200)),
    Column("response_excerpt", Text),
    Index("ix_wh_attempts_endpoint", "endpoint_id", "attempted_at"),
)

# Which organizations were sent a supporter's details: an erasure tells them to delete them,
# even once the endpoint that carried the details (and its messages) is gone.
# Whom each organization must delete, for those that keep signers' details without a webhook
# (a CSV export imported into their own records): an erased person for the lead of every
# campaign they joined and every partner they shared with, a withdrawn share for its partner.
# Read at GET /api/v1/webhooks/deletions; purged with the messages (WEBHOOK_RETENTION_DAYS).
deletions = Table(
    "wh_deletions",
    metadata,
    Column("deletion_id", BigId, primary_key=True, autoincrement=True),
    Column("organization_id", String(64), nullable=False),
    Column("supporter_id", String(64), nullable=False),
    Column("reason", String(16), nullable=False),  # erased | withdrawn
    Column("at", Moment(), nullable=False, index=True),
    Index("ix_wh_deletions_organization", "organization_id", "deletion_id"),
)

# Endpoints deleted whose messages and attempts are still being removed (migration 0034).
removed_endpoints = Table(
    "wh_removed_endpoints",
    metadata,
    Column("endpoint_id", String(40), primary_key=True),
    Column("removed_at", Moment(), nullable=False),
)

shares = Table(
    "wh_shares",
    metadata,
    Column("supporter_id", String(64), primary_key=True),
    Column("organization_id", String(64), primary_key=True),
    Column("shared_at", Moment(), nullable=False),
)
