"""`kinship dev up` refuses clearly, and starts nothing, when a port is taken or Java is missing."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.conftest import clean_env, kinship


def test_a_taken_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(env["KINSHIP_PETITIONS_PORT"])))
        squatter.listen()
        result = kinship(env, "dev", "up", timeout=60)
    assert result.returncode == 1
    port = env["KINSHIP_PETITIONS_PORT"]
    assert f"port {port} (petitions) is taken" in result.stderr
    assert "KINSHIP_PETITIONS_PORT" in result.stderr
    assert not list(tmp_path.glob("dev/*.pid")) and not (tmp_path / "kafka").exists()


def test_missing_java_is_explained(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    env["PATH"] = str(tmp_path / "empty-bin")
    env["JAVA_HOME"] = str(tmp_path / "no-java")
    result = kinship(env, "dev", "up", timeout=60)
    assert result.returncode == 1
    assert "Java 17 or newer is needed" in result.stderr
    assert not list(tmp_path.glob("dev/*.pid"))
