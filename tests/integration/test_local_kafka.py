"""`kinship kafka start|status|stop` runs a real Apache Kafka 4.x that kafka-python can use."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from tests.support.postgres import free_ports

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def kinship(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "kinship"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_cli_starts_a_kafka_4_broker_that_survives_restarts(tmp_path: Path) -> None:
    port, controller_port = free_ports(2)
    env = {
        **os.environ,
        "KINSHIP_VAR_DIR": str(tmp_path),
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_HEAP": "256m",
    }
    assert kinship(["kafka", "status"], env).returncode == 3
    started = kinship(["kafka", "start"], env)
    try:
        assert started.returncode == 0, started.stderr
        assert f"127.0.0.1:{port}" in started.stdout
        with KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}") as admin:
            assert admin._manager.broker_version >= (4, 0)
            admin.create_topics(
                {"kept.across.restarts": {"num_partitions": 1, "replication_factor": 1}}
            )
        assert kinship(["kafka", "start"], env).returncode == 0  # twice is harmless
        assert "running" in kinship(["kafka", "status"], env).stdout
        assert kinship(["kafka", "stop"], env).returncode == 0
        assert kinship(["kafka", "start"], env).returncode == 0
        with KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}") as admin:
            assert "kept.across.restarts" in admin.list_topics()
    finally:
        kinship(["kafka", "stop"], env)
    assert kinship(["kafka", "status"], env).returncode == 3


def test_a_taken_port_gets_a_clear_message(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = {**os.environ, "KINSHIP_VAR_DIR": str(tmp_path), "KAFKA_PORT": str(port)}
        result = kinship(["kafka", "start"], env)
    assert result.returncode == 1
    assert "taken" in result.stderr


def test_clients_sign_in_to_a_cluster_that_asks_for_sasl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Managed clusters (Confluent Cloud, MSK, Aiven) take only authenticated clients: every
    producer, consumer and admin client of a process signs in with KAFKA_SASL_*; without the
    right password none reaches the broker."""
    from shared.kafka import ensure_topics, make_consumer, make_producer
    from shared.local_kafka import LocalKafka, broker_answers

    port, controller_port = free_ports(2)
    broker = LocalKafka(
        tmp_path, port, controller_port, heap="256m", sasl_users={"kinship": "s3cret"}
    )
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "kinship")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    broker.start()
    try:
        ensure_topics(broker.bootstrap, ["kinship.secured"], partitions=1)
        producer = make_producer(broker.bootstrap, "test-sasl")
        producer.send("kinship.secured", key=b"k", value=b"signed in").get(timeout=30)
        producer.close()
        consumer = make_consumer(broker.bootstrap, "test-sasl", "test-sasl")
        consumer.subscribe(["kinship.secured"])
        got: list[bytes] = []
        for _ in range(30):
            for records in consumer.poll(timeout_ms=1000).values():
                got += [r.value for r in records]
            if got:
                break
        consumer.close()
        assert got == [b"signed in"]
        monkeypatch.setenv("KAFKA_SASL_PASSWORD", "wrong")
        assert broker_answers(broker.bootstrap) is False
        monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
        assert broker_answers(broker.bootstrap) is False
    finally:
        broker.stop()
