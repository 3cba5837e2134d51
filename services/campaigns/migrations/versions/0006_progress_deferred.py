"""alerts.progress_deferred: texts held now for their recipient's morning.

An SMS alert sent in the evening showed its texts as `queued` until 08:00 in each recipient's
time zone, with nothing to tell an organizer that they were held on purpose. Notifications'
progress now says how many are deferred (quiet hours), and campaigns keeps it.

Revision ID: 0006_progress_deferred
Revises: 0005_progress_status
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_progress_deferred"
down_revision: str | Sequence[str] | None = "0005_progress_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "alerts",
        sa.Column("progress_deferred", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("progress_deferred")
