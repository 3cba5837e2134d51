"""deploy/kubernetes: APIs and workers with probes and resources, a Strimzi Kafka and topics."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shared.events.catalog import CAMPAIGNS, DISPATCH_TOPICS, NOTIFICATIONS, PETITIONS
from tests.unit.deploy.conftest import DEPLOY, SERVICES

K8S = DEPLOY / "kubernetes"


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def test_kustomization_lists_files_that_exist() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).exists(), resource
    assert kustomization["namespace"] == "kinship"
    assert kustomization["images"][0]["name"] == "kinship"


@pytest.mark.parametrize("name", SERVICES)
def test_api_deployment_probes_ports_and_resources(
    manifests: list[dict[str, Any]], name: str
) -> None:
    deployment = of_kind(manifests, "Deployment")[f"kinship-{name}"]
    c = container(deployment)
    assert c["image"] == "kinship"
    assert c["command"] == [
        "gunicorn", "-c", "deploy/gunicorn.conf.py", f"services.{name}:create_app()"
    ]  # fmt: skip
    assert c["ports"] == [{"name": "http", "containerPort": 8000}]
    assert {"name": "PORT", "value": "8000"} in c["env"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    requests = c["resources"]["requests"]
    assert requests["cpu"] and requests["memory"]
    assert c["resources"]["limits"]["memory"]
    refs = {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in c["envFrom"]}
    assert refs == {"kinship-config", "kinship-secrets"}
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    # Longer than gunicorn's graceful timeout, so in-flight requests finish.
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > 30
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("name", SERVICES)
def test_each_api_has_a_service_that_selects_it(manifests: list[dict[str, Any]], name: str) -> None:
    service = of_kind(manifests, "Service")[f"kinship-{name}"]
    deployment = of_kind(manifests, "Deployment")[f"kinship-{name}"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("name", SERVICES)
def test_worker_deployment(manifests: list[dict[str, Any]], name: str) -> None:
    deployment = of_kind(manifests, "Deployment")[f"kinship-{name}-worker"]
    c = container(deployment)
    assert c["command"][:3] == ["python", "-m", f"services.{name}.worker"]
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
    # Its metrics (events consumed, possible duplicates) are served and scraped.
    port = {e["name"]: e["value"] for e in c["env"]}["WORKER_METRICS_PORT"]
    assert {"name": "metrics", "containerPort": int(port)} in c["ports"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == port


def test_a_metrics_directory_is_set_only_where_it_is_mounted(
    manifests: list[dict[str, Any]],
) -> None:
    """prometheus_client writes a file in PROMETHEUS_MULTIPROC_DIR when a metric is made: on a
    read-only root, a pod that sets it without mounting it fails at its first metric."""
    config = of_kind(manifests, "ConfigMap")["kinship-config"]["data"]
    for name, deployment in of_kind(manifests, "Deployment").items():
        c = container(deployment)
        env = dict(config) | {e["name"]: e["value"] for e in c.get("env", [])}
        directory = env.get("PROMETHEUS_MULTIPROC_DIR")
        mounted = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert not directory or directory in mounted, name
        assert directory or name.endswith("-worker"), f"{name} serves /metrics from gunicorn"


def test_migrations_run_as_a_job(manifests: list[dict[str, Any]]) -> None:
    job = of_kind(manifests, "Job")["kinship-migrate"]
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["kinship", "migrate"]


def test_config_names_settings_the_code_reads(
    manifests: list[dict[str, Any]], known_env: set[str]
) -> None:
    config = of_kind(manifests, "ConfigMap")["kinship-config"]["data"]
    secret = of_kind(manifests, "Secret")["kinship-secrets"]["stringData"]
    unknown = sorted((set(config) | set(secret)) - known_env)
    assert not unknown, f"manifests set variables no code reads: {unknown}"
    for service in SERVICES:
        assert f"{service.upper()}_DATABASE_URL" in secret
    assert "KINSHIP_HASH_KEY" in secret and config["KINSHIP_ENV"] == "production"
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == "kinship-kafka-bootstrap.kafka:9093"


def test_kinship_signs_in_to_kafka_over_tls(manifests: list[dict[str, Any]]) -> None:
    """Signers' details are in the events: the example cluster takes only TLS and signed-in
    clients, and every Kinship process connects so, with the cluster's CA mounted."""
    config = of_kind(manifests, "ConfigMap")["kinship-config"]["data"]
    secret = of_kind(manifests, "Secret")["kinship-secrets"]["stringData"]
    kafka = of_kind(manifests, "Kafka")["kinship"]["spec"]["kafka"]
    port = int(config["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1])
    for listener in kafka["listeners"]:  # no listener lets anyone in unseen
        assert listener["tls"] is True and listener["authentication"]["type"] == "scram-sha-512"
    assert port in {listener["port"] for listener in kafka["listeners"]}
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    user = of_kind(manifests, "KafkaUser")[config["KAFKA_SASL_USERNAME"]]
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    assert "KAFKA_SASL_PASSWORD" in secret
    folder = config["KAFKA_SSL_CAFILE"].rsplit("/", 1)[0]
    for name, deployment in of_kind(manifests, "Deployment").items():
        mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
        assert mounts.get("kafka-ca") == folder, name
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["kafka-ca"]["secret"]["secretName"] == "kinship-kafka-ca", name


def test_strimzi_kafka_in_kraft_mode_with_kinship_topics(manifests: list[dict[str, Any]]) -> None:
    kafka = of_kind(manifests, "Kafka")["kinship"]
    assert kafka["apiVersion"].startswith("kafka.strimzi.io/")
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    pool = of_kind(manifests, "KafkaNodePool")["dual-role"]
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "kinship"
    topics = of_kind(manifests, "KafkaTopic")
    assert set(topics) == {CAMPAIGNS, PETITIONS, NOTIFICATIONS, *DISPATCH_TOPICS.values()}
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "kinship"
        assert topic["spec"]["replicas"] == 3


DAY_MS = 24 * 3600 * 1000


def test_events_outlive_an_erasure_in_kafka_by_at_most_eight_days(
    manifests: list[dict[str, Any]], tmp_path: Any
) -> None:
    """signature.created carries the signer's details; Kafka deletes a segment whole once its
    newest record is past retention, so retention plus a segment's age bounds how long they
    stay after an erasure: on every topic, and the defaults the retry and dead-letter topics
    (created by the consumers) take, in the cluster and in the local broker."""
    from shared.local_kafka import LocalKafka

    for topic in of_kind(manifests, "KafkaTopic").values():
        config = topic["spec"]["config"]
        assert config["retention.ms"] + config["segment.ms"] <= 8 * DAY_MS
    broker = of_kind(manifests, "Kafka")["kinship"]["spec"]["kafka"]["config"]
    assert broker["log.retention.hours"] + broker["log.roll.hours"] <= 8 * 24
    local = LocalKafka(tmp_path)
    local._write_config()
    lines = dict(
        line.split("=", 1) for line in local._config_file.read_text().splitlines() if "=" in line
    )
    assert int(lines["log.retention.hours"]) + int(lines["log.roll.hours"]) <= 8 * 24


# Paths every service serves alike: reached on the service itself, never through the Ingress.
PER_SERVICE = ("/api/v1/docs", "/api/v1/openapi.json", "/healthz", "/readyz", "/metrics", "/static")
# Routed to campaigns by its Prefix; campaigns' alert carries the same progress.
NOT_ROUTED = {("notifications", "/api/v1/alerts/<alert_id>/progress")}


def routed_to(paths: list[dict[str, Any]], url: str) -> str | None:
    """The Service an Ingress sends url to: the longest Prefix path matching whole segments."""
    best: tuple[int, str] | None = None
    for item in paths:
        prefix = item["path"].rstrip("/")
        if item["pathType"] == "Prefix" and (url == prefix or url.startswith(prefix + "/")):
            if best is None or len(prefix) > best[0]:
                best = (len(prefix), item["backend"]["service"]["name"])
    return best[1] if best else None


def test_the_ingress_sends_every_public_route_to_its_service(
    manifests: list[dict[str, Any]], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Supporters' links, provider callbacks and the APIs on one host: a route sent to the
    wrong service is a 404 in every email (or a callback lost)."""
    import importlib

    monkeypatch.setenv("KINSHIP_VAR_DIR", str(tmp_path))
    [ingress] = of_kind(manifests, "Ingress").values()
    [rule] = ingress["spec"]["rules"]
    paths = rule["http"]["paths"]
    services = of_kind(manifests, "Service")
    for item in paths:
        backend = item["backend"]["service"]
        assert backend["name"] in services and backend["port"] == {"name": "http"}
    config = of_kind(manifests, "ConfigMap")["kinship-config"]["data"]
    assert f"https://{rule['host']}" == config["KINSHIP_PUBLIC_BASE_URL"]
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    for name in SERVICES:
        app = importlib.import_module(f"services.{name}").create_app()
        for url in {r.rule for r in app.url_map.iter_rules()}:
            if url.startswith(PER_SERVICE):
                assert routed_to(paths, url) is None, url  # never public
                continue
            expected = None if (name, url) in NOT_ROUTED else f"kinship-{name}"
            if expected is not None:
                assert routed_to(paths, url) == expected, (name, url)
