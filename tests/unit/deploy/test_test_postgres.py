"""Which PostgreSQL the tests start: the newest 15 or later that Debian or Ubuntu installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import postgres


def servers(root: Path, *versions: str) -> None:
    for version in versions:
        initdb = root / version / "bin" / "initdb"
        initdb.parent.mkdir(parents=True)
        initdb.touch()


def test_the_newest_server_is_used_whatever_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers(tmp_path, "14", "15", "18")
    monkeypatch.setattr(postgres, "PG_LIB", tmp_path)
    assert postgres._pg_bin() == tmp_path / "18" / "bin"


def test_a_server_older_than_15_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers(tmp_path, "14")
    monkeypatch.setattr(postgres, "PG_LIB", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="PostgreSQL 15"):
        postgres._pg_bin()
