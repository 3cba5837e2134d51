"""`kinship dlq` finds the Kafka `dev up` runs, and says so at once when none answers."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from shared.cli.dlq import _bootstrap
from shared.cli.main import cli


@contextmanager
def broker_stand_in() -> Iterator[str]:
    """A socket accepting connections where a broker would: its host:port."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield f"127.0.0.1:{listening.getsockname()[1]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_nothing_answering_is_named_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINSHIP_VAR_DIR", str(tmp_path))
    nowhere = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", nowhere)
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["dlq", "list"])
    assert result.exit_code == 1 and time.monotonic() - started < 5
    assert f"no Kafka answers at {nowhere}" in result.output
    assert "Traceback" not in result.output


def test_the_stacks_recorded_broker_is_used_without_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dev up` moved to another port (KAFKA_PORT) records where its broker listens."""
    with broker_stand_in() as bootstrap:
        (tmp_path / "dev").mkdir()
        (tmp_path / "dev" / "stack.json").write_text(json.dumps({"kafka_bootstrap": bootstrap}))
        monkeypatch.setenv("KINSHIP_VAR_DIR", str(tmp_path))
        monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
        assert _bootstrap() == bootstrap


def test_a_broker_down_among_several_does_not_stop_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first broker listed is down for maintenance: the others still serve dead letters."""
    with broker_stand_in() as second:
        servers = f"127.0.0.1:{free_port()},{second}"
        monkeypatch.setenv("KINSHIP_VAR_DIR", str(tmp_path))
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", servers)
        assert _bootstrap() == servers
