"""Fixtures: the fakes in threads and a running notifications service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.providers import running_sendgrid_fake, running_twilio_fake
from tests.integration.notifications.harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SENDGRID_KEY,
    Service,
    running_service,
)


@pytest.fixture
def fakes_db(tmp_path: Path) -> Path:
    return tmp_path / "fakes.sqlite"


@pytest.fixture
def provider_urls(fakes_db: Path) -> Iterator[tuple[str, str]]:
    with running_sendgrid_fake(fakes_db, api_key=SENDGRID_KEY) as sendgrid:
        with running_twilio_fake(fakes_db, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as tw:
            yield sendgrid, tw


@pytest.fixture
def service(
    database_url: str, kafka_bootstrap: str, provider_urls: tuple[str, str], fakes_db: Path
) -> Iterator[Service]:
    with running_service(database_url, kafka_bootstrap, *provider_urls, fakes_db) as svc:
        yield svc


@pytest.fixture
def wh(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    kafka_bootstrap: str,
    provider_urls: tuple[str, str],
    fakes_db: Path,
) -> Iterator[Service]:
    """The service, with partner endpoints allowed on loopback (where the test receivers are)."""
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32")
    with running_service(database_url, kafka_bootstrap, *provider_urls, fakes_db) as svc:
        yield svc
