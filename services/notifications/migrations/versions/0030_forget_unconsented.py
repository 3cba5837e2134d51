"""Indexes to find a supporter's own messages and campaigns, for forgetting them.

A supporter who agreed to no contact is now forgotten some time after their campaigns close
(UNCONSENTED_RETENTION_DAYS), as erasure forgets a person: both find the person's rows in the
ledger and their campaigns. ix_nf_deliveries_own_recipient holds only the rows of messages to
one person (thanks, links, welcomes: no alert's), so the alert fan-out's inserts never touch
it; ix_nf_supporter_campaigns_supporter finds the campaigns a person joined.

Revision ID: 0030_forget_unconsented
Revises: 0029_webhook_deletions
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0030_forget_unconsented"
down_revision: str | Sequence[str] | None = "0029_webhook_deletions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWN = sa.text("alert_id IS NULL")


def upgrade() -> None:
    """Upgrade schema. On PostgreSQL the indexes are built CONCURRENTLY, outside the
    migration's transaction: the ledger can hold millions of rows, and a plain build would
    block the running workers' writes until it ends."""
    context = op.get_context()
    own: dict[str, Any] = {"postgresql_where": OWN, "sqlite_where": OWN}
    if context.dialect.name == "postgresql":
        with context.autocommit_block():
            op.create_index(
                "ix_nf_deliveries_own_recipient", "nf_deliveries", ["recipient_id"],
                postgresql_concurrently=True, **own,
            )  # fmt: skip
            op.create_index(
                "ix_nf_supporter_campaigns_supporter", "nf_supporter_campaigns",
                ["supporter_id"], postgresql_concurrently=True,
            )  # fmt: skip
    else:
        op.create_index("ix_nf_deliveries_own_recipient", "nf_deliveries", ["recipient_id"], **own)
        op.create_index(
            "ix_nf_supporter_campaigns_supporter", "nf_supporter_campaigns", ["supporter_id"]
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_nf_supporter_campaigns_supporter", table_name="nf_supporter_campaigns")
    op.drop_index("ix_nf_deliveries_own_recipient", table_name="nf_deliveries")
