"""alerts.cancel_reason: why an alert was cancelled when the scheduler refused to publish it.

Publishing re-runs the checks scheduling made (the lead's postal address, the content); an
alert that no longer passes them is cancelled with the reason, shown to its organizers.

Revision ID: 0003_alert_cancel_reason
Revises: 0002_outbox_notify
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_alert_cancel_reason"
down_revision: str | Sequence[str] | None = "0002_outbox_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("alerts", sa.Column("cancel_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("cancel_reason")
