"""nf_early_outcomes: a provider's word on a message that arrives before the sender's own.

Twilio can call back "undelivered" while the sender has not yet recorded that Twilio took the
message (its row still `sending`). That callback was dropped, and the row then became `sent`:
a text that never arrived counted as sent, and a 21610's failure was never recorded. Such
outcomes are now held here and applied once the row is `sent`.

Revision ID: 0021_early_outcomes
Revises: 0020_preference_requests
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment

revision: str = "0021_early_outcomes"
down_revision: str | Sequence[str] | None = "0020_preference_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "nf_early_outcomes",
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("received_at", Moment(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("nf_early_outcomes")
