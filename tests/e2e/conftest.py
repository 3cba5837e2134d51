"""The whole stack, started the way a volunteer starts it: `kinship dev up` in a clean folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.devstack import DevStack
from shared.local_kafka import LocalKafka
from tests.support.postgres import free_ports

KINSHIP = str(Path(sys.executable).parent / "kinship")
# Settings from the developer's shell that would point the stack elsewhere.
FOREIGN = ("KAFKA_BOOTSTRAP_SERVERS", "KINSHIP_PUBLIC_BASE_URL", "DATABASE_URL", "EMAIL_BACKEND",
           "SMS_BACKEND", "KINSHIP_ENV")  # fmt: skip
FOREIGN_PREFIXES = ("SENDGRID_", "TWILIO_", "CAMPAIGNS_", "PETITIONS_", "NOTIFICATIONS_")


def clean_env(var: Path) -> dict[str, str]:
    """Return an environment with free ports and a fresh var folder, and nothing foreign."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in FOREIGN and not k.startswith(FOREIGN_PREFIXES) and not k.startswith("KINSHIP_")
    }
    if "KINSHIP_CACHE_DIR" in os.environ:
        env["KINSHIP_CACHE_DIR"] = os.environ["KINSHIP_CACHE_DIR"]
    campaigns, petitions, notifications, kafka_port, controller_port = free_ports(5)
    env.update(
        KINSHIP_VAR_DIR=str(var),
        KINSHIP_CAMPAIGNS_PORT=str(campaigns),
        KINSHIP_PETITIONS_PORT=str(petitions),
        KINSHIP_NOTIFICATIONS_PORT=str(notifications),
        KAFKA_PORT=str(kafka_port),
        KAFKA_CONTROLLER_PORT=str(controller_port),
    )
    return env


def kinship(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the `kinship` command as a user would."""
    return subprocess.run(
        [KINSHIP, *args], env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@dataclass
class Stack:
    env: dict[str, str]
    var: Path
    up: subprocess.CompletedProcess[str]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.env[f'KINSHIP_{service.upper()}_PORT']}"

    def handle(self) -> DevStack:
        """Return a DevStack over the same state, to inspect pids."""
        kafka = LocalKafka(
            self.var / "kafka",
            port=int(self.env["KAFKA_PORT"]),
            controller_port=int(self.env["KAFKA_CONTROLLER_PORT"]),
        )
        return DevStack(self.var, kafka, environ=self.env)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`kinship dev up` from a clean state; `kinship dev down` at the end whatever happened."""
    var = tmp_path_factory.mktemp("kinship-var")
    env = clean_env(var)
    up = kinship(env, "dev", "up", "--timeout", "240")
    running = Stack(env, var, up)
    try:
        assert up.returncode == 0, f"dev up failed:\n{up.stdout}\n{up.stderr}"
        yield running
    finally:
        leftovers = running.handle().pids()
        kinship(env, "dev", "down")
        import psutil

        for pid in leftovers:  # a safety net only: test_dev_down_leaves_nothing asserts
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
