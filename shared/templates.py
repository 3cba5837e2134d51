"""The `{{ variable }}` syntax of alert content: the campaigns service checks it, notifications
fills it in for each recipient."""

from __future__ import annotations

import re
from collections.abc import Callable

VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def variables(text: str) -> list[str]:
    """Return the names of the variables a template uses, in order of use."""
    return [match.group(1) for match in VARIABLE.finditer(text)]


def fill(text: str, value: Callable[[str], str]) -> str:
    """Replace every variable by value(its name)."""
    return VARIABLE.sub(lambda match: value(match.group(1)), text)
