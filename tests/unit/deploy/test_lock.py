"""constraints.txt is the lock: every pin in pyproject.toml appears there at the same version."""

from __future__ import annotations

import re
import tomllib

from tests.unit.deploy.conftest import ROOT


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            assert version, f"{requirement!r} is not pinned to one version"
            found[normalized(name.split("[", 1)[0])] = version.strip()
    return found


def test_every_pyproject_pin_is_the_locked_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = pins(
        [
            *project["build-system"]["requires"],
            *project["project"]["dependencies"],
            *project["project"]["optional-dependencies"]["dev"],
        ]
    )
    locked = pins((ROOT / "constraints.txt").read_text().splitlines())
    assert {name: locked.get(name) for name in declared} == declared
