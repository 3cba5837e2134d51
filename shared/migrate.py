"""Alembic migrations per service: `services/<name>/migrations`, applied by `kinship migrate`."""

from __future__ import annotations

from collections.abc import Iterable

from alembic import command
from alembic.config import Config

from shared.local_kafka import PROJECT_ROOT


def alembic_config(service: str, database_url: str) -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(PROJECT_ROOT / "services" / service / "migrations")
    )
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["service"] = service
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Bring a service's database to the given revision (idempotent)."""
    command.upgrade(alembic_config(service, database_url), revision)


def on_postgresql(statements: Iterable[str]) -> None:
    """Run SQL statements in the current migration when its database is PostgreSQL."""
    from alembic import op

    if op.get_bind().dialect.name == "postgresql":
        for statement in statements:
            op.execute(statement)
