"""nf_consents.contact_hash: an SMS consent holds for the number it was given with.

A single opt-in signature typing someone's address with another number replaced the
supporter's phone, and every organization's texts the owner had agreed to went to that
number. Existing SMS consents are tied to the supporter's current number.

Revision ID: 0019_sms_consent_number
Revises: 0018_webhook_shares
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_sms_consent_number"
down_revision: str | Sequence[str] | None = "0018_webhook_shares"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("nf_consents") as batch:
        batch.add_column(sa.Column("contact_hash", sa.String(64), nullable=True))
    op.execute(
        "UPDATE nf_consents SET contact_hash = (SELECT s.phone_hash FROM nf_supporters s"
        " WHERE s.supporter_id = nf_consents.supporter_id) WHERE channel = 'sms'"
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("nf_consents") as batch:
        batch.drop_column("contact_hash")
