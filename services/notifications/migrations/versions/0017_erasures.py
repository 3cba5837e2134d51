"""nf_erasures: when each address was erased, apart from its suppression.

A signature made before an erasure and delivered after it is void. The erasure's time was read
from the address's `erased` suppression, but a contact keeps one suppression reason: one that
bounced or complained before its erasure had none, and its late signatures brought the person
back. Existing erasures are copied from their suppressions.

Revision ID: 0017_erasures
Revises: 0016_supporter_language
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment

revision: str = "0017_erasures"
down_revision: str | Sequence[str] | None = "0016_supporter_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "nf_erasures",
        sa.Column(
            "contact_hash",
            sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql"),
            primary_key=True,
        ),
        sa.Column("erased_at", Moment(), nullable=False),
    )
    op.execute(
        "INSERT INTO nf_erasures (contact_hash, erased_at) SELECT contact_hash, created_at"
        " FROM nf_suppressions WHERE reason = 'erased' AND channel = 'email' AND scope = '*'"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("nf_erasures")
