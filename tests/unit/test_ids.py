"""Row ids: version-7 UUIDs that sort by the time they were made."""

from __future__ import annotations

import time
import uuid

from shared import ids


def test_ids_are_version_7_uuids_in_the_order_they_were_made():
    made = []
    for _ in range(3):
        made += [ids.uuid7() for _ in range(50)]
        time.sleep(0.002)  # the next millisecond
    parsed = [uuid.UUID(i) for i in made]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert [str(u) for u in parsed] == made  # canonical form, 36 characters
    ms = [u.int >> 80 for u in parsed]
    assert ms == sorted(ms)
    assert abs(ms[0] - time.time() * 1000) < 5_000


def test_a_batch_prefix_leaves_four_hex_digits_for_the_row_number():
    prefix = ids.uuid7_prefix()
    assert len(prefix) == ids.PREFIX_LENGTH == 32
    first, last = prefix + "0000", prefix + f"{ids.ROWS_PER_PREFIX - 1:04x}"
    assert uuid.UUID(first).version == 7 and uuid.UUID(last).version == 7
    assert len({ids.uuid7_prefix() for _ in range(1000)}) == 1000  # 58 random bits each
