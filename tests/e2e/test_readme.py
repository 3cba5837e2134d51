"""The README's curl walkthrough, run as written against the running stack."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import KINSHIP, Stack

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## A five-minute walkthrough with curl"


def walkthrough() -> str:
    """Return the shell commands of the README's walkthrough section."""
    text = README.read_text()
    assert SECTION in text
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert blocks, "the walkthrough has no sh block"
    return "\n".join(blocks)


def test_walkthrough_names_every_step() -> None:
    script = walkthrough()
    for step in ("keys create", "/api/v1/keys", "/api/v1/campaigns", "/api/v1/petitions",
                 "/signatures", "/alerts", "/schedule", "outbox"):  # fmt: skip
        assert step in script


@pytest.mark.slow
def test_walkthrough_runs_as_written(stack: Stack) -> None:
    env = {
        **stack.env,
        "CAMPAIGNS": stack.url("campaigns"),
        "PETITIONS": stack.url("petitions"),
        "NOTIFICATIONS": stack.url("notifications"),
        "KINSHIP": KINSHIP,
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()],
        env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    output = result.stdout
    assert result.returncode == 0, f"{output[-3000:]}\n{result.stderr[-3000:]}"
    # Mei signed in Traditional Chinese, so the alert reached her in it, with List-Unsubscribe.
    assert "委員會星期四投票" in output and "[List-Unsubscribe]" in output
    # The alert's {{ given_name }} reached her as her own name, which the outbox masks, as it
    # does her address, unless asked (--show).
    assert "subject: ‹…›，委員會星期四投票" in output and "Mei，" not in output
    assert "to m***@e***.org" in output
    assert re.search(r"'sent': 1, 'status': 'done', 'suppressed': 0, 'total': 1", output)
