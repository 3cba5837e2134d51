"""POST /api/v1/erasures with an Idempotency-Key: a retry replays the first answer, erases once.

Only the API and PostgreSQL are needed (no Kafka, no provider fakes): person.erased is checked
in the outbox, where the erasure stages it in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select

from services.notifications import create_app
from services.notifications.bootstrap import build
from services.notifications.store import idempotency_keys, outbox_table, supporters
from shared.db import make_engine
from shared.migrate import upgrade
from tests.integration.notifications.harness import (
    fast_config,
    issue_key,
    seed_audience,
    settings_for,
)

pytestmark = pytest.mark.integration
UNUSED = "http://127.0.0.1:9"  # no Kafka or provider is reached by these requests
ERASED = "kinship.person.erased.v1"


@dataclass
class Api:
    engine: Engine
    client: FlaskClient

    def admin(self) -> dict[str, str]:
        return issue_key(self.engine, "admin", "org-admin")

    def count(self, table: object, *where: object) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
            return int(conn.execute(query).scalar_one())


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    upgrade("notifications", database_url)
    engine = make_engine(database_url)
    deps = build(settings_for(database_url, "127.0.0.1:9", UNUSED, UNUSED), fast_config(), engine)
    try:
        yield Api(engine, create_app(deps=deps).test_client())
    finally:
        engine.dispose()


def test_a_retried_erasure_replays_the_first_response_and_erases_once(api: Api) -> None:
    people = seed_audience(api.engine, "camp-i", "org-i", 2)
    admin = api.admin()
    headers = {**admin, "Idempotency-Key": "erase-1"}
    body = {"email": people[0]["email"]}

    first = api.client.post("/api/v1/erasures", json=body, headers=headers)
    assert first.status_code == 202 and first.get_json() == {"status": "erased", "count": 1}
    assert "Idempotent-Replayed" not in first.headers
    assert api.count(supporters) == 1
    assert api.count(outbox_table, outbox_table.c.type == ERASED) == 1

    again = api.client.post("/api/v1/erasures", json=body, headers=headers)
    assert again.status_code == 202 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    # Without the key a repeat would erase again and stage a second person.erased (an address
    # unknown here is still erased everywhere else); the replay did nothing.
    assert api.count(outbox_table, outbox_table.c.type == ERASED) == 1

    other = api.client.post("/api/v1/erasures", json={"email": people[1]["email"]}, headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["errors"]
    assert api.count(supporters) == 1  # the other person is untouched
    assert api.count(outbox_table, outbox_table.c.type == ERASED) == 1

    # The key is scoped to the API key that sent it: another admin key may use it afresh.
    fresh = api.client.post(
        "/api/v1/erasures",
        json={"email": people[1]["email"]},
        headers={**api.admin(), "Idempotency-Key": "erase-1"},
    )
    assert fresh.status_code == 202 and fresh.get_json()["count"] == 1
    assert "Idempotent-Replayed" not in fresh.headers
    assert api.count(outbox_table, outbox_table.c.type == ERASED) == 2


def test_a_failed_erasure_keeps_nothing_and_the_header_is_documented(api: Api) -> None:
    headers = {**api.admin(), "Idempotency-Key": "erase-2"}
    bad = api.client.post("/api/v1/erasures", json={}, headers=headers)
    assert bad.status_code == 422 and "email" in bad.get_json()["errors"]
    assert api.count(idempotency_keys) == 0  # a refused request can be fixed and retried
    fixed = api.client.post(
        "/api/v1/erasures", json={"email": "nobody@example.org"}, headers=headers
    )
    assert fixed.status_code == 202 and api.count(idempotency_keys) == 1
    too_long = {**headers, "Idempotency-Key": "k" * 256}
    refused = api.client.post("/api/v1/erasures", json={"email": "x@example.org"}, headers=too_long)
    assert refused.status_code == 422 and "Idempotency-Key" in refused.get_json()["errors"]
    spec = api.client.get("/api/v1/openapi.json").get_json()
    parameters = spec["paths"]["/api/v1/erasures"]["post"]["parameters"]
    assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters)
