"""wh_removed_endpoints: endpoints deleted whose messages and attempts are still being removed.

Deleting an endpoint deletes its row at once, then its messages and attempts a batch at a
time (a dead endpoint's backlog in one transaction held up every partner's deliveries). A
deletion cut short (a restart, an outage) left the rest for ever, signers' details among them.
Each deleted endpoint is now recorded here for a day; the dispatcher's purge finishes what
a deletion left (or a consumer batch that read the endpoint before, and committed after).

Revision ID: 0034_webhook_removed_endpoints
Revises: 0033_webhook_message_campaign
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment

revision: str = "0034_webhook_removed_endpoints"
down_revision: str | Sequence[str] | None = "0033_webhook_message_campaign"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "wh_removed_endpoints",
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("removed_at", Moment(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_id"),
    )
    # What deletions cut short before this left: finished by the dispatcher's purge.
    op.execute(
        "INSERT INTO wh_removed_endpoints (endpoint_id, removed_at)"
        " SELECT endpoint_id, CURRENT_TIMESTAMP FROM"
        " (SELECT endpoint_id FROM wh_messages UNION SELECT endpoint_id FROM wh_attempts) AS left_"
        " WHERE endpoint_id NOT IN (SELECT endpoint_id FROM wh_endpoints)"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("wh_removed_endpoints")
