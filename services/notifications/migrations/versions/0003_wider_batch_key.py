"""Widen nf_deliveries.batch_key: a claim names the batch and the worker holding it.

Revision ID: 0003_batch_key
Revises: 0002_webhooks
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_batch_key"
down_revision: str | Sequence[str] | None = "0002_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("nf_deliveries") as batch:
        batch.alter_column(
            "batch_key",
            existing_type=sa.String(length=80),
            type_=sa.String(length=120),
            existing_nullable=True,
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("nf_deliveries") as batch:
        batch.alter_column(
            "batch_key",
            existing_type=sa.String(length=120),
            type_=sa.String(length=80),
            existing_nullable=True,
        )
