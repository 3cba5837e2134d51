"""wh_deletions: whom each organization must delete, for those without a webhook.

An erasure or a withdrawn share reached only organizations with a webhook endpoint that had
been sent the person's details. A lead or partner that imports CSV exports into its own
records was never told, and kept the details of someone who asked to be forgotten. Each such
organization now has its deletion notices listed at GET /api/v1/webhooks/deletions.

Revision ID: 0029_webhook_deletions
Revises: 0028_inbound_sms
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment

revision: str = "0029_webhook_deletions"
down_revision: str | Sequence[str] | None = "0028_inbound_sms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "wh_deletions",
        sa.Column(
            "deletion_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("supporter_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("at", Moment(), nullable=False),
        sa.PrimaryKeyConstraint("deletion_id"),
    )
    op.create_index("ix_wh_deletions_at", "wh_deletions", ["at"])
    op.create_index(
        "ix_wh_deletions_organization", "wh_deletions", ["organization_id", "deletion_id"]
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_wh_deletions_organization", table_name="wh_deletions")
    op.drop_index("ix_wh_deletions_at", table_name="wh_deletions")
    op.drop_table("wh_deletions")
