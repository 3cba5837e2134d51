"""A service is ready only on a schema it can use: its own newest, or a newer one."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.db import make_engine
from shared.migrate import alembic_config, await_schema, schema_check, upgrade


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


def test_a_worker_waits_for_its_migrations_and_gives_up_saying_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Started before the deploy's migrations ran, a worker would have dead-lettered the
    events it could not store; it waits for the schema instead, and exits naming the fix."""
    url = f"sqlite:///{tmp_path / 'petitions.db'}"
    engine = make_engine(url)
    with pytest.raises(SystemExit) as stopped:
        await_schema("petitions", engine, timeout=0.3, every=0.1)
    assert stopped.value.code == 1
    [gave_up] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert gave_up.run == "kinship migrate petitions"  # type: ignore[attr-defined]
    migrated = threading.Timer(0.3, upgrade, ("petitions", url))
    migrated.start()
    started = time.monotonic()
    await_schema("petitions", engine, timeout=60, every=0.1)  # returns once migrated
    assert time.monotonic() - started < 30
    migrated.join()
    engine.dispose()
