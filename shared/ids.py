"""Time-ordered row ids: UUID version 7 (milliseconds since the epoch, then random bits).

Rows made one after another get ids side by side in a primary-key index; random ids (uuid4)
put each entry on a random page of an index larger than the cache (docs/runtime-facts.md: the
ledger insert cost 35 % less PostgreSQL CPU a row with these).

The random bits come from `random` (seeded from the OS, reseeded in each forked worker), not
from the OS on every call: these ids must be unique, not secret (nothing is authorized by
knowing one), and a call into the OS lets go of the GIL, which under a threaded web worker
costs a handoff each time.
"""

from __future__ import annotations

import random
import time

PREFIX_LENGTH = 32
ROWS_PER_PREFIX = 1 << 16


def uuid7_prefix() -> str:
    """Return the first 32 characters of a version 7 UUID: 58 random bits after the time.

    Append four hex digits to make an id; a batch of up to ROWS_PER_PREFIX rows takes one
    prefix and numbers its rows, so consecutive rows get consecutive ids.
    """
    value = (int(time.time() * 1000) << 80) | (7 << 76) | (random.getrandbits(12) << 64)
    value |= (0b10 << 62) | (random.getrandbits(46) << 16)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:28]}"


def uuid7() -> str:
    """Return one version 7 UUID in its canonical 36-character form."""
    return uuid7_prefix() + f"{random.getrandbits(16):04x}"
