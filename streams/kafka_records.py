"""Fetched Kafka records without aiokafka's per-record ``ConsumerRecord``.

aiokafka parses a fetched record batch in C, one ``DefaultRecord`` per message (offset,
timestamp, key, value, headers), then wraps each in a Python ``ConsumerRecord`` dataclass of
eleven fields: at 50,000 records per batch that wrapper was the largest single cost of the batch
engine's event loop (12% of the worker's samples), and the engine reads four of its fields.

A consumer built with ``key_deserializer=RAW`` gets the parsed records themselves from
``getmany``: objects with ``offset``, ``timestamp`` (ms), ``key`` and ``value`` (bytes or None)
and no ``topic``/``partition`` (``getmany`` groups them by partition). Every other consumer in
the process (Faust's) is unaffected. This is the one module that reaches into aiokafka's
fetcher; :func:`install` checks the internals it relies on and fails loudly if they moved.
"""

from __future__ import annotations

from typing import Any

from aiokafka.consumer import fetcher as _fetcher

from streams.errors import StreamsError

__all__ = ["RAW", "install"]


def RAW(key: bytes | None) -> bytes | None:
    """The key deserializer that marks a consumer whose records stay aiokafka's parsed ones."""
    return key


_Base: Any = _fetcher.PartitionRecords


class _PartitionRecords(_Base):  # type: ignore[misc]
    def _consumer_record(self, tp: Any, record: Any) -> Any:
        if self._key_deserializer is RAW:
            return record
        return super()._consumer_record(tp, record)


def install() -> None:
    """Make ``key_deserializer=RAW`` consumers return parsed records (idempotent).

    Raises:
        StreamsError: the installed aiokafka no longer builds records where this expects.
    """
    current = _fetcher.PartitionRecords
    if current is _PartitionRecords:
        return
    if current is not _Base or not callable(getattr(_Base, "_consumer_record", None)):
        raise StreamsError(
            "aiokafka's fetcher changed (PartitionRecords._consumer_record is gone): "
            "pin aiokafka to a version streams/kafka_records.py supports (0.12-0.14)"
        )
    _fetcher.PartitionRecords = _PartitionRecords
