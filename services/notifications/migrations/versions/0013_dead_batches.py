"""nf_dead_batches: a dead dispatch batch is counted with its failed deliveries, and dead-lettered
even if the sender stops or loses the broker before it could.

Before, the sender failed the batch's deliveries, then wrote the dead-letter record, then counted
the batch; when the dead-letter write failed, the batch came back with nothing left to send, and
neither the record nor the count was ever made.

Revision ID: 0013_dead_batches
Revises: 0012_wider_region
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_dead_batches"
down_revision: str | Sequence[str] | None = "0012_wider_region"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "nf_dead_batches",
        sa.Column(
            "batch_id",
            sa.String(120).with_variant(sa.String(120, collation="C"), "postgresql"),
            primary_key=True,
        ),
        sa.Column("alert_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("nf_dead_batches")
