"""Concurrent signers over a real HTTP server: exact counts, and Kafka agrees one for one."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from services.petitions import store
from shared.relay import OutboxRelay
from tests.integration.petitions.conftest import Petitions

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def post_all(url: str, bodies: list[dict[str, Any]], workers: int) -> list[requests.Response]:
    """POST every body at once from a pool of threads, each with its own connection."""
    sessions: dict[int, requests.Session] = {}

    def post(indexed: tuple[int, dict[str, Any]]) -> requests.Response:
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        return session.post(url, json=indexed[1], timeout=60)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        responses = list(pool.map(post, enumerate(bodies)))
    for session in sessions.values():
        session.close()
    return responses


def test_a_thousand_concurrent_signatures_are_counted_exactly(
    svc: Petitions, server: str, relay: OutboxRelay
) -> None:
    petition_id = svc.open_petition()
    sources = ["rb", "kp", "newsletter", None]
    locales = ["en", "es"]
    bodies = []
    for i in range(1000):
        body: dict[str, Any] = {
            "person": {"given_name": f"S{i}", "email": f"signer{i}@example.org"},
            "locale": locales[i % 2],
        }
        if sources[i % 4]:
            body["referrer_data"] = {"source": sources[i % 4]}
        bodies.append(body)

    responses = post_all(f"{server}/api/v1/petitions/{petition_id}/signatures", bodies, 24)

    assert Counter(r.status_code for r in responses) == {202: 1000}
    group = svc.deps.group_commit
    assert group.items == 1000 and group.batches < 1000  # concurrent signers shared commits
    counts = svc.counts(petition_id)
    assert counts["total"] == 1000
    assert counts["by_locale"] == {"en": 500, "es": 500}
    assert counts["by_partner"] == {svc.p1: 250, svc.p2: 250, "direct": 500}
    assert counts["by_source"] == {"rb": 250, "kp": 250, "newsletter": 250, "(none)": 250}
    assert len(svc.rows(store.signatures, petition_id=petition_id)) == 1000
    public = svc.client.get(f"/api/v1/petitions/{petition_id}").get_json()
    assert public["total"] == 1000

    events = svc.kafka_events("signature.created", petition_id)
    assert len(events) == 1000
    assert not any(e["duplicate"] for e in events)
    signature_ids = {r.signature_id for r in svc.rows(store.signatures, petition_id=petition_id)}
    assert {e["signature_id"] for e in events} == signature_ids


def test_one_person_signing_twenty_times_at_once_counts_once(
    svc: Petitions, server: str, relay: OutboxRelay
) -> None:
    petition_id = svc.open_petition()
    spellings = [
        "kai.tan@gmail.com",
        "KaiTan@gmail.com",
        "kai.tan+x@googlemail.com",
        " kai.tan@gmail.com",
    ]
    bodies = [{"person": {"email": spellings[i % 4]}} for i in range(20)]

    responses = post_all(f"{server}/api/v1/petitions/{petition_id}/signatures", bodies, 20)

    assert {r.status_code for r in responses} == {202}
    assert len({r.content for r in responses}) == 1  # every answer byte-identical
    assert svc.counts(petition_id)["total"] == 1
    assert len(svc.rows(store.signatures, petition_id=petition_id)) == 1
    events = svc.kafka_events("signature.created", petition_id)
    assert len(events) == 20
    assert Counter(e["duplicate"] for e in events) == {False: 1, True: 19}
    assert len({e["signature_id"] for e in events}) == 1
