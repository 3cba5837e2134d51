"""wh_endpoints.previous_secrets: every secret rotated out within the overlap keeps signing.

One column held the secret rotated out last: rotating twice within the overlap (24 h) dropped
the first old secret at once, and a partner that had not yet deployed the first new secret
failed to verify every delivery. The old secrets are now a list, each with its own end. The
old column stays (the previous version reads it mid-rollout) and is kept in step with the
newest old secret.

Revision ID: 0027_webhook_old_secrets
Revises: 0026_webhook_retention
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment
from shared.events.envelope import format_time

revision: str = "0027_webhook_old_secrets"
down_revision: str | Sequence[str] | None = "0026_webhook_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENDPOINTS = sa.table(
    "wh_endpoints",
    sa.column("endpoint_id", sa.String),
    sa.column("previous_secret", sa.String),
    sa.column("previous_secret_expires_at", Moment()),
    sa.column("previous_secrets", sa.JSON),
)


def upgrade() -> None:
    """Upgrade schema, moving each endpoint's old secret into the list."""
    op.add_column("wh_endpoints", sa.Column("previous_secrets", sa.JSON(), nullable=True))
    conn = op.get_bind()
    old = _ENDPOINTS.c
    rows = conn.execute(
        sa.select(old.endpoint_id, old.previous_secret, old.previous_secret_expires_at).where(
            old.previous_secret.is_not(None), old.previous_secret_expires_at.is_not(None)
        )
    ).all()
    for row in rows:
        expires = format_time(row.previous_secret_expires_at)
        moved = [{"secret": row.previous_secret, "expires_at": expires}]
        conn.execute(
            sa.update(_ENDPOINTS)
            .where(old.endpoint_id == row.endpoint_id)
            .values(previous_secrets=moved)
        )
    # previous_secret stays: the previous version's pods read it until the rollout ends
    # (migrations add before they remove); a later release drops it.


def downgrade() -> None:
    """Downgrade schema, keeping the newest old secret."""
    conn = op.get_bind()
    old = _ENDPOINTS.c
    for row in conn.execute(
        sa.select(old.endpoint_id, old.previous_secrets).where(old.previous_secrets.is_not(None))
    ).all():
        if row.previous_secrets:
            conn.execute(
                sa.update(_ENDPOINTS)
                .where(old.endpoint_id == row.endpoint_id)
                .values(previous_secret=row.previous_secrets[-1]["secret"])
            )
    with op.batch_alter_table("wh_endpoints") as batch:
        batch.drop_column("previous_secrets")
