"""ix_nf_deliveries_poll_own: the queue poller takes its own messages before an alert's.

At 08:00 an alert's texts deferred overnight are all due at once, and go at the SMS rate: a
welcome text queued at 08:05 sorted after every one of them (twenty thousand at 10 a second:
half an hour). The poller now claims messages of no alert first, through this partial index,
whatever number of an alert's rows are due before them.

Revision ID: 0025_poll_own_first
Revises: 0024_alert_sender
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0025_poll_own_first"
down_revision: str | Sequence[str] | None = "0024_alert_sender"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema. On PostgreSQL the index is built CONCURRENTLY, outside the migration's
    transaction: the ledger can hold millions of rows, and a plain build would block every
    claim and settle of the running workers until it ends."""
    where = sa.text("poll_at IS NOT NULL AND alert_id IS NULL")
    context = op.get_context()
    options: dict[str, Any] = {"postgresql_where": where, "sqlite_where": where}
    if context.dialect.name == "postgresql":
        with context.autocommit_block():
            op.create_index(
                "ix_nf_deliveries_poll_own",
                "nf_deliveries",
                ["poll_at"],
                postgresql_concurrently=True,
                **options,
            )
    else:
        op.create_index("ix_nf_deliveries_poll_own", "nf_deliveries", ["poll_at"], **options)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_nf_deliveries_poll_own", table_name="nf_deliveries")
