"""Benchmark partner webhook delivery with a dead endpoint next to healthy ones (not a test).

    .venv/bin/python bench/webhooks.py [--events 10000] [--rate 50] [--healthy 10] [--rounds 8]

Starts a throwaway PostgreSQL and a local Kafka (or uses KINSHIP_BENCH_DATABASE_URL, an admin
URL of a server, and KINSHIP_BENCH_KAFKA). Two scenarios, each on a fresh database per round,
alternating over --rounds so other load on the machine falls on both alike: 10 healthy
receivers (real HTTP servers on loopback, in a separate process), and the same plus one that
never answers in time (the real 15 s timeout applies). Each scenario publishes --events
signature.created events in all to Kafka at --rate per second from a process of its own (each
signer shares their details with the partner); the notifications consumer turns each into one
message per endpoint, and the dispatcher delivers them. Prints deliveries/s and the p50/p99
delay from the event's time to its arrival at a healthy receiver, for both runs, the change
in p99 (pooled over the rounds, and the median of the rounds' p99s, which a stall of the
machine in one round does not swing), and a one-line summary. A round starts only when the
previous one has wound down completely (the dispatcher waits out its last dead delivery).
Targets: the dead endpoint changes the healthy p99 by less than 10%, and p99 stays under 2 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaProducer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from services.notifications import audience, store  # noqa: E402
from services.notifications.webhooks import signing  # noqa: E402
from services.notifications.webhooks.config import WebhookConfig  # noqa: E402
from services.notifications.webhooks.dispatcher import Dispatcher  # noqa: E402
from services.notifications.webhooks.handlers import handlers as webhook_handlers  # noqa: E402
from services.notifications.webhooks.store import endpoints, messages  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.db import make_engine  # noqa: E402
from shared.events import Event  # noqa: E402
from shared.events.catalog import type_name  # noqa: E402
from shared.events.envelope import format_time, utcnow  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.local_kafka import LocalKafka  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.privacy import supporter_id  # noqa: E402
from shared.service import worker_parts  # noqa: E402
from tests.support.postgres import ThrowawayPostgres, create_database, free_port  # noqa: E402

HASH_KEY = "bench-hash-key"
LEAD, PARTNER = "org-lead", "org-partner"
DEAD_SLEEP = 60.0


# -- receivers (another process, so they do not share the dispatcher's GIL) ------------------


def serve(ports: list[int], dead: int | None, out: str, stop: Any) -> None:
    """Serve one receiver per port; on stop, write each healthy arrival's delay to `out`."""
    arrivals: list[tuple[int, str, float, float]] = []
    lock = threading.Lock()
    servers = []
    for index, port in enumerate(ports):

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            me = index

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.me == dead:
                    time.sleep(DEAD_SLEEP)  # longer than the 15 s timeout
                    return
                arrived = time.time()
                sent = datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
                with lock:
                    arrivals.append((self.me, self.headers["webhook-id"], arrived - sent, arrived))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    stop.wait()
    with lock:
        Path(out).write_text(json.dumps(arrivals))


def publish(
    bootstrap: str, topic: str, events: int, rate: float, run: str, ready: Any, go: Any
) -> None:
    """Publish the signature events at a steady rate (in its own process)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    producer.partitions_for(topic)  # connected and ready before the clock starts
    ready.set()
    go.wait()
    started = time.time()
    for i in range(events):
        pause = started + i / rate - time.time()
        if pause > 0:
            time.sleep(pause)
        e = signature_event(i, run)
        producer.send(topic, key=e.key.encode(), value=e.value(), headers=e.headers())
    producer.flush(timeout=60)
    producer.close()


# -- one run --------------------------------------------------------------------------------------


def seed(engine: Any, urls: list[str]) -> None:
    now = utcnow()
    with engine.begin() as conn:
        for org in (LEAD, PARTNER):
            audience.upsert_organization(
                conn, HASH_KEY, {"organization_id": org, "name": org, "contact_email": None}, now
            )
        audience.upsert_campaign(
            conn,
            {"campaign_id": "camp", "lead_organization_id": LEAD,
             "partner_organization_ids": [PARTNER], "titles": {"en": "Bench"}, "status": "active"},
            now,
        )  # fmt: skip
        for i, url in enumerate(urls):
            conn.execute(
                endpoints.insert().values(
                    endpoint_id=f"ep_bench_{i:02d}", organization_id=PARTNER, url=url,
                    description="bench", event_types=["signature.created"], enabled=True,
                    secret=signing.new_secret(), created_at=now, updated_at=now,
                )
            )  # fmt: skip


def signature_event(i: int, run: str) -> Event:
    email = f"signer{i}-{run}@example.org"
    sid = supporter_id(HASH_KEY, email)
    data = {
        "signature_id": uuid.uuid4().hex, "petition_id": "pet", "campaign_id": "camp",
        "organization_id": LEAD, "supporter_id": sid, "duplicate": False,
        "double_opt_in": False, "confirm_url": None, "locale": "en",
        "person": {"given_name": "Sam", "family_name": "Lee", "email": email,
                   "phone": "+14155550100", "postal_code": "94601", "country": "US",
                   "language": "en", "pronouns": None, "discreet": False},
        "consents": {"email": True, "sms": False, "partner_organization_ids": [PARTNER]},
        "attribution": {"source": "bench", "partner_organization_id": PARTNER},
        "interests": [], "at": format_time(utcnow()),
    }  # fmt: skip
    return Event(type=type_name("signature.created"), key=sid, data=data, source="/bench")


def run_once(
    admin_url: str, bootstrap: str, events: int, rate: float, healthy: int, with_dead: bool
) -> dict[str, Any]:
    label = "with dead" if with_dead else "healthy only"
    database_url = create_database(admin_url, "kinship_bench_webhooks")
    upgrade("notifications", database_url)
    engine = make_engine(database_url, pool_size=16)
    count = healthy + (1 if with_dead else 0)
    ports = [free_port() for _ in range(count)]
    out = tempfile.mktemp(suffix=".json")
    stop = multiprocessing.Event()
    receiver = multiprocessing.Process(
        target=serve, args=(ports, healthy if with_dead else None, out, stop), daemon=True
    )
    receiver.start()
    seed(engine, [f"http://127.0.0.1:{p}/hook" for p in ports])
    run = uuid.uuid4().hex[:8]
    topic = f"bench.webhooks.{run}"
    ensure_topics(bootstrap, [topic], 3)
    # The load comes from another process (forked before this one starts threads): in the
    # dispatcher's process it took a fifth of the GIL that the consumer and the dispatcher need,
    # where a real producer is another service.
    ready, go = multiprocessing.Event(), multiprocessing.Event()
    publisher = multiprocessing.Process(
        target=publish, args=(bootstrap, topic, events, rate, run, ready, go), daemon=True
    )
    publisher.start()
    settings = Settings.from_env("notifications").with_(
        database_url=database_url, kafka_bootstrap_servers=bootstrap, hash_key=HASH_KEY
    )
    dispatcher = Dispatcher(engine, WebhookConfig(allowed_networks=("127.0.0.1/32",)), clock=utcnow)
    _, consumer = worker_parts(
        settings, engine, store.outbox_table, store.processed_table, [topic],
        webhook_handlers(utcnow), group=f"bench-{run}", on_commit=dispatcher.wake,
    )  # fmt: skip
    threads = [threading.Thread(target=p.run, daemon=True) for p in (consumer, dispatcher)]
    for thread in threads:
        thread.start()
    time.sleep(3.0)  # let the consumer join its group before the clock starts
    ready.wait(60)
    started = time.time()
    go.set()
    publisher.join()
    published = time.time()
    target = events * healthy
    healthy_ids = [f"ep_bench_{i:02d}" for i in range(healthy)]

    def delivered() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(messages)
                    .where(
                        messages.c.status == "succeeded", messages.c.endpoint_id.in_(healthy_ids)
                    )
                ).scalar_one()
            )

    deadline = time.time() + 600
    while delivered() < target and time.time() < deadline:
        time.sleep(0.2)
    finished = time.time()
    with engine.connect() as conn:
        written = {
            r.message_id: (r.created_at.timestamp(), r.event_time.timestamp())
            for r in conn.execute(
                select(messages.c.message_id, messages.c.created_at, messages.c.event_time).where(
                    messages.c.endpoint_id.in_(healthy_ids)
                )
            )
        }
    for part in (consumer, dispatcher):
        part.stop()
    # Wait until both have really finished (the dispatcher waits out a delivery to the dead
    # endpoint, up to its 15 s timeout): a round still winding down in the background would
    # slow the next one, which is always the other scenario.
    for thread in threads:
        thread.join(timeout=60)
    stop.set()
    receiver.join(timeout=30)
    arrivals = json.loads(Path(out).read_text())
    os.unlink(out)
    delays = sorted(d for _, _, d, _ in arrivals)
    unique = len({(e, m) for e, m, _, _ in arrivals})
    # Kafka and the consumer: event time to message row; the dispatcher: row to arrival.
    queued = sorted(c - t for c, t in written.values())
    dispatch = sorted(at - written[m][0] for _, m, _, at in arrivals if m in written)
    print(
        f"  {label:>13} round: {len(delays):,} healthy deliveries ({unique:,} unique of "
        f"{target:,}) in {finished - started:.1f} s (publishing {published - started:.1f} s); "
        f"p50 {pct(delays, 50) * 1000:.0f} ms, p99 {pct(delays, 99) * 1000:.0f} ms; Kafka and "
        f"consumer share p50 {pct(queued, 50) * 1000:.0f} ms, p99 {pct(queued, 99) * 1000:.0f} ms; "
        f"dispatcher share p50 {pct(dispatch, 50) * 1000:.0f} ms, "
        f"p99 {pct(dispatch, 99) * 1000:.0f} ms",
        flush=True,
    )
    engine.dispose()
    return {
        "delays": delays,
        "dispatch": dispatch,
        "seconds": finished - started,
        "unique": unique,
        "target": target,
    }


def pct(values: list[float], q: int) -> float:
    """Return the q-th percentile of sorted values."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(len(values) * q / 100))]


def report(label: str, rounds: list[dict[str, Any]]) -> dict[str, float]:
    """Print and return one scenario's figures over its rounds."""
    delays = sorted(d for r in rounds for d in r["delays"])
    seconds = sum(r["seconds"] for r in rounds)
    unique = sum(r["unique"] for r in rounds)
    target = sum(r["target"] for r in rounds)
    dispatch = sorted(d for r in rounds for d in r["dispatch"])
    result = {
        "dispatch_p50": pct(dispatch, 50),
        "dispatch_p99": pct(dispatch, 99),
        "per_second": len(delays) / seconds,
        "p50": pct(delays, 50),
        "p99": pct(delays, 99),
        "max": delays[-1] if delays else 0.0,
    }
    print(
        f"{label:>13}: {len(delays):,} healthy deliveries ({unique:,} unique of {target:,}), "
        f"{result['per_second']:,.0f} deliveries/s; event-to-delivery p50 "
        f"{result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms, "
        f"max {result['max'] * 1000:.0f} ms; dispatcher's share (message row to arrival) "
        f"p50 {result['dispatch_p50'] * 1000:.0f} ms, p99 {result['dispatch_p99'] * 1000:.0f} ms",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--healthy", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds per scenario")
    parser.add_argument("--warmup", type=int, default=500, help="events of an uncounted round")
    args = parser.parse_args()
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="kinship-bench-webhooks-"))
        admin_url = os.environ.get("KINSHIP_BENCH_DATABASE_URL")
        if not admin_url:
            pg = ThrowawayPostgres()
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
        print(
            f"{args.events:,} signature.created events at {args.rate:g}/s to {args.healthy} "
            f"healthy endpoints (PostgreSQL, Kafka, HTTP on loopback; 2 shared cores)",
            flush=True,
        )
        # Alternate the two scenarios in rounds, so load from elsewhere on the machine falls
        # on both alike.
        per_round = args.events // args.rounds
        if args.warmup:
            print("warm-up round (not counted):", flush=True)
            run_once(admin_url, bootstrap, args.warmup, args.rate, args.healthy, True)
        runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        for _ in range(args.rounds):
            for with_dead in (False, True):
                runs[with_dead].append(
                    run_once(admin_url, bootstrap, per_round, args.rate, args.healthy, with_dead)
                )
        runs_base, runs_dead = runs[False], runs[True]
        base = report("healthy only", runs_base)
        dead = report("with dead", runs_dead)
    ratio = dead["p99"] / base["p99"] if base["p99"] else float("inf")
    change = (ratio - 1.0) * 100
    print(f"healthy p99 with the dead endpoint / without: {ratio:.2f} ({change:+.1f}%)")
    d_ratio = dead["dispatch_p99"] / base["dispatch_p99"] if base["dispatch_p99"] else 0.0
    print(
        f"dispatcher-only p99 with / without: {d_ratio:.2f} ({(d_ratio - 1) * 100:+.1f}%) "
        "(Kafka and the consumer run before any endpoint is called, so their share is noise "
        "from the machine, not the dead endpoint)"
    )
    spread = {
        k: [pct(r["delays"], 99) * 1000 for r in v]
        for k, v in (("base", runs_base), ("dead", runs_dead))
    }
    print(
        "round-to-round p99 spread: healthy only "
        f"{min(spread['base']):.0f}-{max(spread['base']):.0f} ms, with dead "
        f"{min(spread['dead']):.0f}-{max(spread['dead']):.0f} ms"
    )
    # Machine noise (a stall of a second now and then, on 2 shared cores) lands in whichever
    # round it hits, and the pooled p99 follows the worst round; the median over the
    # alternating rounds of each scenario's p99 is the robust figure. Both are printed.
    med_base, med_dead = statistics.median(spread["base"]), statistics.median(spread["dead"])
    med_change = (med_dead / med_base - 1.0) * 100 if med_base else float("inf")
    print(
        f"median over rounds of the healthy p99: {med_dead:.0f} ms with the dead endpoint vs "
        f"{med_base:.0f} ms without ({med_change:+.1f}%)"
    )
    under_2s = dead["p99"] < 2.0 and base["p99"] < 2.0
    pooled_ok = change < 10.0 and under_2s
    median_ok = med_change < 10.0 and under_2s
    print(
        f"SUMMARY webhooks: {dead['per_second']:,.0f} deliveries/s with a dead endpoint "
        f"({base['per_second']:,.0f} without); healthy p99 pooled {dead['p99'] * 1000:.0f} ms vs "
        f"{base['p99'] * 1000:.0f} ms ({change:+.1f}%: {'met' if pooled_ok else 'NOT met'}), "
        f"median of rounds {med_dead:.0f} ms vs {med_base:.0f} ms ({med_change:+.1f}%: "
        f"{'met' if median_ok else 'NOT met'}); target under +10% and 2 s; p50 "
        f"{dead['p50'] * 1000:.0f} ms vs {base['p50'] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
