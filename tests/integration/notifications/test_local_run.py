"""The embedded local run: SQLite and the capture senders, no provider, no Kafka needed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services.notifications.bootstrap import Deps, build
from services.notifications.capture import list_captured
from services.notifications.fanout import Expander, QueuePoller
from services.notifications.handlers import handlers
from services.notifications.store import outbox_table
from services.notifications.worker import parts
from shared.config import Settings
from shared.consumer import ConsumerRunner
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
        kinds = list(conn.execute(select(outbox_table.c.type)).scalars())
    assert kinds.count("kinship.email_batch.queued.v1") == 2  # 1,501 people, 1,000 a batch


def test_a_published_alert_starts_without_waiting_for_the_expanders_next_look(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'notifications.db'}"
    upgrade("notifications", url)
    settings = Settings(service="notifications", database_url=url, hash_key="test-hash-key")
    deps = build(settings, fast_config(), make_engine(url))
    core = parts(deps, "core")
    expander = next(p for p in core if isinstance(p, Expander))
    runner = next(p for p in core if isinstance(p, ConsumerRunner))
    expander.idle = 60.0  # left to itself, it would look again only a minute from now
    looks: list[bool] = []  # what each of the expander's looks found
    look = expander.expand_next

    def counted_look() -> bool:
        found = look()
        looks.append(found)
        return found

    expander.expand_next = counted_look  # type: ignore[method-assign]
    thread = threading.Thread(target=expander.run, daemon=True)
    thread.start()
    try:
        seed_audience(deps.engine, "camp-w", "org-w", 10)
        published = alert("a-w", "camp-w", "org-w", ["email"])
        deadline = time.monotonic() + 10
        while not looks and time.monotonic() < deadline:
            time.sleep(0.01)
        assert looks == [False]  # it has looked, found nothing, and idles for a minute
        assert batch_events(deps) == 0
        with deps.engine.begin() as conn:
            for handle in handlers(deps)[published.type]:
                handle(published, conn)
        runner.on_commit({published.type})  # what the consumer does after that commit
        deadline = time.monotonic() + 10
        while batch_events(deps) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert batch_events(deps) == 1
    finally:
        expander.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


def batch_events(deps: Deps) -> int:
    with deps.engine.connect() as conn:
        query = select(func.count()).where(outbox_table.c.type == "kinship.email_batch.queued.v1")
        return int(conn.execute(query).scalar_one())
