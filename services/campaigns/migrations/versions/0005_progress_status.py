"""alerts.progress_status: notifications' word on an alert it sends (sending, done, cancelled).

With it an organizer can tell a finished alert from one between two batches (whose `queued`
also reads 0), and cancelling an alert already sent to everyone is refused.

Revision ID: 0005_progress_status
Revises: 0004_parked_events
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_progress_status"
down_revision: str | Sequence[str] | None = "0004_parked_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("alerts", sa.Column("progress_status", sa.String(12), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("progress_status")
