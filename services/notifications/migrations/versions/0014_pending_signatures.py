"""nf_signatures.pending and created_at: an unconfirmed signature changes nothing about the person.

A double opt-in signature used to refresh the supporter (name, pronouns, phone), join them to
the campaign's audience and lift an erasure tombstone before anyone clicked its link; anyone can
type an address into a form. What it says is now kept here until confirmation, and forgotten
with the signature when it is never confirmed.

Revision ID: 0014_pending_signatures
Revises: 0013_dead_batches
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_pending_signatures"
down_revision: str | Sequence[str] | None = "0013_dead_batches"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("nf_signatures") as batch:
        batch.add_column(sa.Column("pending", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("nf_signatures") as batch:
        batch.drop_column("created_at")
        batch.drop_column("pending")
