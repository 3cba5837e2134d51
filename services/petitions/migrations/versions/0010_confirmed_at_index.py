"""ix_signatures_petition_confirmed: an export since a time reads only who counted since.

A sync that asks for the signers counted since its last run (`?since=`) walked the petition's
rows in id order and dropped by filter every one confirmed earlier: for a petition of a million
signers, each five-minute sync read the million rows (measured: a parallel scan of 78 ms on an
idle server, against 0.2 ms with this index for the 300 who signed in the last five minutes).

Revision ID: 0010_confirmed_at_index
Revises: 0009_signer_retention
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_confirmed_at_index"
down_revision: str | Sequence[str] | None = "0009_signer_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME, TABLE = "ix_signatures_petition_confirmed", "signatures"
COLUMNS = ["petition_id", "confirmed_at"]


def upgrade() -> None:
    """Upgrade schema. On PostgreSQL the index is built CONCURRENTLY, outside the migration's
    transaction: a plain build would hold every signature on the table until it ends."""
    context = op.get_context()
    if context.dialect.name == "postgresql":
        with context.autocommit_block():
            op.create_index(NAME, TABLE, COLUMNS, postgresql_concurrently=True)
    else:
        op.create_index(NAME, TABLE, COLUMNS)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(NAME, table_name=TABLE)
