"""Shared pieces of the fake provider servers: the SQLite record store and fault injection.

Everything a fake remembers (accepted and rejected requests, injected faults, the fault
configuration and its counters) lives in one SQLite file in WAL mode, so the same fake works
in a thread of the test process and under gunicorn with several worker processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request
from jsonschema import Draft202012Validator

SPECS_DIR = Path(__file__).resolve().parent / "specs"

_DDL = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    ts REAL NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    resource_id TEXT,
    headers TEXT NOT NULL,
    body TEXT NOT NULL,
    delay_ms REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    ts REAL NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    status INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fault_config (
    provider TEXT PRIMARY KEY,
    seed INTEGER NOT NULL,
    rules TEXT NOT NULL,
    remaining TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0
);
"""

_NUMBER = {"type": "number", "minimum": 0}
FAULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "seed": {"type": "integer"},
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["kind"],
                "properties": {
                    "kind": {"enum": ["status", "delay", "timeout"]},
                    "status": {"type": "integer", "minimum": 400, "maximum": 599},
                    "retry_after": _NUMBER,
                    "delay_ms": {
                        "oneOf": [
                            _NUMBER,
                            {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2},
                        ]
                    },
                    "seconds": _NUMBER,
                    "accept": {"type": "boolean"},
                    "probability": {"type": "number", "minimum": 0, "maximum": 1},
                    "count": {"type": "integer", "minimum": 0},
                },
                "allOf": [
                    {
                        "if": {"properties": {"kind": {"const": "status"}}},
                        "then": {"required": ["status"]},
                    },
                    {
                        "if": {"properties": {"kind": {"const": "delay"}}},
                        "then": {"required": ["delay_ms"]},
                    },
                ],
            },
        },
    },
}
_FAULTS_VALIDATOR = Draft202012Validator(FAULTS_SCHEMA)


class FaultConfigError(ValueError):
    """A fault configuration does not match FAULTS_SCHEMA."""


def validate_faults(config: Mapping[str, Any]) -> None:
    """Raise FaultConfigError unless config matches FAULTS_SCHEMA."""
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _FAULTS_VALIDATOR.iter_errors(config)
    ]
    if errors:
        raise FaultConfigError("; ".join(errors))


@dataclass(frozen=True)
class FaultDecision:
    """What the fault injector decided for one request."""

    delay_s: float = 0.0
    rule: dict[str, Any] | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request a fake answered (accepted or rejected), as stored."""

    id: int
    provider: str
    ts: float
    path: str
    status: int
    resource_id: str | None
    headers: dict[str, str]
    body: Any
    delay_ms: float

    @property
    def accepted(self) -> bool:
        """Return True when the fake answered 2xx."""
        return 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return {**self.__dict__, "accepted": self.accepted}


@dataclass(frozen=True)
class RecordedFault:
    """One injected fault (status, timeout) as stored."""

    id: int
    provider: str
    ts: float
    path: str
    kind: str
    status: int

    def to_json(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return dict(self.__dict__)


def _parse_body(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class FakeRecords:
    """Read and write what the fakes stored in the SQLite file at path."""

    path: str | Path
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = str(self.path)
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_DDL)

    def _connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opened once per thread and process.

        Opening and closing a connection for every statement cost the fakes more than their
        requests (closing the last connection of a WAL database checkpoints it). Gunicorn forks
        after --preload, so a connection is never carried into another process.
        """
        held = getattr(self._local, "held", None)
        if held is None or held[0] != os.getpid():
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
            held = self._local.held = (os.getpid(), conn)
        return held[1]

    @contextlib.contextmanager
    def _conn(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        if not write:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- writing (used by the fake servers) ---

    def record_request(
        self,
        provider: str,
        path: str,
        status: int,
        headers: Mapping[str, str],
        body: str,
        resource_id: str | None = None,
        delay_ms: float = 0.0,
    ) -> None:
        """Store one answered request."""
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO requests (provider, ts, path, status, resource_id, headers, body,"
                " delay_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    provider,
                    time.time(),
                    path,
                    status,
                    resource_id,
                    json.dumps(dict(headers)),
                    body,
                    delay_ms,
                ),
            )

    def record_fault(self, provider: str, path: str, kind: str, status: int) -> None:
        """Store one injected fault."""
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO faults (provider, ts, path, kind, status) VALUES (?, ?, ?, ?, ?)",
                (provider, time.time(), path, kind, status),
            )

    # --- fault configuration ---

    def set_faults(self, provider: str, config: Mapping[str, Any]) -> None:
        """Replace provider's fault rules (see FAULTS_SCHEMA) and restart their counters."""
        validate_faults(config)
        rules = list(config.get("rules", []))
        remaining = [rule.get("count") for rule in rules]
        with self._conn(write=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO fault_config (provider, seed, rules, remaining, seq)"
                " VALUES (?, ?, ?, ?, 0)",
                (provider, int(config.get("seed", 0)), json.dumps(rules), json.dumps(remaining)),
            )

    def clear_faults(self, provider: str) -> None:
        """Remove provider's fault rules."""
        with self._conn() as conn:
            conn.execute("DELETE FROM fault_config WHERE provider = ?", (provider,))

    def fault_config(self, provider: str) -> dict[str, Any]:
        """Return provider's fault rules with the remaining count of each."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT seed, rules, remaining, seq FROM fault_config WHERE provider = ?",
                (provider,),
            ).fetchone()
        if row is None:
            return {"seed": 0, "rules": [], "remaining": [], "seen": 0}
        return {
            "seed": row[0],
            "rules": json.loads(row[1]),
            "remaining": json.loads(row[2]),
            "seen": row[3],
        }

    def decide_fault(self, provider: str) -> FaultDecision:
        """Draw the faults for provider's next request and consume their counts atomically."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT rules FROM fault_config WHERE provider = ?", (provider,)
            ).fetchone()
        if row is None or row[0] == "[]":
            return FaultDecision()
        with self._conn(write=True) as conn:
            row = conn.execute(
                "SELECT seed, rules, remaining, seq FROM fault_config WHERE provider = ?",
                (provider,),
            ).fetchone()
            if row is None:
                return FaultDecision()
            seed, rules, remaining, seq = row[0], json.loads(row[1]), json.loads(row[2]), row[3]
            seq += 1
            delay_s, chosen = 0.0, None
            for i, rule in enumerate(rules):
                if remaining[i] is not None and remaining[i] <= 0:
                    continue
                # One RNG per (seed, request number, rule): the same seed gives the same
                # decisions in arrival order, whatever the number of workers.
                rng = random.Random(f"{seed}:{seq}:{i}")
                if "probability" in rule and rng.random() >= rule["probability"]:
                    continue
                if remaining[i] is not None:
                    remaining[i] -= 1
                if rule["kind"] == "delay":
                    delay_ms = rule["delay_ms"]
                    if isinstance(delay_ms, list):
                        delay_ms = rng.uniform(delay_ms[0], delay_ms[1])
                    delay_s += float(delay_ms) / 1000.0
                else:
                    chosen = rule
                    break
            conn.execute(
                "UPDATE fault_config SET remaining = ?, seq = ? WHERE provider = ?",
                (json.dumps(remaining), seq, provider),
            )
        return FaultDecision(delay_s=delay_s, rule=chosen)

    # --- reading (used by tests and benchmarks) ---

    def requests(
        self, provider: str | None = None, *, accepted: bool | None = True
    ) -> list[RecordedRequest]:
        """Return stored requests in arrival order (accepted only by default; None for all)."""
        sql = "SELECT id, provider, ts, path, status, resource_id, headers, body, delay_ms"
        sql += " FROM requests WHERE (? IS NULL OR provider = ?)"
        if accepted is not None:
            sql += " AND (status BETWEEN 200 AND 299) = ?"
        sql += " ORDER BY id"
        params: tuple[Any, ...] = (provider, provider)
        if accepted is not None:
            params += (int(accepted),)
        with self._conn() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [
            RecordedRequest(
                r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), _parse_body(r[7]), r[8]
            )
            for r in rows
        ]

    def rejected(self, provider: str | None = None) -> list[RecordedRequest]:
        """Return the requests the fake answered with a 4xx validation or auth error."""
        return self.requests(provider, accepted=False)

    def sendgrid_requests(self) -> list[RecordedRequest]:
        """Return accepted SendGrid mail sends; .body is the JSON body as sent."""
        return self.requests("sendgrid")

    def sendgrid_recipients(self) -> list[tuple[str, dict[str, str]]]:
        """Return (email, custom_args) for every to/cc/bcc of every accepted personalization.

        custom_args merges the mail-level custom_args with the personalization's own (which win),
        as SendGrid does.
        """
        out: list[tuple[str, dict[str, str]]] = []
        for req in self.sendgrid_requests():
            base = req.body.get("custom_args") or {}
            for pers in req.body["personalizations"]:
                args = {**base, **(pers.get("custom_args") or {})}
                for kind in ("to", "cc", "bcc"):
                    out.extend((r["email"], dict(args)) for r in pers.get(kind, []))
        return out

    def twilio_messages(self) -> list[RecordedRequest]:
        """Return accepted Twilio message creates (.body: form fields, .resource_id: sid)."""
        return self.requests("twilio")

    def faults(self, provider: str | None = None) -> list[RecordedFault]:
        """Return injected faults in order."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, provider, ts, path, kind, status FROM faults"
                " WHERE (? IS NULL OR provider = ?) ORDER BY id",
                (provider, provider),
            ).fetchall()
        return [RecordedFault(*r) for r in rows]

    def count(self, provider: str | None = None) -> int:
        """Return the number of accepted requests."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM requests WHERE (? IS NULL OR provider = ?)"
                " AND status BETWEEN 200 AND 299",
                (provider, provider),
            ).fetchone()
        return int(row[0])

    def clear(self, provider: str | None = None) -> None:
        """Delete recorded requests and faults (the fault configuration stays)."""
        with self._conn(write=True) as conn:
            for table in ("requests", "faults"):
                conn.execute(
                    f"DELETE FROM {table} WHERE (? IS NULL OR provider = ?)", (provider, provider)
                )


def with_faults(
    store: FakeRecords,
    provider: str,
    fault_response: Callable[[int, float | None], Response],
    handler: Callable[[float], Response],
) -> Response:
    """Apply provider's injected faults around handler(delay_ms), which answers the request."""
    decision = store.decide_fault(provider)
    if decision.delay_s:
        time.sleep(decision.delay_s)
    delay_ms = decision.delay_s * 1000.0
    rule = decision.rule
    if rule is None:
        return handler(delay_ms)
    if rule["kind"] == "status":
        store.record_fault(provider, request.path, "status", rule["status"])
        return fault_response(rule["status"], rule.get("retry_after"))
    # "timeout": answer only after the client has given up. With accept, the request is first
    # processed (and recorded if valid), like a provider that accepted it but whose answer was lost.
    response = handler(delay_ms) if rule.get("accept") else fault_response(504, None)
    store.record_fault(provider, request.path, "timeout", response.status_code)
    time.sleep(float(rule.get("seconds", 30.0)))
    return response


def control_blueprint(store: FakeRecords, provider: str) -> Blueprint:
    """Return the /_fake/* routes that inspect records and configure faults over HTTP."""
    bp = Blueprint(f"fake_{provider}_control", __name__, url_prefix="/_fake")

    @bp.get("/health")
    def health() -> Response:
        return jsonify(ok=True, provider=provider)

    @bp.get("/requests")
    def list_requests() -> Response:
        return jsonify(
            count=store.count(provider),
            requests=[r.to_json() for r in store.requests(provider)],
            rejected=[r.to_json() for r in store.rejected(provider)],
            faults=[f.to_json() for f in store.faults(provider)],
        )

    @bp.delete("/requests")
    def clear_requests() -> tuple[str, int]:
        store.clear(provider)
        return "", 204

    @bp.get("/faults")
    def get_faults() -> Response:
        return jsonify(store.fault_config(provider))

    @bp.post("/faults")
    def set_faults() -> Response | tuple[Response, int]:
        config = request.get_json(force=True, silent=True)
        if not isinstance(config, dict):
            return jsonify(error="expected a JSON object"), 400
        try:
            store.set_faults(provider, config)
        except FaultConfigError as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(store.fault_config(provider))

    @bp.delete("/faults")
    def clear_faults() -> tuple[str, int]:
        store.clear_faults(provider)
        return "", 204

    return bp


def pick_headers(headers: Iterable[tuple[str, str]], names: tuple[str, ...]) -> dict[str, str]:
    """Return the headers worth recording: the given names plus every X-* header."""
    wanted = {n.lower() for n in names}
    return {k: v for k, v in headers if k.lower() in wanted or k.lower().startswith("x-")}


def retry_after_header(seconds: float | None) -> str:
    """Return a Retry-After value in seconds (1 when the rule gives none)."""
    value = 1.0 if seconds is None else float(seconds)
    return str(int(value)) if value.is_integer() else str(value)
