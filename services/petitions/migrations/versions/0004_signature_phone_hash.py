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
    # Only erasure reads it, and most signers give no phone: an index of those who do.
    op.create_index(
        "ix_signatures_phone_hash",
        "signatures",
        ["phone_hash"],
        postgresql_where=sa.text("phone_hash IS NOT NULL"),
        sqlite_where=sa.text("phone_hash IS NOT NULL"),
    )
    key = Settings.from_env("petitions").hash_key
    table = sa.table("signatures", sa.column("id"), sa.column("phone"), sa.column("phone_hash"))
    change = (
        table.update()
        .where(table.c.id == sa.bindparam("row_id"))
        .values(phone_hash=sa.bindparam("hashed"))
    )
    conn = op.get_bind()
    last = 0
    while True:  # a thousand rows a round trip, read by id: never the whole table in memory
        rows = conn.execute(
            sa.select(table.c.id, table.c.phone)
            .where(table.c.phone.is_not(None), table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(change, [{"row_id": i, "hashed": phone_hash(key, p)} for i, p in rows])
        last = rows[-1][0]


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_signatures_phone_hash", table_name="signatures")
    with op.batch_alter_table("signatures") as batch:
        batch.drop_column("phone_hash")
