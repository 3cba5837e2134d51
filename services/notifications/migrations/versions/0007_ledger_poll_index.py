"""Index the queue poller's rows by a generated `poll_at`, not by status; leave room for HOT.

The poller's partial index named `status`, so every status change of a ledger row (queued ->
sending -> sent) was a full new row version with new entries in every index, and a fan-out's
rows in flight sat in the poller's index where each poll walked past them. `poll_at` is set
(by the database) only for rows the poller may take, so a dispatch batch's rows are never in
its index and, with free room in each page, their status updates are heap-only (HOT).

Revision ID: 0007_ledger_poll_index
Revises: 0006_webhook_claim_index
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_ledger_poll_index"
down_revision: str | Sequence[str] | None = "0006_webhook_claim_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLL_AT = (
    "CASE WHEN batch_key IS NULL AND status IN ('queued', 'deferred')"
    " THEN COALESCE(not_before, created_at)"
    " WHEN batch_key LIKE 'poll:%' AND status IN ('queued', 'sending') THEN claimed_at END"
)
POLLED = sa.text("poll_at IS NOT NULL")
WAITING = sa.text("status IN ('queued', 'deferred', 'sending')")


def upgrade() -> None:
    """Upgrade schema."""
    column = sa.Column("poll_at", sa.DateTime(timezone=True), sa.Computed(POLL_AT, persisted=True))
    # SQLite cannot add a stored generated column in place: batch mode rebuilds the table.
    with op.batch_alter_table("nf_deliveries") as batch:
        batch.add_column(column)
    op.drop_index("ix_nf_deliveries_due", table_name="nf_deliveries")
    op.create_index(
        "ix_nf_deliveries_poll",
        "nf_deliveries",
        ["poll_at"],
        postgresql_where=POLLED,
        sqlite_where=POLLED,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE nf_deliveries SET (fillfactor = 50)")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE nf_deliveries RESET (fillfactor)")
    op.drop_index("ix_nf_deliveries_poll", table_name="nf_deliveries")
    op.create_index(
        "ix_nf_deliveries_due",
        "nf_deliveries",
        ["status", "not_before"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )
    with op.batch_alter_table("nf_deliveries") as batch:
        batch.drop_column("poll_at")
