"""Alembic migrations per service: `services/<name>/migrations`, applied by `kinship migrate`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared.local_kafka import PROJECT_ROOT

log = logging.getLogger(__name__)
SCHEMA_WAIT_SECONDS = 120.0


def migrations_of(service: str) -> Path:
    return PROJECT_ROOT / "services" / service / "migrations"


def alembic_config(service: str, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_of(service)))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["service"] = service
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Bring a service's database to the given revision (idempotent)."""
    command.upgrade(alembic_config(service, database_url), revision)


def schema_check(service: str, engine: Engine) -> Callable[[], bool]:
    """Return a readiness probe: true once the database's schema is this code's newest or a
    later one (a newer image's, mid-rollout).

    A pod of a new version started before its migrations ran answered /readyz with 200 on a
    schema it cannot use, and took traffic; an older pod must stay ready once the new schema
    is in (migrations add before they remove). Once true, it stays true for the process."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(service, ""))
    head = script.get_current_head()
    older = {revision.revision for revision in script.walk_revisions()} - {head}
    reached = False

    def check() -> bool:
        nonlocal reached
        if not reached:
            with engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
            reached = current is not None and current not in older
        return reached

    return check


def on_postgresql(statements: Iterable[str]) -> None:
    """Run SQL statements in the current migration when its database is PostgreSQL."""
    from alembic import op

    if op.get_bind().dialect.name == "postgresql":
        for statement in statements:
            op.execute(statement)


def create_parked_events() -> None:
    """Create the consumer's table of parked events (shared.outbox.parked_table), as first made.

    Spelled out rather than taken from parked_table, so a later change of that table comes
    with a migration of its own instead of changing what this one did."""
    import sqlalchemy as sa
    from alembic import op

    from shared.db import Moment

    op.create_table(
        "kinship_parked_events",
        sa.Column("consumer_group", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("origin_offset", sa.BigInteger(), nullable=False),
        sa.Column("not_before_ms", sa.BigInteger(), nullable=True),
        sa.Column("parked_at", Moment(), nullable=False),
    )
    op.create_index(
        "ix_kinship_parked_events_key",
        "kinship_parked_events",
        ["consumer_group", "topic", "event_key"],
    )


def drop_parked_events() -> None:
    """Undo create_parked_events."""
    from alembic import op

    op.drop_index("ix_kinship_parked_events_key", table_name="kinship_parked_events")
    op.drop_table("kinship_parked_events")


def await_schema(
    service: str, engine: Engine, timeout: float = SCHEMA_WAIT_SECONDS, every: float = 2.0
) -> None:
    """Wait until the database holds this code's schema (schema_check), then return; exit
    after timeout.

    A worker started before its migrations ran (a deploy applies them alongside) met missing
    tables or columns as handler errors: the events it read were retried a few times, then
    dead-lettered, and the relay paused without saying why. It now waits, and tells."""
    check = schema_check(service, engine)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
            problem = "the database is not at this version's schema yet"
        except SQLAlchemyError as exc:  # not reachable yet, or no alembic table at all
            problem = f"the database cannot be read yet ({type(exc).__name__})"
        if time.monotonic() >= deadline:
            log.error(
                "not starting: database schema not reached",
                extra={
                    "problem": problem,
                    "waited_s": timeout,
                    "run": f"kinship migrate {service}",
                },
            )
            raise SystemExit(1)
        log.info("waiting for the database schema", extra={"problem": problem})
        time.sleep(every)
