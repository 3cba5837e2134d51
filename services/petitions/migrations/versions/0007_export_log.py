"""export_log: who exported which list of a petition, when.

The signer lists of a coalition whose supporters a leaked list could out were exported with no
trace of who took them. Each export (contact, delivery or a partner's) now leaves a row: the
caller's organization, key and role, and the time. It names no signer.

Revision ID: 0007_export_log
Revises: 0006_erasure_indexes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment

revision: str = "0007_export_log"
down_revision: str | Sequence[str] | None = "0006_erasure_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "export_log",
        sa.Column(
            "export_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("petition_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("partner_organization_id", sa.String(length=64), nullable=True),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("at", Moment(), nullable=False),
        sa.PrimaryKeyConstraint("export_id"),
    )
    op.create_index("ix_export_log_petition", "export_log", ["petition_id", "export_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_export_log_petition", table_name="export_log")
    op.drop_table("export_log")
