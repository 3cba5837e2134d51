"""nf_alerts.sender_name and .postal_address: the footer campaigns checked, kept with the alert.

alert.published now carries the lead organization's name and postal address as the campaigns
service checked them at publishing. The emails read them from here: this service's own copy of
the organization comes by organization.updated, keyed apart from the alert, and could lag
behind it (a send-now alert right after the address was set went out without one, from
"Kinship"). Alerts published before stay NULL and read the organization's copy, as before.

Revision ID: 0024_alert_sender
Revises: 0023_rezone_supporters
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_alert_sender"
down_revision: str | Sequence[str] | None = "0023_rezone_supporters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("nf_alerts") as batch:
        batch.add_column(sa.Column("sender_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("postal_address", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("nf_alerts") as batch:
        batch.drop_column("postal_address")
        batch.drop_column("sender_name")
