"""signatures.phone_hash: erasure by a phone number finds every signature it was typed on.

An erasure by phone used to reach petitions with only the phone's keyed hash, which nothing
here held: a signature made with that number, under an address notifications no longer links
to it, kept its name, email, phone and comment, and stayed in exports. Existing signatures
are hashed here with the service's KINSHIP_HASH_KEY.

Revision ID: 0004_signature_phone_hash
Revises: 0003_parked_events
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.config import Settings
from shared.privacy import phone_hash

revision: str = "0004_signature_phone_hash"
down_revision: str | Sequence[str] | None = "0003_parked_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("signatures") as batch:
        batch.add_column(sa.Column("phone_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_signatures_phone_hash", "signatures", ["phone_hash"])
    key = Settings.from_env("petitions").hash_key
    table = sa.table("signatures", sa.column("id"), sa.column("phone"), sa.column("phone_hash"))
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(table.c.id, table.c.phone)
            .where(table.c.phone.is_not(None), table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for row_id, phone in rows:
            conn.execute(
                table.update().where(table.c.id == row_id).values(phone_hash=phone_hash(key, phone))
            )
        last = rows[-1][0]


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_signatures_phone_hash", table_name="signatures")
    with op.batch_alter_table("signatures") as batch:
        batch.drop_column("phone_hash")
