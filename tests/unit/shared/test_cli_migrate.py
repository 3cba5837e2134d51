"""`kinship migrate` against a database it cannot reach says so in one line, not a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from shared.cli.main import cli
from tests.support.postgres import free_port


def test_an_unreachable_database_is_one_clear_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    port = free_port()
    monkeypatch.setenv("KINSHIP_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAMPAIGNS_DATABASE_URL", f"postgresql://kinship@127.0.0.1:{port}/x")
    result = CliRunner().invoke(cli, ["migrate", "campaigns"])
    assert result.exit_code == 1
    assert "kinship migrate: campaigns: cannot reach the database" in result.output
    assert f"port {port}" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("KINSHIP_ENV", "prod")
    refused = CliRunner().invoke(cli, ["migrate", "campaigns"])
    assert refused.exit_code == 1 and "KINSHIP_ENV" in refused.output
