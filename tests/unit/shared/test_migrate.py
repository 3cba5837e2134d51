"""A service is ready only on a schema it can use: its own newest, or a newer one."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from shared.db import make_engine
from shared.migrate import alembic_config, schema_check, upgrade


def test_readiness_waits_for_the_migrations_and_holds_through_a_newer_schema(
    tmp_path: Path,
) -> None:
    from alembic.script import ScriptDirectory

    url = f"sqlite:///{tmp_path / 'campaigns.db'}"
    engine = make_engine(url)
    script = ScriptDirectory.from_config(alembic_config("campaigns", url))
    head = script.get_revision(script.get_current_head())
    assert head is not None and isinstance(head.down_revision, str)
    assert schema_check("campaigns", engine)() is False  # no schema at all
    upgrade("campaigns", url, head.down_revision)
    assert schema_check("campaigns", engine)() is False  # one migration short
    upgrade("campaigns", url)
    assert schema_check("campaigns", engine)() is True
    # A newer image migrated mid-rollout: this older code still works on it, and stays ready.
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_a_newer_image'"))
    assert schema_check("campaigns", engine)() is True
    engine.dispose()
