"""nf_signatures.phone_hash: an erasure by phone reaches the unconfirmed signatures made with it.

What an unconfirmed signature says about its signer waits in nf_signatures.pending, where an
erasure by phone could not find it: it stayed until it expired. Existing rows are hashed here
with the service's KINSHIP_HASH_KEY.

Revision ID: 0015_pending_signature_phone
Revises: 0014_pending_signatures
"""

from collections.abc import Sequence
from typing import Any

import phonenumbers
import sqlalchemy as sa
from alembic import op

from shared.config import Settings
from shared.privacy import phone_hash

revision: str = "0015_pending_signature_phone"
down_revision: str | Sequence[str] | None = "0014_pending_signatures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _e164(person: dict[str, Any]) -> str | None:
    """The phone an unconfirmed signature gave, as the service reads it (E.164), spelled out
    here so that a later change of the service's code cannot change what this migration did."""
    number = person.get("phone")
    if not number:
        return None
    country = str(person.get("country") or "").upper() or None
    try:
        parsed = phonenumbers.parse(str(number), country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


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
        sa.column("confirmed"),
        sa.column("phone_hash"),
    )
    change = (
        table.update()
        .where(table.c.signature_id == sa.bindparam("sid"))
        .values(phone_hash=sa.bindparam("hashed"))
    )
    conn = op.get_bind()
    last = ""
    while True:  # unconfirmed ones only (a confirmed one's pending is JSON null), by chunks
        rows = conn.execute(
            sa.select(table.c.signature_id, table.c.pending)
            .where(table.c.confirmed.is_(False), table.c.signature_id > last)
            .order_by(table.c.signature_id)
            .limit(1000)
        ).all()
        if not rows:
            break
        hashed = [
            {"sid": sid, "hashed": phone_hash(key, phone)}
            for sid, pending in rows
            if (phone := _e164((pending or {}).get("person") or {}))
        ]
        if hashed:
            conn.execute(change, hashed)
        last = rows[-1][0]


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_nf_signatures_phone_hash", table_name="nf_signatures")
    with op.batch_alter_table("nf_signatures") as batch:
        batch.drop_column("phone_hash")
