"""The Dockerfile: the pinned Python, a non-root user, the gunicorn config, every service."""

from __future__ import annotations

import json
import re

from tests.unit.deploy.conftest import ROOT


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_base_image_matches_the_python_the_project_requires() -> None:
    base = next(arg for op, arg in instructions() if op == "FROM")
    assert re.fullmatch(r"python:3\.11-slim", base)


def test_runs_as_a_non_root_user_with_the_code_and_gunicorn_config() -> None:
    ops = instructions()
    users = [arg for op, arg in ops if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    copied = " ".join(arg for op, arg in ops if op == "COPY")
    for path in ("shared", "services", "deploy/gunicorn.conf.py", "pyproject.toml"):
        assert path in copied
        assert (ROOT / path).exists()
    cmd = json.loads(next(arg for op, arg in ops if op == "CMD"))
    assert cmd[:3] == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
    assert "8000" in next(arg for op, arg in ops if op == "EXPOSE")
    assert "/healthz" in next(arg for op, arg in ops if op == "HEALTHCHECK")


def test_dependencies_come_from_pyproject_at_the_locks_versions() -> None:
    run = " ".join(arg for op, arg in instructions() if op == "RUN")
    assert "tomllib" in run and "pip install -c constraints.txt -r" in run
    assert "pip install --no-deps -c constraints.txt --build-constraint constraints.txt -e ." in run
    copied = " ".join(arg for op, arg in instructions() if op == "COPY")
    assert "constraints.txt" in copied


def test_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", "var", ".git"):
        assert entry in ignored
