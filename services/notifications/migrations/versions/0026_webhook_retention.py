"""ix_wh_messages_finished: webhook messages are kept for a retention period, then purged.

Each delivered or failed message kept its body (a signer's details, for the partners they
ticked) and its attempts (partners' responses, which often echo it) for ever. Housekeeping now
deletes those finished longer ago than `WEBHOOK_RETENTION_DAYS`, found through this index.

Revision ID: 0026_webhook_retention
Revises: 0025_poll_own_first
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0026_webhook_retention"
down_revision: str | Sequence[str] | None = "0025_poll_own_first"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema (CONCURRENTLY on PostgreSQL: the dispatcher keeps claiming meanwhile)."""
    where = sa.text("finished_at IS NOT NULL")
    context = op.get_context()
    options: dict[str, Any] = {"postgresql_where": where, "sqlite_where": where}
    if context.dialect.name == "postgresql":
        with context.autocommit_block():
            op.create_index(
                "ix_wh_messages_finished",
                "wh_messages",
                ["finished_at"],
                postgresql_concurrently=True,
                **options,
            )
    else:
        op.create_index("ix_wh_messages_finished", "wh_messages", ["finished_at"], **options)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_wh_messages_finished", table_name="wh_messages")
