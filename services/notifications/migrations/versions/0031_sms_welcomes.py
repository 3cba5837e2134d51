"""nf_sms_welcomes: at most one SMS welcome to a number from an organization a day.

A welcome went to each new opt-in, and a new supporter's number is taken as typed: single
opt-in signatures under fresh addresses, each giving the same number, each sent it another
welcome, at any hour (a welcome goes at once). One number got as many texts as a form would
take signatures. Now the number's keyed hash and the time of its last welcome from each
organization are kept, and another within a day is not queued. An erasure deletes the rows.

Revision ID: 0031_sms_welcomes
Revises: 0030_campaign_removed_partners
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment, ident

revision: str = "0031_sms_welcomes"
down_revision: str | Sequence[str] | None = "0030_campaign_removed_partners"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "nf_sms_welcomes",
        sa.Column("phone_hash", ident(64), nullable=False),
        sa.Column("organization_id", ident(64), nullable=False),
        sa.Column("welcomed_at", Moment(), nullable=False),
        sa.PrimaryKeyConstraint("phone_hash", "organization_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("nf_sms_welcomes")
