"""The local Kafka needs Java 17+: an older one is refused up front, naming what was found."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.local_kafka import LocalKafkaError, find_java, java_major


def fake_java(home: Path, says: str) -> Path:
    """A JAVA_HOME whose java prints says on stderr, as `java -version` does."""
    java = home / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{says}\nEOF\n")
    java.chmod(0o755)
    return java


@pytest.mark.parametrize(
    ("says", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.22" 2024-01-16', 11),
        ('java version "1.8.0_402"', 8),
        ("Error: could not find libjava.so", None),
    ],
)
def test_reads_the_major_version(says: str, major: int | None) -> None:
    assert java_major(says) == major


def test_java_17_or_newer_is_used(tmp_path: Path) -> None:
    java = fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment')
    assert find_java({"JAVA_HOME": str(tmp_path)}) == str(java)


def test_an_older_java_is_refused_naming_its_version(tmp_path: Path) -> None:
    fake_java(tmp_path, 'openjdk version "11.0.22" 2024-01-16')
    with pytest.raises(LocalKafkaError, match=r"Java 17 or newer is needed.*says Java 11"):
        find_java({"JAVA_HOME": str(tmp_path)})


def test_no_java_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match="Java 17 or newer is needed"):
        find_java({"JAVA_HOME": str(tmp_path / "nothing")})
