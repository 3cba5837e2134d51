"""What goes with a record to its retry or dead-letter topic."""

from __future__ import annotations

from kafka.consumer.fetcher import ConsumerRecord

from shared.consumer import dead_letter_headers
from shared.events.envelope import InvalidEvent


def record(headers: list[tuple[str, bytes | None]]) -> ConsumerRecord:
    return ConsumerRecord(
        topic="kinship.campaigns", partition=0, leader_epoch=0, offset=7, timestamp=0,
        timestamp_type=0, key=b"k", value=b"{}", headers=headers, checksum=None,
        serialized_key_size=1, serialized_value_size=2, serialized_header_size=-1,
    )  # fmt: skip


def test_a_null_header_value_goes_with_its_record_to_the_dead_letters() -> None:
    """Kafka allows a null header value, and another client may write one (kafka-python reads
    it as None): copying it with bytes(None) raised, and the runner died on the record at every
    start instead of dead-lettering it. kafka-python's producer takes only bytes."""
    poisoned = record([("ce_id", None), ("x-trace", None), ("x-app", b"forms")])
    headers = dead_letter_headers(poisoned, InvalidEvent("header ce_id is not UTF-8"))
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in headers)
    carried = dict(headers)
    assert carried["ce_id"] == b"" and carried["x-trace"] == b"" and carried["x-app"] == b"forms"
    assert carried["kinship_origin_offset"] == b"7"
