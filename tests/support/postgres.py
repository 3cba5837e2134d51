"""PostgreSQL for tests: the server in KINSHIP_TEST_DATABASE_URL, or a throwaway cluster.

The throwaway cluster lives in a temporary folder, listens on loopback on a free port, and for
tests runs without fsync (its data is worthless after the run). Benchmarks start it durable:
fsync, synchronous commit and full-page writes on, as in production, so a figure includes
waiting for the WAL to reach the disk. As root, the server runs as `postgres`, since PostgreSQL
refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import psycopg

# Debian and Ubuntu install each major version's server in its own folder, off PATH.
PG_LIB = Path("/usr/lib/postgresql")
PG_OLDEST = 15


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Return distinct free ports: each is held until all are chosen (two free_port() calls in
    a row may hand out the same one)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _pg_bin() -> Path:
    """The newest server of version 15 or later in PG_LIB, else the one whose initdb is on PATH."""
    versions = sorted(
        (int(folder.name), folder / "bin")
        for folder in PG_LIB.glob("*")
        if folder.name.isdigit()
        and int(folder.name) >= PG_OLDEST
        and (folder / "bin" / "initdb").exists()
    )
    if versions:
        return versions[-1][1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install PostgreSQL 15+ "
        "(Debian: apt-get install postgresql) or set KINSHIP_TEST_DATABASE_URL"
    )


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp dir, for one test session."""

    def __init__(self, durable: bool = False, settings: Mapping[str, str] | None = None) -> None:
        self.durable = durable
        self.settings = dict(settings or {})  # more server settings, e.g. max_wal_size
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="kinship-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True)

    def start(self) -> str:
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        self.start_server()
        return self.admin_url

    def start_server(self) -> None:
        durability = "on" if self.durable else "off"
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync={durability} "
            f"-c synchronous_commit={durability} -c full_page_writes={durability} "
            "-c max_connections=300 -c shared_buffers=256MB"
        ) + "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop_server(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop_server("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def create_database(admin_url: str, prefix: str = "kinship_test") -> str:
    """Create a fresh database on the server and return its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    return base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name


def wait_for(admin_url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(admin_url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
