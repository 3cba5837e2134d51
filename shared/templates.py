"""The `{{ variable }}` syntax of alert content: the campaigns service checks it, notifications
fills it in for each recipient."""

from __future__ import annotations

import re
from collections.abc import Callable

# The name's surrounding spaces are stripped after the match: `\{\{\s*([^{}]*?)\s*\}\}` lets
# its three parts share a run of spaces in every way, and "{{" and 4,000 spaces without a
# closing "}}" took 51 s to refuse (cubic), holding the GIL of a whole API worker.
VARIABLE = re.compile(r"\{\{([^{}]*)\}\}")


def variables(text: str) -> list[str]:
    """Return the names of the variables a template uses, in order of use."""
    return [match.group(1).strip() for match in VARIABLE.finditer(text)]


def fill(text: str, value: Callable[[str], str]) -> str:
    """Replace every variable by value(its name)."""
    return VARIABLE.sub(lambda match: value(match.group(1).strip()), text)


# Every alert text tells how to stop them (carriers and the TCPA expect it in each message).
STOP_SUFFIX = "Reply STOP to opt out."
# An instruction to stop already in the text, not merely the word: "Stop Asian Hate rally",
# "nonstop" or "bus stop" say nothing of how to opt out.
_OPT_OUT = re.compile(
    r"\b(?:reply|text|txt|send|respond)\b\W{0,3}(?:with\W{0,3})?[\"'“«]?stop\b", re.I
)


def with_opt_out(body: str, written: str | None = None) -> str:
    """Return an SMS text that says how to opt out: as written, or with STOP_SUFFIX added.

    written: the template body was filled from, whose own wording is what counts: a
    supporter's name reading "reply STOP" must not take the instruction off their texts."""
    return (
        body if _OPT_OUT.search(body if written is None else written) else f"{body} {STOP_SUFFIX}"
    )
