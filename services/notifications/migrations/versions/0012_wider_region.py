"""Widen nf_supporters.region to the 100 characters petitions accepts.

A signature whose region was longer than 64 characters failed on every attempt and was
dead-lettered: the signer never joined the audience and their consents were lost.

Revision ID: 0012_wider_region
Revises: 0011_parked_events
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_wider_region"
down_revision: str | Sequence[str] | None = "0011_parked_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("nf_supporters") as batch:
        batch.alter_column(
            "region",
            existing_type=sa.String(length=64),
            type_=sa.String(length=100),
            existing_nullable=True,
        )


def downgrade() -> None:
    """Downgrade schema."""
    # The narrower column cannot hold a longer region: keep its first 64 characters rather
    # than refuse to step down.
    op.execute("UPDATE nf_supporters SET region = substr(region, 1, 64) WHERE length(region) > 64")
    with op.batch_alter_table("nf_supporters") as batch:
        batch.alter_column(
            "region",
            existing_type=sa.String(length=100),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
