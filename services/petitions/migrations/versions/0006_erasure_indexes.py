"""ix_signature_partner_consents_row: expiry and erasure find a signature's partner boxes.

Expiry and erasure delete a signature's partner boxes by its row, which the table's key
(petition, organization, row) cannot serve: PostgreSQL read the whole table for each
signature, up to 500 of them in one expiry transaction while it held their rows (a
confirmation of one of them waited behind it).

Revision ID: 0006_erasure_indexes
Revises: 0005_consent_changes
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_erasure_indexes"
down_revision: str | Sequence[str] | None = "0005_consent_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME, TABLE = "ix_signature_partner_consents_row", "signature_partner_consents"


def upgrade() -> None:
    """Upgrade schema. On PostgreSQL the index is built CONCURRENTLY, outside the migration's
    transaction: a plain build would block every signature's partner boxes until it ends."""
    context = op.get_context()
    if context.dialect.name == "postgresql":
        with context.autocommit_block():
            op.create_index(NAME, TABLE, ["signature_row"], postgresql_concurrently=True)
    else:
        op.create_index(NAME, TABLE, ["signature_row"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(NAME, table_name=TABLE)
