"""The notifications database: audience projection, suppressions, delivery ledger, alerts.

Also the admin API's Idempotency-Key records (shared.idempotency).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Computed,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.auth import api_keys_table
from shared.db import BigId, Moment, ident
from shared.idempotency import idempotency_table
from shared.outbox import shared_tables

metadata = MetaData()
outbox_table, processed_table = shared_tables(metadata)
api_keys = api_keys_table(metadata)

organizations = Table(
    "nf_organizations",
    metadata,
    Column("organization_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("contact_email", String(320)),
    Column("postal_address", Text),
    # Part of every unsubscribe token: names the organization without revealing its id.
    Column("token_tag", String(16), nullable=False, unique=True),
    Column("updated_at", Moment(), nullable=False),
)

campaigns = Table(
    "nf_campaigns",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("lead_organization_id", String(64), nullable=False),
    Column("partner_organization_ids", JSON, nullable=False),
    # The partners taken out since (campaign events say so in order); NULL for a campaign
    # projected before migration 0030 (webhooks.handlers.recipients).
    Column("removed_partner_ids", JSON),
    Column("titles", JSON, nullable=False),
    Column("status", String(16)),
    Column("updated_at", Moment(), nullable=False),
)

petitions = Table(
    "nf_petitions",
    metadata,
    Column("petition_id", String(64), primary_key=True),
    Column("campaign_id", String(64), nullable=False),
    Column("organization_id", String(64), nullable=False),
    Column("titles", JSON, nullable=False),
    Column("default_locale", String(16), nullable=False),
    Column("double_opt_in", Boolean, nullable=False),
)

supporters = Table(
    "nf_supporters",
    metadata,
    Column("supporter_id", ident(64), primary_key=True),
    Column("email", String(320)),
    Column("email_hash", String(64), index=True),
    Column("phone", String(32)),
    Column("phone_hash", String(64), index=True),
    Column("given_name", String(200)),
    Column("family_name", String(200)),
    Column("pronouns", String(64)),
    Column("locale", String(16), nullable=False),
    # The person's language as alerts target it (shared.locales.language_tag: es-MX, ko, fr).
    Column("language", String(35)),
    # When the person chose their language on the preference page (migration 0032).
    Column("language_chosen_at", Moment()),
    Column("country", String(2)),
    # As long as petitions accepts (services/petitions/schemas.py): a longer one fails every time.
    Column("region", String(100)),
    Column("postal_code", String(32)),  # domain.POSTAL_CODE_LENGTH
    Column("time_zone", String(100), nullable=False),  # one zone, or "West East"
    Column("discreet", Boolean, nullable=False),
    Column("interests", JSON, nullable=False),
    # Random, unguessable: the supporter's half of every unsubscribe / preference link.
    Column("token", String(64), nullable=False, unique=True),
    Column("created_at", Moment(), nullable=False),
    Column("updated_at", Moment(), nullable=False),
)

# channel is "email", "sms", or "share" (the supporter agreed to share details with the org).
consents = Table(
    "nf_consents",
    metadata,
    Column("supporter_id", ident(64), primary_key=True),
    Column("organization_id", ident(64), primary_key=True),
    Column("channel", ident(8), primary_key=True),
    Column("granted", Boolean, nullable=False),
    Column("changed_at", Moment(), nullable=False),
    # SMS: the keyed hash of the number the consent was given with. It holds only while that
    # is the supporter's number: a later signature typing the same address with another
    # number must not carry the texts the owner agreed to over to a stranger's phone.
    Column("contact_hash", String(64)),
)

supporter_campaigns = Table(
    "nf_supporter_campaigns",
    metadata,
    Column("campaign_id", ident(64), primary_key=True),
    Column("supporter_id", ident(64), primary_key=True),
    Column("partner_organization_id", String(64)),
    Column("source", String(64)),
    Column("joined_at", Moment(), nullable=False),
)

# Signatures awaiting double opt-in keep their consents here until confirmed.
signatures = Table(
    "nf_signatures",
    metadata,
    Column("signature_id", String(64), primary_key=True),
    Column("supporter_id", String(64), nullable=False, index=True),
    Column("petition_id", String(64), nullable=False),
    Column("organization_id", String(64), nullable=False),
    Column("consents", JSON, nullable=False),
    Column("confirmed", Boolean, nullable=False),
    # What an unconfirmed signature says about the person (name, phone, campaign, attribution):
    # believed only once its link is clicked, then applied and cleared. Anyone can type an
    # address into a double opt-in form.
    Column("pending", JSON),
    # Keyed hash of the phone an unconfirmed signature gives: an erasure by phone finds it.
    Column("phone_hash", String(64), index=True),
    Column("created_at", Moment()),
)

# Final: checked at send time. Keyed hashes only, so it survives erasure.
# scope is an organization id, or "*" for every organization (bounce, complaint, STOP, erasure).
suppressions = Table(
    "nf_suppressions",
    metadata,
    Column("contact_hash", ident(64), primary_key=True),
    Column("channel", ident(8), primary_key=True),
    Column("scope", ident(64), primary_key=True),
    Column("reason", String(32), nullable=False),
    Column("created_at", Moment(), nullable=False),
)

# When each address was erased (its keyed hash): a signature made before then and delivered
# after (consumer lag, a retried event) is void. Apart from suppressions, which keep one reason
# a contact (a bounce before the erasure would hide it).
erasures = Table(
    "nf_erasures",
    metadata,
    Column("contact_hash", ident(64), primary_key=True),
    Column("erased_at", Moment(), nullable=False),
)

alerts = Table(
    "nf_alerts",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("campaign_id", String(64), nullable=False),
    Column("organization_id", String(64), nullable=False),
    Column("channels", JSON, nullable=False),
    Column("default_locale", String(16), nullable=False),
    Column("content", JSON, nullable=False),
    Column("audience", JSON, nullable=False),
    # The lead organization's name and postal address as campaigns checked them at publishing
    # (the emails' sender and footer); NULL for an alert published before they were carried.
    Column("sender_name", String(200)),
    Column("postal_address", Text),
    Column("send_at", Moment()),
    # scheduled -> expanding -> sending -> done, or cancelled.
    Column("status", String(16), nullable=False),
    # Per channel, the last supporter id already batched: "email=<id>|sms=<id>" (resume point).
    Column("checkpoint", Text),
    Column("batches", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
    Column("sent", Integer, nullable=False, default=0),
    Column("delivered", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("suppressed", Integer, nullable=False, default=0),
    Column("deferred", Integer, nullable=False, default=0),
    Column("ambiguous", Integer, nullable=False, default=0),
    Column("dead_batches", Integer, nullable=False, default=0),
    Column("version", Integer, nullable=False, default=0),
    Column("published_version", Integer, nullable=False, default=0),
    Column("created_at", Moment(), nullable=False),
)

# When the queue poller should look at a row: a waiting message of its own (no batch holds it)
# once due, or a row a poller claimed, from its claim time (the poller takes it back after the
# lease). NULL for every other row, which is what keeps the poller's index small and lets the
# ledger's status updates be HOT: no index names `status`, and a dispatch batch's rows keep a
# NULL here from insert to sent, so PostgreSQL rewrites them in place without index entries.
POLL_AT = (
    "CASE WHEN batch_key IS NULL AND status IN ('queued', 'deferred')"
    " THEN COALESCE(not_before, created_at)"
    " WHEN batch_key LIKE 'poll:%' AND status IN ('queued', 'sending') THEN claimed_at END"
)
# The delivery ledger: one row per (message, recipient, channel), written before the provider
# call. message_key is an alert id or a transactional key such as "thanks:<signature id>".
# status: queued | deferred | sending | sent | delivered | failed | suppressed.
deliveries = Table(
    "nf_deliveries",
    metadata,
    Column("delivery_id", ident(36), primary_key=True),
    Column("message_key", ident(160), nullable=False),
    Column("recipient_id", ident(80), nullable=False),
    Column("channel", ident(8), nullable=False),
    Column("alert_id", String(64)),
    Column("kind", String(24), nullable=False),
    Column("status", String(12), nullable=False),
    # Who holds the row: a dispatch batch id, or "poll:<uuid>" for the queue poller.
    Column("batch_key", String(120)),
    Column("claimed_at", Moment()),
    Column("not_before", Moment()),
    Column("attempts", Integer, nullable=False, default=0),
    Column("params", JSON),
    Column("provider_message_id", String(80)),
    Column("error_code", String(64)),
    Column("created_at", Moment(), nullable=False),
    Column("updated_at", Moment(), nullable=False),
    Column("poll_at", Moment(), Computed(POLL_AT, persisted=True)),
    UniqueConstraint("message_key", "recipient_id", "channel", name="uq_nf_deliveries_once"),
    Index(
        "ix_nf_deliveries_poll",
        "poll_at",
        postgresql_where=text("poll_at IS NOT NULL"),
        sqlite_where=text("poll_at IS NOT NULL"),
    ),
    # The queue poller's own messages (no alert's: welcomes, links, thank-yous) come before an
    # alert's texts deferred to the morning, however many of those are due (ledger.pollable).
    Index(
        "ix_nf_deliveries_poll_own",
        "poll_at",
        postgresql_where=text("poll_at IS NOT NULL AND alert_id IS NULL"),
        sqlite_where=text("poll_at IS NOT NULL AND alert_id IS NULL"),
    ),
    # Half of each page left free for those in-place updates (PostgreSQL).
    postgresql_with={"fillfactor": 50},
)

# Dispatch batches whose provider kept failing. The row is written, and the alert's
# dead_batches counted, in the transaction that fails the batch's deliveries; the sender then
# copies the batch to its dead-letter topic and stamps dead_lettered_at. A sender that stops or
# loses the broker in between finds the row unstamped when the batch comes back, and finishes.
dead_batches = Table(
    "nf_dead_batches",
    metadata,
    Column("batch_id", ident(120), primary_key=True),
    Column("alert_id", String(64), nullable=False),
    Column("created_at", Moment(), nullable=False),
    Column("dead_lettered_at", Moment()),
)

# What the capture sender "sent": the local run's outbox (`kinship outbox`).
captured = Table(
    "nf_captured",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("channel", String(8), nullable=False),
    Column("to_address", String(320), nullable=False),
    Column("subject", Text),
    Column("body", Text, nullable=False),
    Column("html", Text),
    Column("headers", JSON, nullable=False),
    Column("custom_args", JSON, nullable=False),
    Column("alert_id", String(64), index=True),
    Column("supporter_id", String(64), index=True),
    Column("delivery_id", String(36)),
    Column("created_at", Moment(), nullable=False),
)

erasure_requests = Table(
    "nf_erasure_requests",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("supporter_id", String(64), nullable=False),
    Column("expires_at", Moment(), nullable=False),
)

# Preference changes that make a supporter easier to identify or reach (discreet mode off, a
# new name or pronouns, texts), held until the link emailed to the address confirms them: the
# preference page is reachable by whoever holds a forwarded email. One live request a
# supporter; only the token's hash is kept.
preference_requests = Table(
    "nf_preference_requests",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("supporter_id", String(64), nullable=False, index=True),
    Column("organization_id", String(64), nullable=False),
    Column("changes", JSON, nullable=False),
    Column("created_at", Moment(), nullable=False),
    Column("expires_at", Moment(), nullable=False),
)

# The last SMS welcome to a number (keyed hash) from an organization: one a day at most, however
# many signatures give the number (migration 0031).
sms_welcomes = Table(
    "nf_sms_welcomes",
    metadata,
    Column("phone_hash", ident(64), primary_key=True),
    Column("organization_id", ident(64), primary_key=True),
    Column("welcomed_at", Moment(), nullable=False),
)

# Inbound texts that changed a number's consent (STOP, START), by a keyed hash of Twilio's
# MessageSid: Twilio's signature covers no time, so one captured request (a proxy's body log)
# replayed later would lift a STOP; a repeat of a MessageSid changes nothing. Kept for good (a
# purge would let the replay through again): a hash and a time per STOP or START.
inbound_sms = Table(
    "nf_inbound_sms",
    metadata,
    Column("sid_hash", String(64), primary_key=True),
    Column("received_at", Moment(), nullable=False, index=True),
)

# A provider's word on a message (Twilio's status callback, SendGrid's events) that came while
# its ledger row was still `queued` or `sending`: the sender had not yet recorded that the
# provider took it. Held here, and applied once the row is `sent` (ProgressPublisher).
# outcome: delivered | failed.
early_outcomes = Table(
    "nf_early_outcomes",
    metadata,
    Column("delivery_id", String(64), primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("error_code", String(64)),
    # The provider's id of the message it spoke of (Twilio's MessageSid, SendGrid's
    # sg_message_id): applied only to that send, not to one made again after it.
    Column("provider_message_id", String(128)),
    Column("received_at", Moment(), nullable=False),
)

# Idempotency-Key records of the admin API (POST /api/v1/erasures): see shared.idempotency.
idempotency_keys = idempotency_table(metadata, "nf_idempotency_keys")


def upsert(
    conn: Connection,
    table: Table,
    row: Mapping[str, Any],
    keys: list[str],
    update: Mapping[str, Any] | None = None,
    where: Any = None,
) -> bool:
    """Insert a row, or on a key conflict update the given columns (only where `where` holds
    of the existing row, when given), or do nothing; return whether a row was written.

    Decided by the statement, on the row as committed: of two transactions writing the same
    change at once, the second waits for the first and then finds nothing to do (False)."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(**row)
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_=dict(update), where=where
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    return conn.execute(statement.returning(literal_column("1"))).first() is not None


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]] | None = None) -> Any:
    """Return an INSERT that skips rows whose unique keys exist.

    With rows, the statement carries them (a multi-row VALUES); without, execute it with a list
    of rows (executemany, which is cheaper for large batches).
    """
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table)
    if rows is not None:
        statement = statement.values(rows)
    return statement.on_conflict_do_nothing()
