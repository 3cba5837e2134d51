"""A web app whose one route waits a second on PostgreSQL: whether a gunicorn worker serves
other requests meanwhile (tests/integration/shared/test_gevent_worker.py)."""

from __future__ import annotations

import os

import psycopg
from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)
    conninfo = os.environ["SLEEPY_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")

    @app.get("/sleep")
    def sleep() -> dict[str, str]:
        with psycopg.connect(conninfo) as conn:
            conn.execute("SELECT pg_sleep(1)")
        return {"slept": "1 s"}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
