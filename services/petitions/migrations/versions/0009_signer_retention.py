"""petitions.signer_retention_days: signers' personal data erased some days after closing.

With it petitions.signer_data_erase_at, when that falls due, and signer_data_erased_at, when it
was done.

A list of who signed outlives its use: once the petition is delivered and the lead has taken
its export, every copy kept is one more that can leak, be seized or be subpoenaed. Organizers
whose signers could be at risk can now have the petitions service erase the signers' names,
addresses, numbers and comments that many days after the petition closes; the counts stay.
Existing petitions keep their signers until someone asks (NULL).

Revision ID: 0009_signer_retention
Revises: 0008_public_total
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_signer_retention"
down_revision: str | Sequence[str] | None = "0008_public_total"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # Nullable, no default: PostgreSQL adds them without rewriting the table.
    op.add_column("petitions", sa.Column("signer_retention_days", sa.Integer(), nullable=True))
    op.add_column(
        "petitions", sa.Column("signer_data_erase_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "petitions", sa.Column("signer_data_erased_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("petitions") as batch:
        batch.drop_column("signer_data_erased_at")
        batch.drop_column("signer_data_erase_at")
        batch.drop_column("signer_retention_days")
