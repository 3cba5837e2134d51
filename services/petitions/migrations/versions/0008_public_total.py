"""petitions.public_total: an organizer can hide a petition's total and goal from the public.

On a single opt-in petition the public total moves at once, so anyone who signs with someone
else's address learns whether that address had signed. An organizer whose signers could be at
risk can now keep the count to the coalition (Action Network's "hide the signature count").
Existing petitions keep showing it.

Revision ID: 0008_public_total
Revises: 0007_export_log
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_public_total"
down_revision: str | Sequence[str] | None = "0007_export_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "petitions",
        sa.Column("public_total", sa.Boolean(), server_default=sa.true(), nullable=False),
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("petitions") as batch:
        batch.drop_column("public_total")
