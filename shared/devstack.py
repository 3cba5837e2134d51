"""The whole local stack in the background: Kafka, migrations, three services and their workers.

`kinship dev up` starts each part as its own session (process group) with a pid file under
``var/dev`` and a log under ``var/log``; `down` sends SIGTERM (the services finish their
requests, the workers their batches: outbox rows and consumer offsets commit only after their
effects, so a stop never loses an event) and SIGKILLs only what outlives the grace period.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from kafka.errors import KafkaError

from shared.config import SERVICES
from shared.events.catalog import CHANNELS, sender_group
from shared.kafka import make_admin
from shared.local_kafka import (
    PROJECT_ROOT,
    LocalKafka,
    LocalKafkaError,
    find_java,
    port_is_open,
)

DEFAULT_PORTS = {"campaigns": 8001, "petitions": 8002, "notifications": 8003}
GUNICORN_CONF = PROJECT_ROOT / "deploy" / "gunicorn.conf.py"
HOST = "127.0.0.1"
# The workers' consumer groups: each service's own (named after it), and notifications'
# senders, one group per channel.
CONSUMER_GROUPS = (*SERVICES, *(sender_group("notifications", c) for c in CHANNELS))


# Behind one public host every service's links share a base; on the local stack each
# service has its own port, and a service's links go to the one that answers them.
LINKS_ANSWERED_BY = {"campaigns": "notifications"}


class DevStackError(RuntimeError):
    """The local stack could not be started or stopped; the message says what to do."""


def service_ports(
    environ: Mapping[str, str], recorded: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Return each service's port: KINSHIP_<SERVICE>_PORT, else the one the running stack
    was started on (recorded), else 8001-8003."""
    ports = {}
    for name in SERVICES:
        raw = environ.get(f"KINSHIP_{name.upper()}_PORT", "").strip()
        try:
            ports[name] = int(raw) if raw else (recorded or {}).get(name, DEFAULT_PORTS[name])
        except ValueError:
            raise DevStackError(f"KINSHIP_{name.upper()}_PORT must be a port number") from None
    return ports


def recorded_ports(var: Path) -> dict[str, int]:
    """The ports `up` started the services on (stack.json, while the stack runs), if any."""
    urls = read_stack_state(var).get("urls")
    ports = {}
    for name, url in urls.items() if isinstance(urls, dict) else ():
        port = str(url).rpartition(":")[2]
        if name in SERVICES and port.isdigit():
            ports[name] = int(port)
    return ports


def sqlite_database(environ: Mapping[str, str], service: str) -> bool:
    """Whether a service runs on SQLite here (its own URL, the shared one, or the default)."""
    url = environ.get(f"{service.upper()}_DATABASE_URL") or environ.get("DATABASE_URL") or ""
    return not url.strip() or url.strip().startswith("sqlite")


@dataclass(frozen=True)
class Part:
    """One background process of the stack."""

    name: str
    service: str
    argv: tuple[str, ...]
    port: int | None = None

    @property
    def is_web(self) -> bool:
        return self.port is not None

    @property
    def url(self) -> str | None:
        return f"http://{HOST}:{self.port}" if self.port else None


@dataclass(frozen=True)
class PartStatus:
    name: str
    running: bool
    pid: int | None
    url: str | None
    ready: bool | None
    log: Path


@dataclass
class UpReport:
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    kafka: str = ""


class DevStack:
    """Start, stop and inspect the local stack whose state lives in ``var``."""

    def __init__(
        self,
        var: Path,
        kafka: LocalKafka,
        environ: Mapping[str, str] | None = None,
        echo: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.var = Path(var).resolve()
        self.kafka = kafka
        self.environ = dict(os.environ if environ is None else environ)
        self.echo = echo
        # Those `up` recorded unless named again: a second `up`, `status` or `down` run
        # without the variables the first had must not look at the default ports.
        self.ports = service_ports(self.environ, recorded_ports(self.var))
        # A production-like Kafka named in the environment replaces the local broker.
        self.external_kafka = self.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None
        self.run_dir = self.var / "dev"
        self.log_dir = self.var / "log"
        self._kafka_owned = False

    # -- the parts ---------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return self.external_kafka or self.kafka.bootstrap

    def parts(self) -> list[Part]:
        """Return the parts in start order: workers first (they create topics), then the APIs."""
        python = sys.executable
        workers = [
            Part(f"{name}-worker", name, (python, "-m", f"services.{name}.worker"))
            for name in SERVICES
        ]
        webs = [
            Part(
                f"{name}-api",
                name,
                (
                    python,
                    "-m",
                    "gunicorn",
                    "-c",
                    str(GUNICORN_CONF),
                    "--bind",
                    f"{HOST}:{self.ports[name]}",
                    "--name",
                    f"kinship-{name}",
                    f"services.{name}:create_app()",
                ),
                self.ports[name],
            )
            for name in SERVICES
        ]
        return workers + webs

    def env_for(self, service: str | None) -> dict[str, str]:
        """Return the environment of a part: shared settings plus the service's own URL."""
        env = dict(self.environ)
        env["KINSHIP_VAR_DIR"] = str(self.var)
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("GUNICORN_WORKERS", "1")
        env.setdefault("GUNICORN_THREADS", "4")
        if service is not None and sqlite_database(env, service):
            # sqlite3 waits for a lock in C, which a greenlet cannot leave: one request waiting
            # on a worker's write would hold up every request of a gevent worker, the
            # heartbeat too. Threads wait apart (docs/runtime-facts.md).
            env.setdefault("GUNICORN_WORKER_CLASS", "gthread")
        # Everything local listens on loopback, a developer's webhook receiver (and the demo's)
        # too; production keeps refusing private addresses unless configured otherwise.
        env.setdefault("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
        if service is not None and not self.environ.get("KINSHIP_PUBLIC_BASE_URL"):
            # Links in emails point at the service that answers them: confirmations at
            # petitions, unsubscribe and preference pages at notifications, and so do the
            # links of campaigns' alert previews (notifications' /preview page).
            answered_by = LINKS_ANSWERED_BY.get(service, service)
            env["KINSHIP_PUBLIC_BASE_URL"] = f"http://{HOST}:{self.ports[answered_by]}"
        return env

    def _pid_file(self, part: Part) -> Path:
        return self.run_dir / f"{part.name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _process(self, part: Part) -> psutil.Process | None:
        """Return the live process a pid file names, if it is still the one we started."""
        try:
            record = json.loads(self._pid_file(part).read_text())
            proc = psutil.Process(int(record["pid"]))
            # A recycled pid belongs to another process: compare start times.
            if abs(proc.create_time() - float(record["created"])) > 1.0:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (OSError, ValueError, KeyError, psutil.Error):
            return None

    # -- up ----------------------------------------------------------------------------------

    def up(self, timeout: float = 180.0) -> UpReport:
        """Start what is not running, migrate, and wait until every API is ready (idempotent)."""
        report = UpReport()
        parts = self.parts()
        missing = [p for p in parts if self._process(p) is None]
        report.already_running = [p.name for p in parts if p not in missing]
        self._preflight(missing)
        for folder in (self.run_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        report.kafka = self._start_kafka(timeout)
        self._write_state(spawning=[p.name for p in missing])
        self._migrate()
        for part in missing:
            self._spawn(part)
            report.started.append(part.name)
        self.wait_ready(parts, timeout)
        self.wait_for_consumers(timeout)
        return report

    def _preflight(self, missing: list[Part]) -> None:
        """Refuse to start anything when a port is taken or Java is missing."""
        for part in missing:
            if part.port is not None and port_is_open(HOST, part.port):
                raise DevStackError(
                    f"port {part.port} ({part.service}) is taken by another process; stop it "
                    f"or choose another port with KINSHIP_{part.service.upper()}_PORT."
                )
        if self.external_kafka is None and self.kafka.running_pid() is None:
            try:
                find_java(self.environ)
            except LocalKafkaError as exc:
                raise DevStackError(
                    f"{exc} Or point KAFKA_BOOTSTRAP_SERVERS at a running Kafka."
                ) from exc

    def _start_kafka(self, timeout: float) -> str:
        if self.external_kafka is not None:
            return f"external Kafka at {self.external_kafka}"
        was_running = self.kafka.running_pid() is not None
        self.echo("Kafka: already running" if was_running else "Kafka: starting")
        try:
            status = self.kafka.start(timeout=timeout)
        except LocalKafkaError as exc:
            raise DevStackError(f"Kafka did not start: {exc}") from exc
        state = self._read_state()
        # `down` stops Kafka only if `up` started it (not a broker the user started by hand).
        owned = bool(state.get("kafka_owned")) or not was_running
        self._kafka_owned = owned
        return f"Kafka on {status.bootstrap} (pid {status.pid})"

    def _read_state(self) -> dict[str, object]:
        try:
            data = json.loads((self.run_dir / "stack.json").read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_state(self, spawning: list[str]) -> None:
        backends = self._read_state().get("backends")
        if "notifications-worker" in spawning or not isinstance(backends, dict):
            # What the worker (the one that sends) started now sends with: it inherits this
            # environment. One already running keeps what it was started with.
            email, sms = notification_backends()
            backends = {"email": email, "sms": sms}
        state = {
            "var_dir": str(self.var),
            "kafka_bootstrap": self.bootstrap,
            "kafka_owned": self._kafka_owned,
            "urls": {name: f"http://{HOST}:{port}" for name, port in self.ports.items()},
            "backends": backends,
        }
        (self.run_dir / "stack.json").write_text(json.dumps(state, indent=2) + "\n")

    def _migrate(self) -> None:
        self.echo("Migrations: applying")
        log = self.log_file("migrate")
        with open(log, "ab") as out:
            result = subprocess.run(
                [sys.executable, "-m", "shared.cli.main", "migrate"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=PROJECT_ROOT,
                env=self.env_for(None),
            )
        if result.returncode != 0:
            raise DevStackError(f"migrations failed (see {log}):\n{tail(log)}")

    def _spawn(self, part: Part) -> None:
        self.echo(f"{part.name}: starting")
        with open(self.log_file(part.name), "ab") as out:
            proc = subprocess.Popen(
                part.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=PROJECT_ROOT,
                env=self.env_for(part.service),
                # Its own session: `down` can find and signal everything the part forked.
                start_new_session=True,
            )
        created = psutil.Process(proc.pid).create_time()
        record = {"pid": proc.pid, "created": created, "argv": list(part.argv)}
        self._pid_file(part).write_text(json.dumps(record) + "\n")

    def wait_ready(self, parts: list[Part], timeout: float) -> None:
        """Block until every API answers /readyz with 200 and every worker is alive."""
        deadline = time.monotonic() + timeout
        pending = list(parts)
        while pending:
            for part in list(pending):
                if self._process(part) is None:
                    log = self.log_file(part.name)
                    raise DevStackError(
                        f"{part.name} exited during start-up (log: {log}):\n{tail(log)}"
                    )
                if not part.is_web or readyz(part) is True:
                    pending.remove(part)
            if not pending:
                break
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in pending)
                raise DevStackError(
                    f"not ready within {timeout:.0f} s: {names} (logs in {self.log_dir}); "
                    "`kinship dev down` stops what started."
                )
            time.sleep(0.5)
        # A worker that dies on its first Kafka contact does so within a second or two.
        time.sleep(1.0)
        for part in parts:
            if self._process(part) is None:
                log = self.log_file(part.name)
                raise DevStackError(f"{part.name} exited (log: {log}):\n{tail(log)}")

    def wait_for_consumers(self, timeout: float) -> None:
        """Block until the workers' consumer groups hold their partitions (Stable).

        A group's first join on a fresh broker can take tens of seconds; until it is done,
        a key issued or a campaign created right after `up` does not reach the other services,
        and a first request that needs it fails.
        """
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        with make_admin(self.bootstrap, "kinship-dev") as admin:
            while True:
                try:
                    described = admin.describe_groups(list(CONSUMER_GROUPS))
                    seen = {
                        group: str(described.get(group, {}).get("group_state"))
                        for group in CONSUMER_GROUPS
                    }
                except KafkaError:  # the coordinator still loading: ask again
                    seen = {}
                if seen and all(state == "Stable" for state in seen.values()):
                    return
                if time.monotonic() > deadline:
                    raise DevStackError(
                        f"the workers' consumer groups did not settle within {timeout:.0f} s "
                        f"({seen or 'no answer from Kafka'}; logs in {self.log_dir})"
                    )
                time.sleep(0.5)

    # -- down --------------------------------------------------------------------------------

    def down(self, grace: float = 60.0) -> list[str]:
        """Stop the APIs, then the workers, then Kafka if `up` started it; return what stopped."""
        stopped: list[str] = []
        parts = self.parts()
        # APIs first (no new work), then workers (they finish their batch and relay the rest).
        for tier in ([p for p in parts if p.is_web], [p for p in parts if not p.is_web]):
            stopped += self._stop_tier(tier, grace)
        state = self._read_state()
        if self.external_kafka is None and state.get("kafka_owned"):
            if self.kafka.stop():
                stopped.append("kafka")
        (self.run_dir / "stack.json").unlink(missing_ok=True)
        return stopped

    def _stop_tier(self, tier: list[Part], grace: float) -> list[str]:
        procs: list[psutil.Process] = []
        names: list[str] = []
        for part in tier:
            proc = self._process(part)
            if proc is None:
                self._pid_file(part).unlink(missing_ok=True)
                continue
            names.append(part.name)
            group = _session_members(proc.pid)
            procs += [proc, *group]
            self.echo(f"{part.name}: stopping (pid {proc.pid})")
            try:
                # Only the leader: gunicorn's master stops its workers gracefully itself.
                proc.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
        unique = list({p.pid: p for p in procs}.values())
        _, alive = psutil.wait_procs(unique, timeout=grace)
        for proc in alive:
            self.echo(f"pid {proc.pid} outlived {grace:.0f} s after SIGTERM: killing it")
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        for part in tier:
            # Anything the part forked that escaped its parent goes too.
            for leftover in _session_members(self._recorded_pid(part)):
                try:
                    leftover.kill()
                except psutil.NoSuchProcess:
                    pass
            self._pid_file(part).unlink(missing_ok=True)
        return names

    def _recorded_pid(self, part: Part) -> int | None:
        try:
            return int(json.loads(self._pid_file(part).read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    # -- status ------------------------------------------------------------------------------

    def status(self) -> list[PartStatus]:
        """Return the state of Kafka and of each part."""
        rows = []
        if self.external_kafka is None:
            kafka = self.kafka.status()
            rows.append(
                PartStatus(
                    "kafka",
                    kafka.running,
                    kafka.pid,
                    kafka.bootstrap,
                    None,
                    self.kafka.home / "logs" / "server.log",
                )
            )
        for part in self.parts():
            proc = self._process(part)
            ready = readyz(part) if proc is not None and part.is_web else None
            rows.append(
                PartStatus(
                    part.name,
                    proc is not None,
                    proc.pid if proc else None,
                    part.url,
                    ready,
                    self.log_file(part.name),
                )
            )
        return rows

    def pids(self) -> list[int]:
        """Return every live pid of the stack (parts, their children, Kafka): for tests."""
        found: set[int] = set()
        for part in self.parts():
            proc = self._process(part)
            if proc is not None:
                found.add(proc.pid)
                found.update(p.pid for p in _session_members(proc.pid))
        kafka_pid = self.kafka.running_pid()
        if kafka_pid is not None and self.external_kafka is None:
            found.add(kafka_pid)
        return sorted(found)


def _session_members(leader: int | None) -> list[psutil.Process]:
    """Return the live processes of the session a part's leader started."""
    if leader is None:
        return []
    members = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != leader and os.getsid(proc.pid) == leader:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    members.append(proc)
        except (OSError, psutil.Error):
            continue
    return members


def readyz(part: Part, timeout: float = 2.0) -> bool:
    """Return True when the part's /readyz answers 200."""
    if part.url is None:
        return False
    try:
        with urllib.request.urlopen(f"{part.url}/readyz", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tail(path: Path, lines: int = 25) -> str:
    """Return the last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def notification_backends() -> tuple[str, str]:
    """The email and SMS backends notifications runs with in this environment."""
    from shared.config import Settings

    settings = Settings.from_env("notifications")
    return settings.email_backend, settings.sms_backend


def read_stack_state(var: Path) -> dict[str, object]:
    """Return what `up` recorded about the running stack (URLs, Kafka), or {}."""
    try:
        data = json.loads((Path(var) / "dev" / "stack.json").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
