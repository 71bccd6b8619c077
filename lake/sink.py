"""The sink: what the ingest pipeline writes classified batches to and reads back.

A batch arrives classified (:class:`BatchOutput`): every consumed Kafka offset is in exactly
one of ``silver`` (one or more rows), ``quarantine`` or ``duplicates``. What every sink must
keep, whatever it stores into:

* **Exactly once per offset.** The rows of a batch are kept per logical table
  (``silver/<kind>``, ``quarantine/<kind>``, ``ops/duplicates``, and the batch's
  ``ops/validation_runs`` row last); a table's stored offset for a partition means "every row
  of this partition up to here is in this table", so rows at or below it are left out and a
  batch written again after a crash adds only what is missing.
* **Resume point.** :meth:`Sink.committed_offsets` is where a worker resumes: the last offset
  the sink fully accounted (the validation-runs table's stored offset).
* **What dedupe reads.** The pipeline recognises resends from the event ids the sink already
  holds (:meth:`SinkHandle.recent_event_ids`) and keeps decisions it committed before a crash
  (:meth:`SinkHandle.duplicate_offsets`), through a handle that may live in another thread
  than the writes (:meth:`Sink.handle`).
* **Errors.** A failure that may pass raises a ``TransientError`` (the worker retries the
  batch); one that cannot, a ``TerminalError``.

The Delta lake (:class:`lake.writer.BatchWriter`) is the default sink of the worker command;
another sink plugs into :class:`streams.ingest.IngestPipeline`, or into ``maxlake worker`` by
naming its factory in ``MAXLAKE_SINK`` / ``--sink`` (:func:`load_sink`; docs/EXTENDING.md,
"Add a sink"; ``tests/unit/test_sinks.py`` plugs in an in-memory one).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, cast

import pyarrow as pa

from lake.errors import SinkError
from lake.lineage import Gap
from maxlake.settings import Settings

__all__ = [
    "BatchOutput",
    "RunInfo",
    "Sink",
    "SinkHandle",
    "TopicPartition",
    "WriteResult",
    "load_sink",
]

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class RunInfo:
    """What the ingest pipeline knows about a batch beyond its rows."""

    run_id: str
    worker: str
    started_at: datetime
    suite_version: str | None
    warn_counts: Mapping[str, int] = field(default_factory=dict)
    batch_checks: Mapping[str, tuple[bool, float | None]] = field(default_factory=dict)
    failed_expectations: tuple[str, ...] = ()
    decode_ms: float = 0.0
    validate_ms: float = 0.0
    registry_version: int | None = None


@dataclass(frozen=True)
class BatchOutput:
    """One classified micro-batch of one event kind.

    Attributes:
        kind: event kind (selects the silver and quarantine tables).
        offsets: every consumed message: columns ``topic``, ``partition``, ``offset``.
        silver: rows in ``silver_schema(kind)``.
        quarantine: rows in ``QUARANTINE_SCHEMA``.
        duplicates: rows in ``DUPLICATES_SCHEMA``.
        run: batch metadata for ``ops/validation_runs``.
    """

    kind: str
    offsets: pa.Table
    silver: pa.Table
    quarantine: pa.Table
    duplicates: pa.Table
    run: RunInfo
    already_in_lake: int = 0
    """Consumed offsets the lake fully held already, left out before decoding (re-delivery)."""


@dataclass(frozen=True)
class WriteResult:
    """What one :meth:`BatchWriter.write` added to the lake (new offsets only)."""

    consumed: int
    silver_events: int
    silver_rows: int
    quarantined: int
    duplicates: int
    skipped: int
    write_ms: float


class SinkHandle(Protocol):
    """What a sink holds, as the thread preparing batches reads it (and the gaps it records)."""

    def stored_offsets(
        self,
        table: str,
        partitions: Sequence[TopicPartition],
        topic_ids: Mapping[str, str | None],
        worker: str,
    ) -> dict[TopicPartition, int]:
        """Per (topic, partition), the last offset ``table`` holds (-1 when none); offsets of
        the lineage ``topic_ids[topic]`` (a Kafka topic id; None: none recorded)."""
        ...

    def recent_event_ids(self, kind: str, *, tenant: str, topic: str, since: date) -> pa.Table:
        """Silver event ids of one topic with an event date on or after ``since``: columns
        ``event_id`` (string), ``kafka_partition`` (int32), ``kafka_offset`` (int64) of each
        id's first copy, and optionally ``content_hash`` (int64, null when unknown: the
        silver ``content_hash`` of that copy). Without it, a resend under a known id is a
        duplicate whatever its content."""
        ...

    def duplicate_offsets(
        self,
        kind: str,
        *,
        topic: str,
        partition: int,
        first: int,
        last: int,
        topic_id: str | None = None,
    ) -> set[int]:
        """Offsets in ``[first, last]`` of one partition held in ``ops/duplicates`` for ``kind``."""
        ...

    def record_gap(self, gap: Gap, *, worker: str) -> None:
        """Record offsets Kafka no longer holds, found when a partition was positioned."""
        ...


class Sink(Protocol):
    """What the ingest pipeline writes to (see the module docstring for the guarantees)."""

    def write(self, batch: BatchOutput) -> WriteResult:
        """Keep the batch's rows beyond the stored offsets; returns what was added."""
        ...

    def committed_offsets(
        self,
        kind: str,
        partitions: Sequence[TopicPartition],
        topic_ids: Mapping[str, str | None] | None = None,
        *,
        worker: str = "worker",
    ) -> dict[TopicPartition, int]:
        """Per (topic, partition), the last offset fully accounted (-1 when none)."""
        ...

    def handle(self) -> SinkHandle:
        """A handle for the thread that prepares batches while another writes."""
        ...


_SINK_METHODS = ("write", "committed_offsets", "handle")


def load_sink(reference: str, settings: Settings) -> Sink:
    """The sink ``reference`` (``package.module:factory``) makes: ``factory(settings)``.

    Raises:
        SinkError: (a ``ConfigError``) the module cannot be imported, has no such factory, or
            the factory returned an object without the :class:`Sink` methods.
    """
    module_name, _, attr = reference.partition(":")
    where = f"sink {reference!r} (MAXLAKE_SINK or --sink)"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SinkError(f"{where}: cannot import {module_name!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise SinkError(f"{where}: {module_name!r} has no callable {attr!r}")
    sink = factory(settings)
    missing = [m for m in _SINK_METHODS if not callable(getattr(sink, m, None))]
    if missing:
        raise SinkError(
            f"{where}: the factory returned a {type(sink).__name__!r} object without "
            f"{', '.join(missing)}; return an object implementing lake.sink.Sink"
        )
    return cast(Sink, sink)
