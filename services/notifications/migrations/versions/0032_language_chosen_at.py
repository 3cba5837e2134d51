"""nf_supporters.language_chosen_at: when the person chose their language on the page.

A person known only through an unconfirmed double opt-in signature is treated as new by their
first signature that counts (what a stranger typed gives way), except for a language they
chose meanwhile on the preference page. Which it was could only be guessed from updated_at,
which ticking discreet mode or a confirmed change of name moves as well. Now it is recorded.

Revision ID: 0032_language_chosen_at
Revises: 0031_sms_welcomes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import Moment

revision: str = "0032_language_chosen_at"
down_revision: str | Sequence[str] | None = "0031_sms_welcomes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("nf_supporters", sa.Column("language_chosen_at", Moment(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("nf_supporters", "language_chosen_at")
