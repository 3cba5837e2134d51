"""A pid the local Kafka recorded counts only while it is still that broker's process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from shared.local_kafka import LocalKafka


def test_a_recycled_pid_is_not_taken_for_the_broker(tmp_path: Path) -> None:
    """After a reboot the recorded pid may be another process's: `dev up` waited for a broker
    that never came, and `stop` would have signalled that process."""
    kafka = LocalKafka(tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = psutil.Process(other.pid).create_time()
        kafka._pid_file.write_text(json.dumps({"pid": other.pid, "created": started - 3600}))
        assert kafka.running_pid() is None
        kafka._pid_file.write_text(str(other.pid))  # an older file: the pid alone
        assert kafka.running_pid() is None  # not a Kafka broker
        kafka._pid_file.write_text(json.dumps({"pid": other.pid, "created": started}))
        assert kafka.running_pid() == other.pid  # the one recorded, still running
        kafka.stop()
        assert other.wait(timeout=10) is not None
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_stop_leaves_a_stranger_alone(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        kafka._pid_file.write_text(json.dumps({"pid": stranger.pid, "created": 1.0}))
        kafka.stop()
        assert stranger.poll() is None and os.path.exists(f"/proc/{stranger.pid}")
    finally:
        stranger.kill()
        stranger.wait()


def test_the_cli_finds_a_running_broker_on_the_port_it_was_started_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started by hand with KAFKA_PORT=19092 (then used by `dev up`), the broker was looked
    for on 9092 from a shell without KAFKA_PORT: `dev status` said it ran there, and a second
    `dev up` waited three minutes for it and failed."""
    from shared.cli.main import local_kafka

    monkeypatch.setenv("KINSHIP_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("KAFKA_PORT", raising=False)
    broker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "kafka").mkdir()
        record = {"pid": broker.pid, "created": psutil.Process(broker.pid).create_time(),
                  "port": 19092, "controller_port": 19093}  # fmt: skip
        (tmp_path / "kafka" / "kafka.pid").write_text(json.dumps(record))
        found = local_kafka()
        assert (found.port, found.controller_port) == (19092, 19093)
        monkeypatch.setenv("KAFKA_PORT", "29092")  # said outright, it wins
        assert local_kafka().port == 29092
    finally:
        broker.kill()
        broker.wait()
    monkeypatch.delenv("KAFKA_PORT")
    assert local_kafka().port == 9092  # none running, no stack: the default
