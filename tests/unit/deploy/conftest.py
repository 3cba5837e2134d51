"""What the deploy/ checks share: the files, parsed, and the settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
SERVICES = ("campaigns", "petitions", "notifications")


def env_names_read_by_code() -> set[str]:
    """Return every environment variable the services and shared code read."""
    names: set[str] = set()
    pattern = re.compile(
        r"""(?:_env|_int|_bool|_float|env_str|env_int|env_bool|env_float|environ\.get|getenv)"""
        r"""\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    )
    for folder in ("shared", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(pattern.findall(path.read_text()))
    names.update(f"{service.upper()}_DATABASE_URL" for service in SERVICES)
    # Read by deploy/gunicorn.conf.py.
    gunicorn = (DEPLOY / "gunicorn.conf.py").read_text()
    names.update(pattern.findall(gunicorn))
    names.update(re.findall(r'_int\("([A-Z_]+)"', gunicorn))
    return names


@pytest.fixture(scope="session")
def known_env() -> set[str]:
    return env_names_read_by_code()


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="session")
def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "kubernetes").rglob("*.yaml")):
        docs += load_all(path)
    return docs
