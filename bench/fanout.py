"""Benchmark alert fan-out end to end against the plain SendGrid SDK (not a test).

    .venv/bin/python bench/fanout.py [--n 1000000] [--sms 10000] [--sms-rate 500]
        [--pg-setting NAME=VALUE ...]

Seeds N email supporters with COPY, starts the notifications workers (a core process and
--email-procs email sender processes) against a fake SendGrid under gunicorn, publishes one email
alert and times until the fake holds every recipient. Then posts the same number of pre-built
1,000-personalization requests with the plain SDK to the same fake. Then sends an SMS alert to
--sms supporters at a configured --sms-rate per second through a fake Twilio (after vacuuming
the email alert's ledger rows, see vacuum_ledger) and measures the rate achieved. Prints
recipients/s, requests made, peak RSS per process, each part's CPU, PostgreSQL's WAL and
checkpoints over the email phase, and the ratios.
Uses KINSHIP_BENCH_DATABASE_URL / KINSHIP_BENCH_KAFKA if set, else starts its own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import psycopg  # noqa: E402
from kafka import KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient  # noqa: E402
from kafka.errors import KafkaError  # noqa: E402
from sendgrid import SendGridAPIClient  # noqa: E402

from services.notifications.reports import alert_report  # noqa: E402
from shared.db import make_engine  # noqa: E402
from shared.events import Event  # noqa: E402
from shared.events.catalog import CAMPAIGNS, DISPATCH_TOPICS, NOTIFICATIONS, PETITIONS  # noqa: E402
from shared.events.envelope import format_time, utcnow  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.local_kafka import LocalKafka  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from tests.fakes.providers import start_fake_process  # noqa: E402
from tests.integration.notifications.harness import copy_audience, daytime_zone  # noqa: E402
from tests.support.postgres import ThrowawayPostgres, create_database, free_port  # noqa: E402

SENDGRID_KEY = "SG.bench"
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "bench-token"
ORG = "org-bench"


def wait_until(probe: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in time")
        time.sleep(interval)


def vacuum_ledger(url: str) -> float:
    """VACUUM the delivery ledger; return the seconds it took.

    An email alert leaves a dead row version per recipient (each row is settled once, in
    place). Left to autovacuum, which looks every minute, the cleanup of a million of them
    lands in the middle of the SMS phase that follows, and took a quarter of a core from it."""
    started = time.perf_counter()
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) nf_deliveries")
    return time.perf_counter() - started


def wal_counters(url: str) -> dict[str, float]:
    """Return PostgreSQL's WAL and checkpoint counters (pg_stat_wal, pg_stat_bgwriter)."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        wal = conn.execute("SELECT wal_bytes, wal_fpi FROM pg_stat_wal").fetchone()
        ckpt = conn.execute(
            "SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter"
        ).fetchone()
    assert wal is not None and ckpt is not None
    return {"bytes": float(wal[0]), "fpi": float(wal[1]), "timed": ckpt[0], "requested": ckpt[1]}


def print_wal(before: dict[str, float], after: dict[str, float], n: int) -> None:
    """Print the WAL a recipient cost and the checkpoints over a phase."""
    per = {k: (after[k] - before[k]) for k in before}
    print(
        f"  PostgreSQL WAL {per['bytes'] / n:,.0f} bytes and {per['fpi'] / n:.2f} full-page images"
        f" a recipient; checkpoints: {per['timed']:.0f} timed, {per['requested']:.0f} requested"
    )


def seed(url: str, campaign: str, count: int, *, sms: bool, prefix: str) -> float:
    """COPY count supporters of a campaign, consenting to email (or SMS); return seconds."""
    started = time.perf_counter()
    if sms:  # SMS supporters live where it is daytime now, so no text waits for morning
        copy_audience(url, campaign, ORG, count, prefix=prefix, email=False, sms_first=count,
                      time_zone=daytime_zone())  # fmt: skip
    else:
        copy_audience(url, campaign, ORG, count, prefix=prefix)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("ANALYZE")
    return time.perf_counter() - started


class RssSampler:
    """Samples the resident set size of processes (and their children) until stopped.

    The process trees are listed once a few seconds: listing children scans every process on
    the machine, and doing it five times a second for each root cost this script 5 % of a core,
    taken from the system it measures."""

    def __init__(self, roots: dict[str, int], relist_every: float = 5.0) -> None:
        self.roots = roots
        self.relist_every = relist_every
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _trees(self) -> list[tuple[str, psutil.Process]]:
        trees = []
        for name, pid in self.roots.items():
            try:
                proc = psutil.Process(pid)
                children = proc.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            trees.append((name, proc))
            trees += [(f"{name}/child{i}", child) for i, child in enumerate(children, 1)]
        return trees

    def _run(self) -> None:
        trees, listed = self._trees(), time.monotonic()
        while not self._stop.wait(0.2):
            if time.monotonic() - listed > self.relist_every:
                trees, listed = self._trees(), time.monotonic()
            for key, proc in trees:
                try:
                    rss = proc.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peaks[key] = max(self.peaks.get(key, 0), rss)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peaks


def cpu_by_part() -> dict[str, float]:
    """CPU seconds used so far by each part of the run, every process on the machine counted.

    A PostgreSQL backend that exits takes its CPU out of a count of live processes (a pool
    closing its overflow connections did, and read as less CPU): the postmaster's reaped
    children are counted too."""
    parts: dict[str, float] = {}
    for proc in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
        command = " ".join(proc.info["cmdline"] or [])
        times = proc.info["cpu_times"]
        if times is None:
            continue
        if proc.info["pid"] == os.getpid():
            part = "this script"
        elif "--role" in command:
            part = "worker " + command.split("--role", 1)[1].split()[0]
        elif command.startswith("postgres") or "/bin/postgres" in command:
            part = "PostgreSQL"
            if " -D " in f"{command} ":  # the postmaster: add the backends that have exited
                parts[part] = parts.get(part, 0.0) + times.children_user + times.children_system
        elif "java" in command and "kafka" in command.lower():
            part = "Kafka"
        elif "gunicorn" in command and "tests.fakes" in command:
            part = "provider fakes"
        else:
            continue
        parts[part] = parts.get(part, 0.0) + times.user + times.system
    return parts


def print_cpu(before: dict[str, float], after: dict[str, float], seconds: float, n: int) -> None:
    """Print each part's CPU over a phase: share of a core and microseconds per message."""
    used = {part: after.get(part, 0.0) - before.get(part, 0.0) for part in after}
    total = sum(max(v, 0.0) for v in used.values())
    print(f"  CPU over the phase ({os.cpu_count()} cores), and per message:")
    for part, cpu in sorted(used.items(), key=lambda kv: -kv[1]):
        if cpu > 0:
            print(f"    {part:<22}{cpu / seconds:6.0%} of a core {cpu / n * 1e6:8.1f} us")
    print(f"    {'all of them':<22}{total / seconds:6.0%} of a core {total / n * 1e6:8.1f} us")


def print_idle(before: dict[str, float], after: dict[str, float], seconds: float) -> None:
    """Print each part's CPU while nothing is sent: what the system costs at rest."""
    print(f"  CPU at rest over {seconds:.0f} s:")
    for part, cpu in sorted(after.items(), key=lambda kv: -kv[1]):
        used = cpu - before.get(part, 0.0)
        if used > 0:
            print(f"    {part:<22}{used / seconds:7.1%} of a core")


def accepted_stats(db: str, provider: str) -> tuple[int, float]:
    """Return how many requests of a provider the fake accepted, and when the first came
    (epoch seconds, 0 when none)."""
    with sqlite3.connect(db, timeout=30) as conn:
        row = conn.execute(
            "SELECT count(*), min(ts) FROM requests"
            " WHERE provider = ? AND status BETWEEN 200 AND 299",
            (provider,),
        ).fetchone()
    return int(row[0]), float(row[1] or 0)


def accepted(db: str, provider: str) -> int:
    return accepted_stats(db, provider)[0]


def sendgrid_recipients(db: str) -> tuple[int, int]:
    """Return (recipients, distinct recipients) over accepted SendGrid requests."""
    with sqlite3.connect(db, timeout=60) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT json_extract(p.value, '$.to[0].email'))"
            " FROM requests r, json_each(r.body, '$.personalizations') p"
            " WHERE r.provider = 'sendgrid' AND r.status = 202"
        ).fetchone()
    return int(row[0]), int(row[1])


def twilio_times(db: str) -> tuple[int, int, float, float]:
    with sqlite3.connect(db, timeout=60) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT json_extract(body, '$.To')), min(ts), max(ts)"
            " FROM requests WHERE provider = 'twilio' AND status = 201"
        ).fetchone()
    return int(row[0]), int(row[1] or 0), float(row[2] or 0), float(row[3] or 0)


def longest_pauses(db: str, count: int = 3) -> list[float]:
    """The longest gaps between consecutive texts at the fake, longest first: a sender that
    waited on Kafka for its next batch shows here, where the average rate hides it."""
    with sqlite3.connect(db, timeout=60) as conn:
        times = [row[0] for row in conn.execute(
            "SELECT ts FROM requests WHERE provider = 'twilio' AND status = 201 ORDER BY ts"
        )]  # fmt: skip
    return sorted((b - a for a, b in itertools.pairwise(times)), reverse=True)[:count]


def alert_event(alert_id: str, campaign: str, channels: list[str]) -> Event:
    content = {
        "email_subject": "The vote is Tuesday",
        "email_text": "Call your council member before Tuesday's vote on language access.",
        "email_html": "<p>Call your council member before Tuesday's vote on language access.</p>",
        "sms_text": "The language access vote is Tuesday: call your council member.",
    }
    return Event(
        type="kinship.alert.published.v1",
        key=campaign,
        source="/bench",
        data={
            "alert_id": alert_id,
            "campaign_id": campaign,
            "organization_id": ORG,
            "channels": channels,
            "default_locale": "en",
            "content": {"en": content},
            "audience": {},
            "at": format_time(utcnow()),
        },
    )


def publish(bootstrap: str, event: Event) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(CAMPAIGNS, key=event.key.encode(), value=event.value(), headers=event.headers())
    producer.flush(timeout=30)
    producer.close()


def groups_stable(bootstrap: str, groups: dict[str, int]) -> bool:
    try:
        with KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-probe") as admin:
            described = admin.describe_groups(list(groups))
    except KafkaError:
        return False  # the coordinator is still loading
    for group, members in groups.items():
        info = described.get(group) or {}
        if info.get("group_state") != "Stable" or len(info.get("members") or []) < members:
            return False
    return True


def report_groups(
    bootstrap: str, groups: dict[str, int], work: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    """Print each group's state, and the workers' last log lines after asking each for its
    threads' stacks (SIGUSR1, shared/worker.py): the groups never settled."""
    try:
        with KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-probe") as admin:
            described = admin.describe_groups(list(groups))
        for group, members in groups.items():
            info = described.get(group) or {}
            seen = len(info.get("members") or [])
            state = info.get("group_state")
            print(f"group {group}: {state}, {seen} of {members} members", file=sys.stderr)
    except KafkaError as exc:
        print(f"groups not described: {exc!r}", file=sys.stderr)
    for worker in workers:
        worker.send_signal(signal.SIGUSR1)
    time.sleep(1.0)
    for log in sorted(work.glob("worker-*.log")):
        lines = log.read_text(errors="replace").splitlines()[-150:]
        print(f"--- {log.name}", *lines, sep="\n", file=sys.stderr)


def plain_sdk(url: str, n: int, concurrency: int) -> float:
    """Post ceil(n/1000) pre-built requests with the plain SDK; return seconds."""
    bodies = []
    for start in range(0, n, 1000):
        personalizations = [
            {
                "to": [{"email": f"plain{i:08d}@example.org"}],
                "custom_args": {"notification_id": str(uuid.uuid4()), "alert_id": "plain"},
                "headers": {
                    "List-Unsubscribe": f"<https://n.example/unsubscribe/{uuid.uuid4().hex}.t>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
                "substitutions": {"-unsubscribe_url-": f"https://n.example/u/{i}"},
            }
            for i in range(start, min(start + 1000, n))
        ]
        bodies.append(
            {
                "personalizations": personalizations,
                "from": {"email": "alerts@bench.example", "name": "Bench"},
                "subject": "The vote is Tuesday",
                "content": [
                    {"type": "text/plain", "value": "Call. -unsubscribe_url-"},
                    {"type": "text/html", "value": "<p>Call.</p> -unsubscribe_url-"},
                ],
            }
        )
    local = threading.local()

    def post(body: dict[str, Any]) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = SendGridAPIClient(api_key=SENDGRID_KEY, host=url)
            client.client.timeout = 60
        client.send(body)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, bodies))
    return time.perf_counter() - started


def plain_twilio(url: str, count: int, concurrency: int) -> float:
    """Create count messages with the plain Twilio SDK, unpaced; return messages per second."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    local = threading.local()

    def create(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = Client(
                ACCOUNT_SID, AUTH_TOKEN, http_client=TwilioHttpClient(timeout=30)
            )
            client.api.base_url = url
        client.messages.create(to=f"+1555{i:07d}", from_="+15557654321", body="plain")

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(create, range(count)))
    return count / (time.perf_counter() - started)


def delivery_report_seconds(db_url: str) -> float:
    """Time GET /api/v1/delivery-reports/{id}'s query over the alert's million rows."""
    engine = make_engine(db_url, pool_size=1)
    try:
        with engine.connect() as conn:
            started = time.perf_counter()
            report = alert_report(conn, "bench-email-alert")
            seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    assert report["channels"], "the report found no rows"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--sms", type=int, default=10_000)
    parser.add_argument("--sms-rate", type=float, default=500.0)
    parser.add_argument("--email-procs", type=int, default=2)
    parser.add_argument("--email-threads", type=int, default=2)  # the service default
    parser.add_argument("--sms-threads", type=int, default=3)  # a process
    parser.add_argument(
        "--sms-procs", type=int, default=1,
        help="SMS sender processes; each sends --sms-rate / --sms-procs a second",
    )  # fmt: skip
    parser.add_argument("--fake-workers", type=int, default=3)
    parser.add_argument(
        "--idle-seconds", type=float, default=0.0,
        help="before publishing, print each part's CPU over this many idle seconds",
    )  # fmt: skip
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument(
        "--pg-setting", action="append", default=[], metavar="NAME=VALUE",
        help="a server setting for the throwaway PostgreSQL (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kinship-fanout-"))
    cleanups: list[Callable[[], None]] = [lambda: shutil.rmtree(work, ignore_errors=True)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        db_url = os.environ.get("KINSHIP_BENCH_DATABASE_URL")
        if not db_url:
            settings = dict(item.split("=", 1) for item in args.pg_setting)
            pg = ThrowawayPostgres(durable=True, settings=settings)
            pg.start()
            cleanups.append(pg.destroy)
            db_url = create_database(pg.admin_url)
        bootstrap = os.environ.get("KINSHIP_BENCH_KAFKA")
        if not bootstrap:
            broker = LocalKafka(work / "kafka", port=free_port(), controller_port=free_port())
            broker.start()
            cleanups.append(broker.stop)
            bootstrap = broker.bootstrap
        upgrade("notifications", db_url)
        print(f"seeding {args.n:,} email and {args.sms:,} SMS supporters with COPY ...", flush=True)
        seconds = seed(db_url, "bench-email", args.n, sms=False, prefix="e")
        seconds += seed(db_url, "bench-sms", args.sms, sms=True, prefix="s")
        print(f"seeded in {seconds:.1f} s", flush=True)

        fakes_db = str(work / "fakes.sqlite")
        sendgrid = start_fake_process(
            "sendgrid", fakes_db, workers=args.fake_workers, threads=8, api_key=SENDGRID_KEY
        )
        cleanups.append(sendgrid.stop)
        twilio_db = str(work / "twilio.sqlite")
        twilio = start_fake_process(
            "twilio", twilio_db, workers=3, threads=16,
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
        )  # fmt: skip
        cleanups.append(twilio.stop)

        group = f"bench-{uuid.uuid4().hex[:6]}"
        ensure_topics(bootstrap, [CAMPAIGNS, PETITIONS, NOTIFICATIONS], 3)
        ensure_topics(bootstrap, [*DISPATCH_TOPICS.values()], args.partitions)
        env = {
            **os.environ,
            "NOTIFICATIONS_DATABASE_URL": db_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EMAIL_BACKEND": "sendgrid",
            "SENDGRID_API_KEY": SENDGRID_KEY,
            "SENDGRID_API_HOST": sendgrid.url,
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE_URL": twilio.url,
            "TWILIO_FROM_NUMBER": "+15557654321",
            "KINSHIP_HASH_KEY": "bench-hash-key",
            "KINSHIP_PUBLIC_BASE_URL": "https://notify.example.org",
            "EMAIL_SENDER_THREADS": str(args.email_threads),
            "SMS_SENDER_THREADS": str(args.sms_threads),
            "SMS_RATE_PER_SECOND": str(args.sms_rate / args.sms_procs),
            "DISPATCH_PARTITIONS": str(args.partitions),
            "LOG_LEVEL": "WARNING",
            "NO_PROXY": "127.0.0.1,localhost",
        }

        def spawn(role: str) -> subprocess.Popen[bytes]:
            log = open(work / f"worker-{role}-{len(processes)}.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen(
                [sys.executable, "-m", "services.notifications.worker", "--role", role,
                 "--group", group],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            processes.append(proc)
            return proc

        roots = {"core": spawn("core").pid}
        for i in range(args.email_procs):
            roots[f"email{i}"] = spawn("email").pid
        for i in range(args.sms_procs):
            roots["sms" if args.sms_procs == 1 else f"sms{i}"] = spawn("sms").pid
        expected = {
            group: 1,
            f"{group}-email-sender": args.email_procs * args.email_threads,
            f"{group}-sms-sender": args.sms_procs * args.sms_threads,
        }
        try:
            wait_until(lambda: groups_stable(bootstrap, expected), timeout=120, interval=0.5)
        except TimeoutError:
            report_groups(bootstrap, expected, work, processes)
            raise
        print("workers ready", flush=True)
        if args.idle_seconds:
            idle_before = cpu_by_part()
            time.sleep(args.idle_seconds)
            print_idle(idle_before, cpu_by_part(), args.idle_seconds)

        sampler = RssSampler(roots).start()
        requests_expected = math.ceil(args.n / 1000)
        cpu_before, wal_before = cpu_by_part(), wal_counters(db_url)
        started, published_at = time.perf_counter(), time.time()
        publish(bootstrap, alert_event("bench-email-alert", "bench-email", ["email"]))
        wait_until(
            lambda: accepted(fakes_db, "sendgrid") >= requests_expected, timeout=3600, interval=0.25
        )
        elapsed = time.perf_counter() - started
        cpu_after, wal_after = cpu_by_part(), wal_counters(db_url)
        peaks = sampler.stop()
        requests_made, first_at = accepted_stats(fakes_db, "sendgrid")
        total, distinct = sendgrid_recipients(fakes_db)
        kinship_rate = args.n / elapsed
        first = first_at - published_at
        print(f"email alert: {args.n:,} recipients in {elapsed:.1f} s", flush=True)
        print(f"  first SendGrid request after {first:8.2f} s")
        print(f"  kinship end to end         {kinship_rate:12,.0f} recipients/s")
        print(
            f"  SendGrid requests made     {requests_made:12,d} (ceil(N/1000) = "
            f"{requests_expected:,}) {'OK' if requests_made == requests_expected else 'MISMATCH'}"
        )
        print(f"  recipients at the fake     {total:12,d} ({distinct:,} distinct)")
        for name, rss in sorted(peaks.items()):
            print(f"  peak RSS {name:<18}{rss / 2**20:10,.0f} MB")
        print_cpu(cpu_before, cpu_after, elapsed, args.n)
        print_wal(wal_before, wal_after, args.n)

        sendgrid.records.clear("sendgrid")
        concurrency = args.email_procs * args.email_threads
        plain_seconds = plain_sdk(sendgrid.url, args.n, concurrency)
        plain_rate = args.n / plain_seconds
        print(
            f"  plain SDK, pre-built       {plain_rate:12,.0f} recipients/s ({concurrency} threads)"
        )
        print(f"  ratio kinship / plain SDK  {kinship_rate / plain_rate:12.2f}")
        print(f"  delivery report of the alert {delivery_report_seconds(db_url):10.2f} s")

        vacuumed = vacuum_ledger(db_url)
        print(f"  ledger vacuumed in {vacuumed:.1f} s before the SMS phase (see vacuum_ledger)")
        cpu_before = cpu_by_part()
        sms_started = time.perf_counter()
        publish(bootstrap, alert_event("bench-sms-alert", "bench-sms", ["sms"]))
        wait_until(lambda: accepted(twilio_db, "twilio") >= args.sms, 3600, 0.25)
        sms_elapsed = time.perf_counter() - sms_started
        cpu_after = cpu_by_part()
        count, numbers, first, last = twilio_times(twilio_db)
        achieved = (count - 1) / (last - first) if last > first else float("inf")
        share = achieved / args.sms_rate
        print(
            f"SMS alert: {count:,} messages ({numbers:,} distinct numbers) in {sms_elapsed:.1f} s"
        )
        print(f"  rate first->last message   {achieved:12,.0f} msg/s at {args.sms_rate:,.0f}/s"
              f" configured ({share:.0%}) {'OK' if share >= 0.95 else 'BELOW 95%'}")  # fmt: skip
        pauses = ", ".join(f"{gap * 1000:.0f}" for gap in longest_pauses(twilio_db))
        print(f"  longest pauses between texts {pauses} ms")
        print_cpu(cpu_before, cpu_after, sms_elapsed, count)
        sms_concurrency = args.sms_procs * args.sms_threads * int(env.get("SMS_CONCURRENCY", "4"))
        plain_sms = plain_twilio(twilio.url, min(args.sms, 3000), sms_concurrency)
        print(f"  plain Twilio SDK, unpaced  {plain_sms:12,.0f} msg/s ({sms_concurrency} threads,"
              " the fake's ceiling here)")  # fmt: skip
        peak_max = max(peaks.values()) / 2**20 if peaks else 0
        print(
            json.dumps(
                {
                    "summary": "fanout",
                    "n": args.n,
                    "email_recipients_per_s": round(kinship_rate),
                    "sendgrid_requests": requests_made,
                    "requests_expected": requests_expected,
                    "plain_sdk_recipients_per_s": round(plain_rate),
                    "ratio_to_plain_sdk": round(kinship_rate / plain_rate, 3),
                    "peak_rss_mb_max": round(peak_max),
                    "sms_rate_achieved": round(achieved, 1),
                    "sms_rate_configured": args.sms_rate,
                    "plain_twilio_msg_per_s": round(plain_sms, 1),
                }
            ),
            flush=True,
        )
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as exc:  # noqa: BLE001 - clean up the rest regardless
                print(f"cleanup failed: {exc}", file=sys.stderr)


if __name__ == "__main__":
    main()
