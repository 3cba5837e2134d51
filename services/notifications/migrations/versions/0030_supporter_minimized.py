"""nf_supporters.minimized_at: what a supporter who agreed to no contact typed is dropped.

A signer who ticked no box is held here to be thanked, and to answer what they ask later
(their confirmation link, "you had already signed", the preference page, an erasure). Their
name, pronouns, number, postcode and region serve none of that once the campaigns they joined
are over: the progress publisher now drops them (audience.minimize_unconsented) and stamps
this column, so a supporter is looked at again only after a later signature.

Revision ID: 0030_supporter_minimized
Revises: 0029_webhook_deletions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030_supporter_minimized"
down_revision: str | Sequence[str] | None = "0029_webhook_deletions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # Nullable, no default: PostgreSQL adds it without rewriting the table.
    op.add_column(
        "nf_supporters", sa.Column("minimized_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("nf_supporters") as batch:
        batch.drop_column("minimized_at")
