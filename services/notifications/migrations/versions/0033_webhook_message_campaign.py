"""wh_messages.campaign_id: the campaign of a message carrying a signer's details.

A partner taken out of a campaign was still sent the signers' details already waiting for
it (retries for up to a day; a recovery of failed ones for up to 30 days), although the lead
had taken it out of the coalition. Finding them meant reading every body of the partner's
backlog. Now each message with a person in it records its campaign, and the removal drops
those not yet delivered.

Revision ID: 0033_webhook_message_campaign
Revises: 0032_language_chosen_at
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0033_webhook_message_campaign"
down_revision: str | Sequence[str] | None = "0032_language_chosen_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_wh_messages_person_campaign"


def upgrade() -> None:
    """Upgrade schema. On PostgreSQL the backfill goes a batch per transaction, in key order,
    and the index is built CONCURRENTLY: the dispatcher and the consumers keep going
    meanwhile. Each step can run again after a run cut short (the revision is stamped last)."""
    where = sa.text("supporter_id IS NOT NULL")
    options: dict[str, Any] = {"postgresql_where": where, "sqlite_where": where}
    context = op.get_context()
    if context.dialect.name != "postgresql":
        op.add_column("wh_messages", sa.Column("campaign_id", sa.String(length=64)))
        op.execute(
            "UPDATE wh_messages SET campaign_id = json_extract(body, '$.data.campaign_id')"
            " WHERE supporter_id IS NOT NULL"
        )
        op.create_index(INDEX, "wh_messages", ["organization_id", "campaign_id"], **options)
        return
    op.execute("ALTER TABLE wh_messages ADD COLUMN IF NOT EXISTS campaign_id VARCHAR(64)")
    page = sa.text(
        "SELECT message_id FROM wh_messages WHERE message_id > :last"
        " AND supporter_id IS NOT NULL ORDER BY message_id LIMIT 1000"
    )
    fill = sa.text(
        "UPDATE wh_messages SET campaign_id = body::jsonb #>> '{data,campaign_id}'"
        " WHERE message_id = ANY(:ids) AND campaign_id IS NULL"
    )
    with context.autocommit_block():
        bind = op.get_bind()
        last = ""
        while ids := list(bind.execute(page, {"last": last}).scalars()):
            bind.execute(fill, {"ids": ids})
            last = ids[-1]
        # An index a cut-short run left INVALID would be kept by IF NOT EXISTS: built anew.
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        op.create_index(
            INDEX,
            "wh_messages",
            ["organization_id", "campaign_id"],
            postgresql_concurrently=True,
            **options,
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(INDEX, table_name="wh_messages")
    op.drop_column("wh_messages", "campaign_id")
