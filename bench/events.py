"""Benchmark the event backbone against plain kafka-python on the same broker (not a test).

    .venv/bin/python bench/events.py [--events 200000]

Prints, for N events:
  (a) plain kafka-python: producer -> consumer, end to end, and consumption alone;
  (b) outbox -> relay -> consumer runner with effects committed in PostgreSQL, end to end;
  (c) the consumer runner's consume path alone (records already on the topic, effects in
      PostgreSQL), against plain consumption of the same records;
and the ratios. Uses KINSHIP_BENCH_DATABASE_URL / KINSHIP_BENCH_KAFKA if set, else starts a
throwaway PostgreSQL and a local Kafka of its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer  # noqa: E402
from sqlalchemy import Table, func, select  # noqa: E402

from shared.consumer import ConsumerRunner  # noqa: E402
from shared.db import make_engine  # noqa: E402
from shared.kafka import ensure_topics, make_producer  # noqa: E402
from shared.local_kafka import LocalKafka  # noqa: E402
from tests.integration import eventapp  # noqa: E402
from tests.support.postgres import ThrowawayPostgres, create_database, free_port  # noqa: E402

PAYLOAD_KEYS = 1000


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def report(label: str, events_per_second: float) -> None:
    print(f"{label:<44} {events_per_second:12,.0f} events/s", flush=True)


def wait_until(probe: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in time")
        time.sleep(interval)


def plain_round_trip(bootstrap: str, n: int) -> tuple[float, float]:
    """Produce n events with kafka-python while a plain consumer reads them; then re-read all."""
    topic = f"bench.plain.{uuid.uuid4().hex[:6]}"
    ensure_topics(bootstrap, [topic], partitions=3)
    events = [eventapp.item_event(f"k{i % PAYLOAD_KEYS}", i) for i in range(n)]
    records = [(e.key.encode(), e.value(), e.headers()) for e in events]
    consumed = 0
    done = threading.Event()

    def consume() -> None:
        nonlocal consumed
        with KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"plain-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_records=1000,
        ) as consumer:
            while consumed < n:
                for batch in consumer.poll(timeout_ms=200).values():
                    consumed += len(batch)
                consumer.commit()
        done.set()

    reader = threading.Thread(target=consume)
    started = time.perf_counter()
    reader.start()
    producer = make_producer(bootstrap, "bench-plain")
    for key, value, headers in records:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()
    done.wait()
    round_trip = time.perf_counter() - started
    return rate(n, round_trip), plain_consume_only(bootstrap, topic, n)


def plain_consume_only(bootstrap: str, topic: str, n: int) -> float:
    """Read n records already on the topic with a fresh group, committing per poll."""
    seen = 0
    with KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"plain-read-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=1000,
    ) as consumer:
        consumer.poll(timeout_ms=0)  # join the group before the clock starts
        started = time.perf_counter()
        while seen < n:
            for batch in consumer.poll(timeout_ms=200).values():
                seen += len(batch)
            consumer.commit()
        return rate(n, time.perf_counter() - started)


def pipeline(bootstrap: str, db_url: str, n: int) -> dict[str, float]:
    """Outbox -> relay (its own process) -> consumer runner (its own process) -> PostgreSQL."""
    topic = f"bench.pipeline.{uuid.uuid4().hex[:6]}"
    metadata, outbox_table, processed, effects, registry = eventapp.build(topic)
    engine = make_engine(db_url)
    metadata.create_all(engine)
    ensure_topics(bootstrap, [topic], partitions=3)
    outbox = eventapp.make_outbox(outbox_table, registry)

    started = time.perf_counter()
    for start in range(0, n, 1000):
        with engine.begin() as conn:
            outbox.add_many(
                conn,
                [
                    eventapp.item_event(f"k{i % PAYLOAD_KEYS}", i)
                    for i in range(start, min(start + 1000, n))
                ],
            )
    outbox_rate = rate(n, time.perf_counter() - started)

    def count(table: Table) -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    group = f"bench-{uuid.uuid4().hex[:6]}"
    logs = Path(tempfile.mkdtemp(prefix="kinship-bench-"))
    procs = []
    started = time.perf_counter()
    for role, extra in (
        ("consumer", ["--batch", "1000", "--bulk"]),
        ("relay", ["--batch", "2000"]),
    ):
        log = open(logs / f"{role}.log", "wb")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.eventapp",
                    role,
                    db_url,
                    bootstrap,
                    topic,
                    group,
                    *extra,
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        wait_until(lambda: count(effects) >= n, timeout=1800, interval=0.2)
        end_to_end = rate(n, time.perf_counter() - started)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)
    assert count(effects) == n, "pipeline lost or duplicated events"

    # The runner alone: the same records, re-consumed by a new group into a fresh effect table.
    runner_effects = Table("runner_effects", metadata, *(c._copy() for c in effects.columns))
    runner_effects.create(engine)
    runner = ConsumerRunner(
        engine=engine,
        processed=processed,
        registry=registry,
        group=f"{group}-again",
        topics=[topic],
        handlers={},
        bootstrap=bootstrap,
        batch_handlers={eventapp.ITEM_CREATED: eventapp.bulk_effect_handler(runner_effects)},
    )
    thread = threading.Thread(target=runner.run)
    started = time.perf_counter()
    thread.start()
    try:
        wait_until(lambda: runner.stats["processed"] >= n, timeout=1800, interval=0.02)
        consume_path = rate(n, time.perf_counter() - started)
    finally:
        runner.stop()
        thread.join()
    assert count(runner_effects) == n
    engine.dispose()
    shutil.rmtree(logs, ignore_errors=True)
    return {
        "outbox_insert": outbox_rate,
        "end_to_end": end_to_end,
        "runner_consume": consume_path,
        "topic": topic,
    }  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    n = args.events
    cleanup: list[Callable[[], Any]] = []
    try:
        db_admin = os.environ.get("KINSHIP_BENCH_DATABASE_URL")
        if not db_admin:
            pg = ThrowawayPostgres()
            db_admin = pg.start()
            cleanup.append(pg.destroy)
        bootstrap = os.environ.get("KINSHIP_BENCH_KAFKA")
        if not bootstrap:
            home = Path(tempfile.mkdtemp(prefix="kinship-bench-kafka-"))
            broker = LocalKafka(home, port=free_port(), controller_port=free_port(), heap="1g")
            broker.start()
            cleanup.append(lambda: (broker.stop(), shutil.rmtree(home, ignore_errors=True)))
            bootstrap = broker.bootstrap
        print(f"events: {n:,}  broker: Kafka at {bootstrap}  cores: {os.cpu_count()}")
        plain_e2e, plain_consume = plain_round_trip(bootstrap, n)
        report("(a) plain kafka-python producer -> consumer", plain_e2e)
        report("    plain kafka-python consumption alone", plain_consume)
        result = pipeline(bootstrap, create_database(db_admin, "kinship_bench"), n)
        report("    outbox inserts (1,000 per transaction)", result["outbox_insert"])
        report("(b) outbox -> relay -> runner -> PostgreSQL", result["end_to_end"])
        report("(c) runner consume path with PG effects", result["runner_consume"])
        ratio_b = result["end_to_end"] / plain_e2e
        ratio_c = result["runner_consume"] / plain_consume
        print(f"ratio b/a = {ratio_b:.2f}   ratio c/plain consumption = {ratio_c:.2f}")
        verdict = "PASS" if result["end_to_end"] >= 5000 and ratio_c >= 0.5 else "MISS"
        print(
            f"summary: n={n} plain={plain_e2e:.0f}/s pipeline={result['end_to_end']:.0f}/s "
            f"b/a={ratio_b:.2f} runner/plain-consume={ratio_c:.2f} "
            f"targets(b>=5000/s, runner>=0.5) {verdict}"
        )
    finally:
        for step in reversed(cleanup):
            step()


if __name__ == "__main__":
    main()
