"""A real single-node Apache Kafka (KRaft, broker + controller) for local runs and tests.

The broker runs from the official ``org.apache.kafka:kafka_2.13`` jars, which ``mvn`` resolves
once from ``deploy/kafka/pom.xml`` into a cache outside the repository, so later starts need no
network. Data lives under the given home directory (``var/kafka`` by default) across restarts.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

KAFKA_VERSION = "4.3.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
POM = PROJECT_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J_CONFIG = PROJECT_ROOT / "deploy" / "kafka" / "log4j2.properties"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
# The JVM flags of Kafka's own kafka-run-class.sh, with a heap sized for a laptop or CI.
JVM_FLAGS = [
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
]


class LocalKafkaError(RuntimeError):
    """The local broker could not be prepared, started or stopped."""


def cache_dir() -> Path:
    """Return where the broker jars are cached (outside the repository)."""
    base = os.environ.get("KINSHIP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kinship"
    )
    return Path(base) / f"kafka-{KAFKA_VERSION}" / "libs"


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return True


JAVA_NEEDED = (
    "Java 17 or newer is needed to run Kafka 4.x; install it "
    "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
)


def find_java(environ: Mapping[str, str]) -> str:
    """Return the java to run Kafka with ($JAVA_HOME's, else the one on PATH); raise
    LocalKafkaError when there is none or it is older than 17 (Kafka 4.x's classes would not
    load, and the broker would die with a class-version error instead of this message)."""
    java_home = environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise LocalKafkaError(f"{JAVA_NEEDED}.")
    try:
        said = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalKafkaError(f"{JAVA_NEEDED} ({java} did not run: {exc}).") from exc
    major = java_major(said)
    if major is None or major < 17:
        found = f"Java {major}" if major is not None else "no Java version"
        raise LocalKafkaError(f"{JAVA_NEEDED}: {java} says {found}.")
    return java


def java_major(version_output: str) -> int | None:
    """The major version in `java -version`'s output: 'version "17.0.15"' is 17, the old
    scheme's 'version "1.8.0_402"' is 8."""
    found = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if found is None:
        return None
    first, second = int(found.group(1)), found.group(2)
    return int(second) if first == 1 and second is not None else first


@dataclass(frozen=True)
class KafkaStatus:
    running: bool
    pid: int | None
    bootstrap: str
    home: Path
    version: str = KAFKA_VERSION


class LocalKafka:
    """Start, stop and inspect one local broker whose state lives in ``home``."""

    def __init__(
        self,
        home: Path,
        port: int = 9092,
        controller_port: int | None = None,
        heap: str = "512m",
        host: str = "127.0.0.1",
        sasl_users: Mapping[str, str] | None = None,
    ) -> None:
        """sasl_users: clients must sign in (SASL PLAIN over SASL_PLAINTEXT) as one of these
        users and passwords, as a managed cluster asks (tests of the clients' security)."""
        self.home = Path(home).resolve()
        self.host = host
        self.port = port
        self.controller_port = controller_port or port + 1
        self.heap = heap
        self.sasl_users = dict(sasl_users or {})

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def _pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def _data_dir(self) -> Path:
        return self.home / "data"

    @property
    def _log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def _config_file(self) -> Path:
        return self.home / "server.properties"

    # -- jars ------------------------------------------------------------------------------------

    def ensure_jars(self) -> Path:
        """Resolve the broker jars with Maven once; return the directory that holds them."""
        libs = cache_dir()
        if libs.is_dir() and any(libs.glob("kafka_2.13-*.jar")):
            return libs
        if shutil.which("mvn") is None:
            raise LocalKafkaError(
                "Maven (mvn) is needed once to fetch the Kafka jars from Maven Central; "
                "install it (Debian: apt-get install maven) and try again."
            )
        libs.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
        cmd = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            raise LocalKafkaError(
                "mvn could not fetch the Kafka jars:\n" + (result.stdout + result.stderr)[-2000:]
            )
        # Rename is atomic, so a concurrent or interrupted fetch never leaves a half cache.
        try:
            staging.rename(libs)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
        return libs

    # -- lifecycle -------------------------------------------------------------------------------

    def _java(self) -> str:
        return find_java(os.environ)

    def _classpath(self) -> str:
        return os.pathsep.join(str(jar) for jar in sorted(self.ensure_jars().glob("*.jar")))

    def _write_config(self) -> None:
        internal_rf = [
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
            "transaction.state.log.min.isr",
            "share.coordinator.state.topic.replication.factor",
            "share.coordinator.state.topic.min.isr",
        ]
        listener = "SASL_PLAINTEXT" if self.sasl_users else "PLAINTEXT"
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers={self.host}:{self.controller_port}",
            f"listeners={listener}://{self.host}:{self.port},"
            f"CONTROLLER://{self.host}:{self.controller_port}",
            f"advertised.listeners={listener}://{self.host}:{self.port}",
            "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={listener}",
            f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{listener}:{listener}",
            *self._sasl_config(),
            f"log.dirs={self._data_dir}",
            "num.partitions=3",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "offsets.topic.num.partitions=10",
            # Consumers join in milliseconds instead of waiting 3 s for more members.
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            # A segment is deleted whole once its newest record is past retention: rolled
            # daily, a signer's details (signature.created) outlive an erasure here by at most
            # 8 days, not 14 (docs/architecture.md, erasure and Kafka).
            "log.roll.hours=24",
            "log.segment.bytes=104857600",
            *(f"{key}=1" for key in internal_rf),
        ]
        self._config_file.write_text("\n".join(lines) + "\n")

    def _sasl_config(self) -> list[str]:
        if not self.sasl_users:
            return []
        broker = secrets.token_urlsafe(16)
        users = " ".join(f'user_{name}="{password}"' for name, password in self.sasl_users.items())
        return [
            "sasl.enabled.mechanisms=PLAIN",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config="
            "org.apache.kafka.common.security.plain.PlainLoginModule required"
            f' username="broker" password="{broker}" user_broker="{broker}" {users};',
        ]

    def _format_storage(self, java: str, classpath: str) -> None:
        if (self._data_dir / "meta.properties").exists():
            return
        cluster_id = self._run_tool(java, classpath, ["random-uuid"]).strip().splitlines()[-1]
        self._run_tool(
            java,
            classpath,
            ["format", "--standalone", "-t", cluster_id, "-c", str(self._config_file)],
        )

    def _run_tool(self, java: str, classpath: str, args: list[str]) -> str:
        cmd = [
            java,
            "-Xmx256m",
            "-cp",
            classpath,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self._log_dir}",
            STORAGE_TOOL,
            *args,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise LocalKafkaError(f"{' '.join(args[:1])} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def running_pid(self) -> int | None:
        """Return the broker's pid when the one this home started is alive."""
        record = self.running_record()
        return None if record is None else int(record["pid"])

    def running_record(self) -> dict[str, Any] | None:
        """Return what starting the broker of this home recorded (pid, start time, ports)
        while that broker is alive, else None.

        After a reboot (or a container's restart) the recorded pid may name another process:
        taken for the broker, `dev up` waited for a Kafka that never came and `stop` signalled
        that process. The pid counts only with the start time recorded beside it (a file
        written before that, only if the process is a Kafka broker)."""
        try:
            text = self._pid_file.read_text().strip()
            record = json.loads(text) if text.startswith("{") else {"pid": int(text)}
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not _pid_alive(pid):
            return None
        try:
            process = psutil.Process(pid)
            if "created" in record:
                if abs(process.create_time() - float(record["created"])) > 1.0:
                    return None
            elif "kafka.Kafka" not in process.cmdline():
                return None
        except (psutil.Error, ValueError, TypeError):
            return None
        return dict(record)

    def start(self, timeout: float = 90.0) -> KafkaStatus:
        """Start the broker (formatting storage on first use) and wait until it answers."""
        if self.running_pid() is not None:
            self.wait_ready(timeout)
            return self.status()
        if port_is_open(self.host, self.port) or port_is_open(self.host, self.controller_port):
            raise LocalKafkaError(
                f"port {self.port} or {self.controller_port} on {self.host} is taken by another "
                "process; stop it or choose another port (KAFKA_PORT)."
            )
        java = self._java()
        classpath = self._classpath()
        for folder in (self.home, self._data_dir, self._log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._format_storage(java, classpath)
        cmd = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            *JVM_FLAGS,
            f"-Dkafka.logs.dir={self._log_dir}",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            classpath,
            MAIN_CLASS,
            str(self._config_file),
        ]
        stdout = open(self._log_dir / "stdout.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            cmd,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.home,
        )
        stdout.close()
        created = psutil.Process(proc.pid).create_time()
        self._pid_file.write_text(
            json.dumps(
                {
                    "pid": proc.pid,
                    "created": created,
                    # Found again by whoever looks without KAFKA_PORT set (status, a second up).
                    "port": self.port,
                    "controller_port": self.controller_port,
                }
            )
        )
        try:
            self.wait_ready(timeout, proc=proc)
        except LocalKafkaError:
            self.stop()
            raise
        return self.status()

    def wait_ready(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        """Block until a metadata request succeeds; fail fast if the JVM exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise LocalKafkaError(
                    f"the Kafka JVM exited with code {proc.returncode}:\n{self.log_tail()}"
                )
            if port_is_open(self.host, self.port) and broker_answers(
                self.bootstrap, security=None if self.sasl_users else PLAINTEXT
            ):
                return
            time.sleep(0.25)
        raise LocalKafkaError(f"Kafka did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker with SIGTERM (SIGKILL after timeout); return True if one was running."""
        pid = self.running_pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                _reap(pid)
                time.sleep(0.05)
        _reap(pid)
        self._pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would (for fault tests)."""
        pid = self.running_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                _reap(pid)
                time.sleep(0.05)
            _reap(pid)

    def status(self) -> KafkaStatus:
        pid = self.running_pid()
        return KafkaStatus(
            running=pid is not None, pid=pid, bootstrap=self.bootstrap, home=self.home
        )

    def log_tail(self, lines: int = 30) -> str:
        chunks = []
        for name in ("stdout.log", "server.log"):
            path = self._log_dir / name
            if path.exists():
                chunks.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(chunks[-lines:])


def _reap(pid: int) -> None:
    """Collect a child that has exited so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


PLAINTEXT = {"security_protocol": "PLAINTEXT"}


def broker_answers(
    bootstrap: str, timeout_ms: int = 3000, security: Mapping[str, str] | None = None
) -> bool:
    """Return True when a metadata request to the cluster succeeds (connecting as the
    process's clients do, unless security says otherwise)."""
    from shared.kafka import make_admin

    try:
        with make_admin(
            bootstrap,
            f"kinship-probe-{uuid.uuid4().hex[:6]}",
            security,
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        ) as admin:
            return bool(admin.describe_cluster().get("brokers"))
    except Exception:
        return False
