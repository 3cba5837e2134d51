"""Group commit: every request is committed once, answered after its commit, with its own error."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from services.petitions.groupcommit import GroupCommit


def test_concurrent_items_share_commits_and_each_is_committed_once() -> None:
    group: GroupCommit[int] = GroupCommit(max_batch=8)
    committed: list[int] = []
    gate = threading.Event()

    def commit(items: Sequence[int]) -> list[Exception | None]:
        gate.wait(5)  # hold the first batch so the others queue up behind it
        committed.extend(items)
        return [None] * len(items)

    threads = [threading.Thread(target=group.submit, args=(i, commit)) for i in range(40)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert sorted(committed) == list(range(40))
    assert group.items == 40 and group.batches < 40
    assert not group._leading and not group._queue


def test_each_request_gets_its_own_error() -> None:
    group: GroupCommit[int] = GroupCommit()

    def commit(items: Sequence[int]) -> list[Exception | None]:
        return [ValueError(f"bad {i}") if i % 2 else None for i in items]

    group.submit(2, commit)
    with pytest.raises(ValueError, match="bad 3"):
        group.submit(3, commit)


def test_a_failing_commit_fails_its_batch_and_the_next_request_still_leads() -> None:
    group: GroupCommit[int] = GroupCommit()

    def broken(items: Sequence[int]) -> list[Exception | None]:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        group.submit(1, broken)
    group.submit(2, lambda items: [None] * len(items))
    assert group.items == 2
