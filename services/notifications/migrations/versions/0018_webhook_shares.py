"""wh_shares: which organizations were sent a supporter's details by webhook.

An erasure told only the endpoints whose stored messages carried the person: an endpoint its
owner had deleted (with its messages) was forgotten, and that organization never heard it must
delete the person. Existing shares are read from the messages still kept.

Revision ID: 0018_webhook_shares
Revises: 0017_erasures
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment

revision: str = "0018_webhook_shares"
down_revision: str | Sequence[str] | None = "0017_erasures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "wh_shares",
        sa.Column("supporter_id", sa.String(64), primary_key=True),
        sa.Column("organization_id", sa.String(64), primary_key=True),
        sa.Column("shared_at", Moment(), nullable=False),
    )
    op.execute(
        "INSERT INTO wh_shares (supporter_id, organization_id, shared_at)"
        " SELECT supporter_id, organization_id, MIN(created_at) FROM wh_messages"
        " WHERE supporter_id IS NOT NULL GROUP BY supporter_id, organization_id"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("wh_shares")
