"""deploy/docker-compose.yml: Kafka in KRaft mode, PostgreSQL, three APIs, three workers."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from tests.unit.deploy.conftest import DEPLOY, ROOT, SERVICES

PORTS = {"campaigns": 8001, "petitions": 8002, "notifications": 8003}


def test_kafka_is_the_official_image_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_kafka_keeps_events_at_most_eight_days_after_an_erasure(compose: dict[str, Any]) -> None:
    """A segment goes whole once its newest record is past retention: retention plus the
    segment's age bounds how long a signer's details outlive an erasure (docs/architecture.md)."""
    env = compose["services"]["kafka"]["environment"]
    assert int(env["KAFKA_LOG_RETENTION_HOURS"]) + int(env["KAFKA_LOG_ROLL_HOURS"]) <= 8 * 24


def test_postgres_gets_one_database_per_service(compose: dict[str, Any]) -> None:
    pg = compose["services"]["postgres"]
    assert pg["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    init = next(v for v in pg["volumes"] if "init.sql" in v).split(":")[0]
    sql = (DEPLOY / init).read_text()
    for name in SERVICES:
        assert f"CREATE DATABASE {name};" in sql


@pytest.mark.parametrize("name", SERVICES)
def test_each_api_runs_under_gunicorn_on_its_port(compose: dict[str, Any], name: str) -> None:
    svc = compose["services"][name]
    assert svc["image"] == "kinship:0.1.0" and svc["build"]["context"] == ".."
    assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).exists()
    assert svc["command"] == [
        "gunicorn", "-c", "deploy/gunicorn.conf.py", f"services.{name}:create_app()"
    ]  # fmt: skip
    assert svc["ports"] == [f"{PORTS[name]}:8000"]
    probe = " ".join(svc["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in probe
    assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # The app factory the command names exists.
    assert callable(importlib.import_module(f"services.{name}").create_app)


@pytest.mark.parametrize("name", SERVICES)
def test_each_worker_runs_its_module(compose: dict[str, Any], name: str) -> None:
    worker = compose["services"][f"{name}-worker"]
    assert worker["command"][:3] == ["python", "-m", f"services.{name}.worker"]
    assert (ROOT / "services" / name / "worker.py").exists()
    assert worker["stop_grace_period"] == "60s"
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_process_gets_its_database_and_kafka(compose: dict[str, Any]) -> None:
    for name in [*SERVICES, *(f"{s}-worker" for s in SERVICES), "migrate"]:
        env = compose["services"][name]["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["KINSHIP_ENV"] == "production"
        assert "KINSHIP_HASH_KEY" in env
        for service in SERVICES:
            url = env[f"{service.upper()}_DATABASE_URL"]
            assert url.startswith("postgresql://") and url.endswith(f"@postgres:5432/{service}")


def test_settings_named_are_settings_the_code_reads(
    compose: dict[str, Any], known_env: set[str]
) -> None:
    env = compose["services"]["campaigns"]["environment"]
    unknown = sorted(set(env) - known_env)
    assert not unknown, f"compose sets variables no code reads: {unknown}"


def test_migrations_run_once_before_the_services(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["kinship", "migrate"]
    assert migrate["restart"] == "no"
    assert set(migrate["depends_on"]) == {"postgres"}
