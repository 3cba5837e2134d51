"""Widen nf_supporters.time_zone: it may name two zones, the westernmost and easternmost.

A supporter whose place is known only as a country of several zones (or a mobile number that
says no more) was given the country's "main zone", and texted at 04:00 in Vladivostok or
05:00 in Perth. Their quiet hours are now reckoned in both ends of what they may be in.

Revision ID: 0022_time_zone_span
Revises: 0021_early_outcomes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_time_zone_span"
down_revision: str | Sequence[str] | None = "0021_early_outcomes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("nf_supporters") as batch:
        batch.alter_column(
            "time_zone",
            existing_type=sa.String(length=64),
            type_=sa.String(length=100),
            existing_nullable=False,
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("nf_supporters") as batch:
        batch.alter_column(
            "time_zone",
            existing_type=sa.String(length=100),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
