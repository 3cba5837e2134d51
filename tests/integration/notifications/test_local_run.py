"""The embedded local run: SQLite and the capture senders, no provider, no Kafka needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.notifications.bootstrap import build
from services.notifications.capture import list_captured
from services.notifications.fanout import Expander, QueuePoller
from services.notifications.handlers import handlers
from services.notifications.store import outbox_table
from shared.config import Settings
from shared.db import make_engine
from shared.migrate import upgrade
from tests.integration.notifications.harness import (
    alert,
    fast_config,
    organization,
    petition,
    seed_audience,
    signature,
)

pytestmark = pytest.mark.integration


def test_sqlite_with_capture_senders_thanks_and_expands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'notifications.db'}"
    upgrade("notifications", url)
    settings = Settings(service="notifications", database_url=url, hash_key="test-hash-key")
    assert (settings.email_backend, settings.sms_backend) == ("capture", "capture")
    deps = build(settings, fast_config(), make_engine(url))
    table = handlers(deps)
    events = [
        organization("org-l"),
        petition("pet-l", "camp-l", "org-l"),
        signature("lin@example.org", "pet-l", "camp-l", "org-l", phone="+14155550199", sms=True),
    ]
    with deps.engine.begin() as conn:
        for event in events:
            for handle in table.get(event.type, []):
                handle(event, conn)
    poller = QueuePoller(deps)
    while poller.run_once():
        pass
    captured = list_captured(deps.engine)
    assert {m["channel"] for m in captured} == {"email", "sms"}
    thanks = list_captured(deps.engine, channel="email")[0]
    assert thanks["to_address"] == "lin@example.org" and "Thank you" in thanks["subject"]
    lin = events[2].data["supporter_id"]
    assert len(list_captured(deps.engine, supporter_id=lin)) == 2
    assert list_captured(deps.engine, supporter_id="someone-else") == []

    seed_audience(deps.engine, "camp-l", "org-l", 1500)
    with deps.engine.begin() as conn:
        for handle in table[alert("a-l", "camp-l", "org-l", ["email"]).type]:
            handle(alert("a-l", "camp-l", "org-l", ["email"]), conn)
    assert Expander(deps).expand_next()
    with deps.engine.connect() as conn:
        from sqlalchemy import select

        kinds = list(conn.execute(select(outbox_table.c.type)).scalars())
    assert kinds.count("kinship.email_batch.queued.v1") == 2  # 1,501 people, 1,000 a batch
