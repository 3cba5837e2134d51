"""Alembic environment of the campaigns database."""

from services.campaigns.store import metadata
from shared.migrations_env import run

run(metadata)
