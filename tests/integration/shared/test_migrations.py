"""Each service's migrations build exactly the schema its code declares, on both databases,
and come down and go up again cleanly (what `kinship migrate` runs on every deploy)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from shared.migrate import alembic_config

pytestmark = pytest.mark.integration

SERVICES = ["campaigns", "petitions", "notifications"]


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return str(request.getfixturevalue("database_url"))


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_declared_schema_and_step_down_and_up(
    service: str, database: str
) -> None:
    config = alembic_config(service, database)
    command.upgrade(config, "head")
    # Raises when the tables, columns, indexes or constraints the code declares differ.
    command.check(config)
    revisions = list(ScriptDirectory.from_config(config).walk_revisions())
    if len(revisions) > 1:
        command.downgrade(config, "-1")  # the newest migration's way back
        command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)
