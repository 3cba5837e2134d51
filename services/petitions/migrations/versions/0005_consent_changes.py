"""consent_changes: the contact export's consent columns follow unsubscribes, STOPs and complaints.

The export said email_consent=yes and sms_consent=yes for whoever ticked the boxes when signing,
even after they unsubscribed, texted STOP or complained: an organizer importing the list into
another tool would contact them. Petitions now keeps, from consent.changed, the latest time of
each change per supporter, organization ("" for every one) and channel.

Revision ID: 0005_consent_changes
Revises: 0004_signature_phone_hash
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_consent_changes"
down_revision: str | Sequence[str] | None = "0004_signature_phone_hash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "consent_changes",
        sa.Column("supporter_id", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("supporter_id", "organization_id", "channel", "change"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("consent_changes")
