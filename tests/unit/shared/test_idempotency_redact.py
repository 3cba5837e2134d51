"""shared.idempotency with redact: a field shown once (an API key's secret) is never kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shared.idempotency import idempotent
from tests.unit.shared.test_idempotency import Verifier, idempotency_app


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    engine, table, app = idempotency_app(tmp_path)
    issued: list[str] = []

    @app.post("/keys")
    @idempotent(lambda: (engine, Verifier(), table, "k"), redact={"secret": None, "note": "once"})
    def issue() -> Any:
        issued.append(f"kin_sec_{len(issued)}_very-secret")
        return {"key_id": f"k{len(issued)}", "secret": issued[-1]}, 201

    yield engine, table, app.test_client(), issued
    engine.dispose()


def post(client: Any, key: str) -> Any:
    return client.post(
        "/keys",
        json={"role": "partner"},
        headers={"Authorization": "Bearer k", "Idempotency-Key": key},
    )


def test_the_kept_record_and_a_replay_hold_no_secret(setup: Any) -> None:
    engine, table, client, issued = setup
    first = post(client, "x")
    assert first.status_code == 201 and first.get_json()["secret"] == issued[0]
    with engine.connect() as conn:
        kept = conn.execute(select(table.c.body)).scalar_one()
    assert issued[0] not in kept and "very-secret" not in kept
    again = post(client, "x")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == {"key_id": "k1", "secret": None, "note": "once"}
    assert len(issued) == 1  # still one key: the retry did not issue another


def test_an_idempotency_key_with_nul_is_refused_naming_the_header(setup: Any) -> None:
    _, _, client, issued = setup
    refused = post(client, "a\x00b")
    assert refused.status_code == 422 and "Idempotency-Key" in refused.get_json()["errors"]
    assert issued == []
