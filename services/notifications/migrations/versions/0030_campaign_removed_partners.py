"""nf_campaigns.removed_partner_ids: the partners taken out of a campaign, as events said.

A signature's webhook messages went only to the partners the campaign's projection listed.
A partner that had just joined, whose box a signer ticked before notifications read the join
(another topic, no order between them: a consumer catching up after an outage), was dropped,
and never sent that signer. Only partners the lead took out are dropped now. NULL: a campaign
projected before this revision, whose earlier removals nobody recorded: it keeps the previous
rule (only the partners as known get its signatures) for good.

Revision ID: 0030_campaign_removed_partners
Revises: 0029_webhook_deletions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030_campaign_removed_partners"
down_revision: str | Sequence[str] | None = "0029_webhook_deletions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("nf_campaigns", sa.Column("removed_partner_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("nf_campaigns", "removed_partner_ids")
