"""Index only waiting or in-flight deliveries; drop the unused provider-id index.

A million alert rows that are sent then leave the poller's index, which is all that indexes
their status.

Revision ID: 0004_lean_indexes
Revises: 0003_batch_key
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_lean_indexes"
down_revision: str | Sequence[str] | None = "0003_batch_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
WAITING = sa.text("status IN ('queued', 'deferred', 'sending')")


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_index("ix_nf_deliveries_provider", table_name="nf_deliveries")
    op.drop_index("ix_nf_deliveries_due", table_name="nf_deliveries")
    op.create_index(
        "ix_nf_deliveries_due",
        "nf_deliveries",
        ["status", "not_before"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_nf_deliveries_due", table_name="nf_deliveries")
    op.create_index("ix_nf_deliveries_due", "nf_deliveries", ["status", "not_before"])
    op.create_index("ix_nf_deliveries_provider", "nf_deliveries", ["provider_message_id"])
