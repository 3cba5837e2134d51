"""nf_preference_requests: changes that make a supporter easier to identify wait for the inbox.

The preference page is reachable by whoever holds a forwarded email: they could turn discreet
mode off (the next subject names the cause), rename or re-gender the supporter in every
organization's emails, or opt the phone in to texts. Such changes are now held here until the
link emailed to the address confirms them.

Revision ID: 0020_preference_requests
Revises: 0019_sms_consent_number
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment

revision: str = "0020_preference_requests"
down_revision: str | Sequence[str] | None = "0019_sms_consent_number"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "nf_preference_requests",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("supporter_id", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", Moment(), nullable=False),
        sa.Column("expires_at", Moment(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(
        "ix_nf_preference_requests_supporter_id", "nf_preference_requests", ["supporter_id"]
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_nf_preference_requests_supporter_id", table_name="nf_preference_requests")
    op.drop_table("nf_preference_requests")
