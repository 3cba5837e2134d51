"""Benchmark signing a petition under gunicorn with PostgreSQL and Kafka (not a test).

    .venv/bin/python bench/signatures.py [--seconds 30] [--workers 3] [--worker-class gevent]
        [--gthreads 8] [--connections 32]

Starts a throwaway PostgreSQL and a local Kafka (or uses KINSHIP_BENCH_DATABASE_URL, an admin
URL of a server, and KINSHIP_BENCH_KAFKA), migrates a fresh database, seeds a coalition and an
open bilingual petition, runs the petitions worker (outbox relay) and the service under gunicorn,
then drives it with wrk (installed from Debian if missing) from a separate process:
  (a) a bare Flask JSON endpoint under the same gunicorn settings (the ceiling);
  (a') the same endpoint under 2 sync workers, the issue's reference setting (~4,700 req/s where
       the targets were set): how fast this machine is against that one;
  (b) POST /api/v1/petitions/{id}/signatures with a new signer each request, for --seconds.
Prints signatures/s, p50/p99 latency, the ratio to the bare endpoint, the CPU a request cost
the web workers, the relay and PostgreSQL (steadier than rates on a shared machine), then
checks that the signature rows, the counter and the signature.created events on Kafka all
equal the number of accepted signatures. The last line is a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from flask import Flask, jsonify  # noqa: E402
from kafka import KafkaConsumer, TopicPartition  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from services.petitions import store, usecases  # noqa: E402
from services.petitions.bootstrap import Deps, PetitionsConfig, build  # noqa: E402
from services.petitions.handlers import handlers  # noqa: E402
from shared.auth import Principal  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.events import Event  # noqa: E402
from shared.events.catalog import CAMPAIGNS, NOTIFICATIONS, PETITIONS, type_name  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.local_kafka import LocalKafka  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from tests.support.postgres import ThrowawayPostgres, create_database, free_port  # noqa: E402

HASH_KEY = "bench-hash-key"
# The issue: a bare Flask JSON endpoint under gunicorn, 2 sync workers, about 4,700 req/s.
REFERENCE_BARE_RATE = 4700
# The targets, set on that machine.
TARGET_RATE = 1200
VENV_BIN = Path(sys.executable).parent

# A new signer each request: thread number and a per-thread counter make the address unique.
WRK_SIGN = r"""
local counter = 0
local threads = {}
local sources = {"rb", "kp", "newsletter", ""}
local locales = {"en", "es"}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  path = args[1]
  run = args[2]
end
function request()
  counter = counter + 1
  local n = counter
  local body = string.format(
    '{"person":{"given_name":"Signer","family_name":"B%d","email":"b%s.%d.%d@example.org",' ..
    '"postal_code":"94110","country":"US"},"consents":{"email":true,"sms":false},' ..
    '"referrer_data":{"source":"%s"},"locale":"%s"}',
    n, run, tid, n, sources[(n % 4) + 1], locales[(n % 2) + 1])
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
"""
WRK_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def bare_app() -> Flask:
    """Return the ceiling: a Flask app whose one endpoint answers a small JSON document."""
    app = Flask("bare")

    @app.get("/json")
    def hello() -> Any:
        return jsonify({"status": "ok", "service": "bare"})

    return app


def ensure_wrk() -> str:
    """Return wrk's path, installing Debian's package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing Debian's wrk package", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
        subprocess.run(install, capture_output=True, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    return found


def wait_until(probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a child process for the block; stop it with SIGTERM (then SIGKILL) afterwards."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bare_run(
    wrk: str, options: argparse.Namespace, env: dict[str, str], work: Path
) -> dict[str, float]:
    """Drive the bare JSON endpoint under options' gunicorn settings for --bare-seconds."""
    port = free_port()
    log = work / f"bare-{options.workers}-{options.worker_class}.log"
    with gunicorn("signatures:bare_app()", port, options, env, log, ROOT / "bench") as server:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/json"), 30, "bare app up")
        get_script = 'function init(args) end\nfunction request() return wrk.format("GET") end\n'
        return run_wrk(
            wrk,
            f"http://127.0.0.1:{port}/json",
            options.bare_seconds,
            options.connections,
            options.threads,
            get_script,
            meter=cpu_meter(server.pid),
        )


def threads_note(options: argparse.Namespace) -> str:
    """Return " x N threads" for gthread workers: the others run one thread."""
    return f" x {options.gthreads} threads" if options.worker_class == "gthread" else ""


def gunicorn(
    app: str, port: int, options: argparse.Namespace, env: dict[str, str], log: Path, chdir: Path
) -> Any:
    args = [
        str(VENV_BIN / "gunicorn"),
        "--workers",
        str(options.workers),
        "--worker-class",
        options.worker_class,
        "--threads",
        # gunicorn quietly runs "sync" with more than one thread as gthread.
        str(options.gthreads if options.worker_class == "gthread" else 1),
        "--bind",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        # A worker accepts while it holds fewer connections than this. Unbounded, the
        # client's connections can all land on one worker (one core, one GIL): the bare
        # endpoint measured 2,400 req/s that way against 7,500 spread over the workers.
        "--worker-connections",
        str(options.worker_connections),
        "--chdir",
        str(chdir),
        app,
    ]
    return process(args, env, log)


def cpu_meter(server: int | None, itself: bool = False) -> Callable[[], float]:
    """Return a reading of the CPU seconds a process's children (and itself) have used.

    With itself, the children it has reaped count too: a PostgreSQL backend that exits would
    otherwise take its CPU out of the reading."""
    if server is None:
        return lambda: 0.0
    master = psutil.Process(server)

    def read() -> float:
        total = 0.0
        for child in master.children(recursive=True) + ([master] if itself else []):
            try:
                times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
            if itself and child is master:
                total += times.children_user + times.children_system
        return total

    return read


def run_wrk(
    wrk: str,
    url: str,
    seconds: float,
    connections: int,
    threads: int,
    script: str,
    *args: str,
    meter: Callable[[], float] | None = None,
) -> dict[str, float]:
    """Drive url with wrk from its own process; return its counts and latency percentiles."""
    cpu_before = meter() if meter else 0.0
    load_before = os.getloadavg()[0]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script + WRK_DONE)
    try:
        command = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{round(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            handle.name,
            url,
        ]
        if args:
            command += ["--", *args]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"wrk failed: {done.stderr or done.stdout}")
        output = done.stdout
    finally:
        os.unlink(handle.name)
    line = next(item for item in output.splitlines() if item.startswith("WRK_RESULT "))
    result: dict[str, float] = json.loads(line.removeprefix("WRK_RESULT "))
    result["seconds"] = result["duration_us"] / 1e6
    result["ok"] = result["requests"] - result["status_errors"]
    result["rate"] = result["ok"] / result["seconds"]
    # CPU per request of the server's workers: steadier than rates on a shared machine.
    result["cpu_ms"] = (meter() - cpu_before) / max(result["requests"], 1) * 1000 if meter else 0
    result["load"] = (load_before + os.getloadavg()[0]) / 2
    return result


def at() -> str:
    return datetime.now(UTC).isoformat()


def seed(deps: Deps) -> str:
    """Teach the service a coalition through its own handlers; return an open petition's id."""
    deliver = handlers(deps)

    def send(short: str, data: dict[str, Any]) -> None:
        event = Event(type=type_name(short), key="bench", data=data, source="/bench")
        with deps.engine.begin() as conn:
            for handler in deliver[event.type]:
                handler(event, conn)

    for org_id, slug, code in [
        ("org-lead", "lead", "lead"),
        ("org-rb", "rb", "rb"),
        ("org-kp", "kp", "kp"),
    ]:
        send(
            "organization.created",
            {
                "organization_id": org_id,
                "slug": slug,
                "name": slug,
                "source_code": code,
                "at": at(),
            },
        )
    send(
        "campaign.created",
        {
            "campaign_id": "camp-bench",
            "lead_organization_id": "org-lead",
            "partner_organization_ids": ["org-rb", "org-kp"],
            "status": "active",
            "at": at(),
        },
    )
    admin = Principal("bench", "admin", "org-platform")
    _, body = usecases.create_petition(
        deps,
        admin,
        {
            "campaign_id": "camp-bench",
            "default_locale": "en",
            "texts": {
                "en": {"title": "Protect our elders", "text": "We ask…"},
                "es": {"title": "Protejan a nuestros mayores", "text": "Pedimos…"},
            },
            "targets": [{"name": "Mayor"}],
        },
        None,
    )
    usecases.publish_petition(deps, admin, body["petition_id"])
    return str(body["petition_id"])


def kafka_signature_events(bootstrap: str, petition_id: str) -> int:
    """Count signature.created events about the petition on the topic, start to end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        client_id="bench-count",
        fetch_max_bytes=64 * 1024 * 1024,
    )
    try:
        partitions = [
            TopicPartition(PETITIONS, p) for p in consumer.partitions_for_topic(PETITIONS) or []
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        wanted = type_name("signature.created").encode()
        needle = f'"petition_id":"{petition_id}"'.encode()
        count = 0
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for records in consumer.poll(timeout_ms=1000, max_records=10_000).values():
                for record in records:
                    headers = dict(record.headers or ())
                    if headers.get("ce_type") == wanted and needle in record.value:
                        count += 1
        return count
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="signing load duration")
    parser.add_argument("--bare-seconds", type=float, default=15.0, help="bare endpoint duration")
    # Concurrent workers (greenlets or threads) let signatures share a commit
    # (services/petitions/groupcommit.py); of 2x8 gthread, 3x8 gthread and 2 sync workers, 3x8
    # did best here, and 3 gevent workers did better still (deploy/gunicorn.conf.py).
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gevent", choices=["sync", "gthread", "gevent"])
    parser.add_argument("--gthreads", type=int, default=8, help="threads per gthread worker")
    parser.add_argument(
        "--worker-connections", type=int, default=16, help="connections a worker holds"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    args = parser.parse_args()
    wrk = ensure_wrk()

    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="kinship-bench-sign-"))
        stack.callback(shutil.rmtree, work, True)
        admin_url = os.environ.get("KINSHIP_BENCH_DATABASE_URL")
        if not admin_url:
            pg = ThrowawayPostgres(durable=True)
            admin_url = pg.start()
            stack.callback(pg.destroy)
        bootstrap = os.environ.get("KINSHIP_BENCH_KAFKA")
        if not bootstrap:
            broker = LocalKafka(
                work / "kafka", port=free_port(), controller_port=free_port(), heap="512m"
            )
            broker.start()
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap
        database_url = create_database(admin_url, prefix="kinship_bench_petitions")
        upgrade("petitions", database_url)
        ensure_topics(bootstrap, [PETITIONS, CAMPAIGNS, NOTIFICATIONS])

        settings = Settings.from_env("petitions").with_(
            database_url=database_url, kafka_bootstrap_servers=bootstrap, hash_key=HASH_KEY
        )
        deps = build(settings, PetitionsConfig())
        stack.callback(deps.engine.dispose)
        petition_id = seed(deps)

        env = dict(os.environ)
        env.update(
            PETITIONS_DATABASE_URL=database_url,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            KINSHIP_HASH_KEY=HASH_KEY,
            # The benchmark is one client address: lift the per-IP limits, keep the limiter on.
            PETITIONS_SIGN_RATE_LIMITS="100000000 per second",
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        worker = stack.enter_context(
            process([sys.executable, "-m", "services.petitions.worker"], env, work / "worker.log")
        )
        postmaster = None
        if not os.environ.get("KINSHIP_BENCH_DATABASE_URL"):
            postmaster = next(
                (
                    p.pid
                    for p in psutil.process_iter(["cmdline"])
                    if str(pg.data) in " ".join(p.info["cmdline"] or [])
                ),
                None,
            )

        # (a) the ceiling: a bare Flask JSON endpoint, same gunicorn settings, same wrk.
        bare = bare_run(wrk, args, env, work)
        print(
            f"bare Flask JSON endpoint: {bare['rate']:.0f} req/s, "
            f"p50 {bare['p50_us'] / 1000:.1f} ms, p99 {bare['p99_us'] / 1000:.1f} ms "
            f"({args.workers} {args.worker_class} workers{threads_note(args)}, "
            f"{args.connections} connections); {bare['cpu_ms']:.2f} ms of worker CPU a request; "
            f"load average {bare['load']:.1f} on {os.cpu_count()} cores",
            flush=True,
        )
        # (a') the issue's reference: the same endpoint under 2 sync workers, which measured
        # about 4,700 req/s where the targets were set; this machine's speed against that one.
        reference_options = argparse.Namespace(
            **{**vars(args), "workers": 2, "worker_class": "sync"}
        )
        reference = bare_run(wrk, reference_options, env, work)
        speed = reference["rate"] / REFERENCE_BARE_RATE
        print(
            f"bare endpoint, 2 sync workers (the issue's reference setting): "
            f"{reference['rate']:.0f} req/s, {speed:.2f} of the {REFERENCE_BARE_RATE:,} the "
            f"issue measured",
            flush=True,
        )

        # (b) signatures.
        port = free_port()
        with gunicorn(
            "services.petitions:create_app()", port, args, env, work / "gunicorn.log", ROOT
        ) as server:
            wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 60, "petitions up")
            path = f"/api/v1/petitions/{petition_id}/signatures"
            base = f"http://127.0.0.1:{port}"
            warm = run_wrk(wrk, base, 3, args.connections, args.threads, WRK_SIGN, path, "w")
            relay_cpu, database_cpu = cpu_meter(worker.pid, True), cpu_meter(postmaster, True)
            relay_before, database_before = relay_cpu(), database_cpu()
            sign = run_wrk(
                wrk,
                base,
                args.seconds,
                args.connections,
                args.threads,
                WRK_SIGN,
                path,
                "m",
                meter=cpu_meter(server.pid),
            )
            per_request = 1000 / max(sign["requests"], 1)
            relay_ms = (relay_cpu() - relay_before) * per_request
            database_ms = (database_cpu() - database_before) * per_request
        ratio = sign["rate"] / bare["rate"]
        print(
            f"signatures: {sign['rate']:.0f}/s over {sign['seconds']:.1f} s "
            f"({sign['ok']:.0f} accepted, {sign['status_errors']:.0f} refused, "
            f"{sign['socket_errors']:.0f} socket errors), p50 {sign['p50_us'] / 1000:.1f} ms, "
            f"p90 {sign['p90_us'] / 1000:.1f} ms, p99 {sign['p99_us'] / 1000:.1f} ms; "
            f"{sign['cpu_ms']:.2f} ms of worker CPU a signature; load average {sign['load']:.1f}",
            flush=True,
        )
        print(
            f"other CPU a signature: worker (outbox relay) {relay_ms:.2f} ms, PostgreSQL "
            f"{database_ms:.2f} ms" + ("" if postmaster else " (not measured: external server)"),
            flush=True,
        )
        print(f"ratio to the bare endpoint: {ratio:.2f}", flush=True)
        print(
            f"against the reference bare endpoint: {sign['rate'] / reference['rate']:.2f} "
            f"(the issue's {TARGET_RATE:,}/s against its {REFERENCE_BARE_RATE:,} req/s: "
            f"{TARGET_RATE / REFERENCE_BARE_RATE:.2f}); at the reference machine's speed "
            f"~{sign['rate'] / speed:.0f} signatures/s",
            flush=True,
        )

        # Every accepted signature is a row, a count and exactly one event on Kafka.
        def outbox_size() -> int:
            with deps.engine.connect() as conn:
                return int(
                    conn.execute(select(func.count()).select_from(store.outbox)).scalar_one()
                )

        drain_started = time.monotonic()
        wait_until(lambda: outbox_size() == 0, 300, "outbox drained")
        drained_in = time.monotonic() - drain_started
        with deps.engine.connect() as conn:
            rows = int(
                conn.execute(
                    select(func.count())
                    .select_from(store.signatures)
                    .where(store.signatures.c.petition_id == petition_id)
                ).scalar_one()
            )
            counted = store.total(conn, petition_id)
        on_kafka = kafka_signature_events(bootstrap, petition_id)
        lost = rows - on_kafka
        print(
            f"accepted (signature rows) {rows} (wrk saw {warm['ok'] + sign['ok']:.0f} answers, "
            f"warm-up included), counter {counted}, signature.created on Kafka {on_kafka}: "
            f"lost {lost} (outbox drained {drained_in:.1f} s after the load)",
            flush=True,
        )
        ok = (
            lost == 0
            and counted == rows
            and sign["status_errors"] == 0
            and sign["socket_errors"] == 0
        )
        targets = sign["rate"] >= TARGET_RATE and sign["p99_us"] < 100_000 and ratio >= 0.25
        print(
            f"SUMMARY signatures {sign['rate']:.0f}/s p50 {sign['p50_us'] / 1000:.1f} ms "
            f"p99 {sign['p99_us'] / 1000:.1f} ms | bare {bare['rate']:.0f} req/s | ratio "
            f"{ratio:.2f} | reference bare {reference['rate']:.0f} req/s (machine speed "
            f"{speed:.2f}) | kafka {on_kafka}/{rows} lost {lost} | "
            f"{'consistent' if ok else 'INCONSISTENT'} | targets {'met' if targets else 'missed'}",
            flush=True,
        )
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
