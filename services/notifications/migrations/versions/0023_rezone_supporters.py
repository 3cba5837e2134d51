"""Reckon every supporter's time zone again, as the projection has since 0022.

Supporters projected before 0022 kept their country's or number's "main zone" (Moscow for
every Russian mobile, Sydney for an Australian one without a postcode, Los Angeles for Darwin's
800) until their next signature, and were texted at night where they live. Each row's zone is
worked out here from its stored phone, country and postal code by the projection's own
function; a row whose zone is unchanged is not written.

Revision ID: 0023_rezone_supporters
Revises: 0022_time_zone_span
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.notifications.domain import resolve_time_zone

revision: str = "0023_rezone_supporters"
down_revision: str | Sequence[str] | None = "0022_time_zone_span"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    """Upgrade data."""
    table = sa.table(
        "nf_supporters",
        sa.column("supporter_id"),
        sa.column("phone"),
        sa.column("country"),
        sa.column("postal_code"),
        sa.column("time_zone"),
    )
    change = (
        table.update()
        .where(table.c.supporter_id == sa.bindparam("sid"))
        .values(time_zone=sa.bindparam("zone"))
    )
    conn = op.get_bind()
    last = ""
    while True:  # a thousand rows a round trip, read by id: never the whole table in memory
        rows = conn.execute(
            sa.select(
                table.c.supporter_id,
                table.c.phone,
                table.c.country,
                table.c.postal_code,
                table.c.time_zone,
            )
            .where(table.c.supporter_id > last)
            .order_by(table.c.supporter_id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        moved = [
            {"sid": sid, "zone": zone}
            for sid, phone, country, postal_code, old in rows
            if (zone := resolve_time_zone(phone, country, postal_code)) != old
        ]
        if moved:
            conn.execute(change, moved)
        last = rows[-1][0]


def downgrade() -> None:
    """Downgrade: nothing to undo; the code of 0022 reads these zones as they are now."""
