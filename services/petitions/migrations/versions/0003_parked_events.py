"""kinship_parked_events: a failed event's key waits behind it, in order, while it is retried.

The consumer runner parks an event that goes to the retry topic, and every later event of its
key behind it, so an alert.cancelled can no longer take effect before the alert.published it
cancels (shared.consumer._Parking).

Revision ID: 0003_parked_events
Revises: 0002_outbox_notify
"""

from collections.abc import Sequence

from shared.migrate import create_parked_events, drop_parked_events

revision: str = "0003_parked_events"
down_revision: str | Sequence[str] | None = "0002_outbox_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    create_parked_events()


def downgrade() -> None:
    """Downgrade schema."""
    drop_parked_events()
