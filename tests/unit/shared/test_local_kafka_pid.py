"""A pid the local Kafka recorded counts only while it is still that broker's process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

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
