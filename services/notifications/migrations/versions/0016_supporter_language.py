"""nf_supporters.language: alerts target, and pick their content by, the person's language.

A supporter's `locale` is one of the seven languages Kinship writes its own messages in, else
English: an alert for Spanish speakers (audience.locales ["es"]) reached every supporter read
as English, and a Spanish speaker got an alert's English text though it had a Spanish one.
Existing supporters get their locale (what they said is not kept).

Revision ID: 0016_supporter_language
Revises: 0015_pending_signature_phone
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_supporter_language"
down_revision: str | Sequence[str] | None = "0015_pending_signature_phone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("nf_supporters") as batch:
        batch.add_column(sa.Column("language", sa.String(length=35), nullable=True))
    op.execute("UPDATE nf_supporters SET language = locale")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("nf_supporters") as batch:
        batch.drop_column("language")
