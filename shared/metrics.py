"""Prometheus metrics shared by services and workers. Labels never carry personal data."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

EVENTS_CONSUMED = Counter(
    "kinship_events_consumed_total",
    "Events handled by consumer groups, by outcome",
    ["group", "type", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "kinship_outbox_published_total", "Outbox events published to Kafka", ["table"]
)
CONSUMER_PAUSED = Gauge(
    "kinship_consumer_paused", "1 while a consumer waits for its database", ["group"]
)
AMBIGUOUS_SENDS = Counter(
    "kinship_notifications_ambiguous_total",
    "Messages sent again after a request that may have reached the provider (in flight at a"
    " crash, or timed out), by channel and kind: each is a possible duplicate",
    ["channel", "kind"],
)
HTTP_REQUESTS = Histogram(
    "kinship_http_request_seconds",
    "HTTP request latency by endpoint (route template, never the raw path)",
    ["service", "endpoint", "method", "status"],
)


def render() -> tuple[bytes, str]:
    """Render the metrics of this process, or of all gunicorn workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def serve(port: int, address: str = "0.0.0.0") -> int:  # noqa: S104 - a pod's own port
    """Serve this process's metrics at http://address:port/metrics in a thread (a worker has
    no web server of its own); return the port (0 picks a free one)."""
    server, _ = start_http_server(port, address)
    return int(server.server_port)
