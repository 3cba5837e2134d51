"""nf_alert_numbers: an alert texts a number once, whichever supporters gave it.

An alert's texts went one per supporter: a number given by several (a household, or someone
signing under fresh addresses with another person's number) got the alert as many times,
paid each time, each greeting a name someone typed. The first supporter an alert's batch
decides for takes the number; the others' texts are suppressed. An erasure deletes the
supporter's rows.

Revision ID: 0033_alert_numbers
Revises: 0032_language_chosen_at
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import ident

revision: str = "0033_alert_numbers"
down_revision: str | Sequence[str] | None = "0032_language_chosen_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "nf_alert_numbers",
        sa.Column("alert_id", ident(64), nullable=False),
        sa.Column("phone_hash", ident(64), nullable=False),
        sa.Column("supporter_id", ident(64), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "phone_hash"),
    )
    op.create_index(
        "ix_nf_alert_numbers_supporter_id", "nf_alert_numbers", ["supporter_id"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_nf_alert_numbers_supporter_id", table_name="nf_alert_numbers")
    op.drop_table("nf_alert_numbers")
