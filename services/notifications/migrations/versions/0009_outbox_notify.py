"""NOTIFY the outbox relay when events are committed (PostgreSQL).

A statement-level trigger on the outbox calls pg_notify at each INSERT, delivered when the
transaction commits. The relay LISTENs (shared.pacing.CommitListener) instead of polling the
table 20 times a second, which cost a few percent of a core in every service at rest, and still
publishes at once.

Revision ID: 0009_outbox_notify
Revises: 0008_outbox_uncompressed
"""

from collections.abc import Sequence

from shared.migrate import on_postgresql
from shared.outbox import DROP_NOTIFY_DDL, NOTIFY_DDL

revision: str = "0009_outbox_notify"
down_revision: str | Sequence[str] | None = "0008_outbox_uncompressed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    on_postgresql(NOTIFY_DDL)


def downgrade() -> None:
    """Downgrade schema."""
    on_postgresql(DROP_NOTIFY_DDL)
