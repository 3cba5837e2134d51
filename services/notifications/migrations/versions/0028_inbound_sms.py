"""nf_inbound_sms: an inbound STOP or START is applied once, however often it is replayed.

Twilio's X-Twilio-Signature covers the URL and the form, no time: a signed inbound "START"
captured anywhere on its way (a proxy's or a WAF's body log) could be replayed after the person
texted STOP, and would subscribe them again. Each MessageSid that changed a consent is now
kept (as a keyed hash, for good: a purge would let the replay through again) and a repeat
changes nothing.

Revision ID: 0028_inbound_sms
Revises: 0027_webhook_old_secrets
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment

revision: str = "0028_inbound_sms"
down_revision: str | Sequence[str] | None = "0027_webhook_old_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "nf_inbound_sms",
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("received_at", Moment(), nullable=False),
        sa.PrimaryKeyConstraint("sid_hash"),
    )
    op.create_index("ix_nf_inbound_sms_received_at", "nf_inbound_sms", ["received_at"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_nf_inbound_sms_received_at", table_name="nf_inbound_sms")
    op.drop_table("nf_inbound_sms")
