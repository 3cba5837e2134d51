"""nf_signatures.phone_hash: an erasure by phone reaches the unconfirmed signatures made with it.

What an unconfirmed signature says about its signer waits in nf_signatures.pending, where an
erasure by phone could not find it: it stayed until it expired. Existing rows are hashed here
with the service's KINSHIP_HASH_KEY.

Revision ID: 0015_pending_signature_phone
Revises: 0014_pending_signatures
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.notifications.audience import person_phone
from shared.config import Settings
from shared.privacy import phone_hash

revision: str = "0015_pending_signature_phone"
down_revision: str | Sequence[str] | None = "0014_pending_signatures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("nf_signatures") as batch:
        batch.add_column(sa.Column("phone_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_nf_signatures_phone_hash", "nf_signatures", ["phone_hash"])
    key = Settings.from_env("notifications").hash_key
    table = sa.table(
        "nf_signatures",
        sa.column("signature_id"),
        sa.column("pending", sa.JSON()),
        sa.column("phone_hash"),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(table.c.signature_id, table.c.pending).where(table.c.pending.is_not(None))
    ).all()
    for signature_id, pending in rows:
        phone = person_phone((pending or {}).get("person") or {})
        if phone:
            conn.execute(
                table.update()
                .where(table.c.signature_id == signature_id)
                .values(phone_hash=phone_hash(key, phone))
            )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_nf_signatures_phone_hash", table_name="nf_signatures")
    with op.batch_alter_table("nf_signatures") as batch:
        batch.drop_column("phone_hash")
