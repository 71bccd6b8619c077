"""What the batch engine holds while it prepares a batch: the fetched values' buffers are
released once the batch's columns are built, before the pipeline decodes them (the keys, read by
index for quarantine rows, stay with the columns)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiokafka import TopicPartition

from lake import BatchOutput, WriteResult
from maxlake.settings import Settings
from schemas import EventKind
from streams.batch_engine import BatchEngine
from streams.batch_rows import RawMessage
from streams.errors import StreamsError
from streams.kafka_records import Binaries, RecordBlock, RecordBlocks
from streams.write_block import WriteBlock

TELEMETRY = "plant.acme.telemetry"
ALARMS = "plant.acme.inspection"


class _Pipeline:
    """Notes, at each ``prepare``, the messages it was given and which fetched buffers were
    still alive."""

    def __init__(self, buffers: list[weakref.ref[np.ndarray]]) -> None:
        self.buffers = buffers
        self.alive_at_prepare: list[int] = []
        self.given: list[tuple[str, list[RawMessage]]] = []
        self.written: list[str] = []

    def prepare(self, kind: EventKind, messages: Sequence[RawMessage]) -> list[BatchOutput]:
        self.alive_at_prepare.append(sum(ref() is not None for ref in self.buffers))
        self.given.append((kind.value, list(messages)))
        return []

    def write(self, outputs: Sequence[BatchOutput]) -> WriteResult:
        self.written.append("batch")
        return WriteResult(0, 0, 0, 0, 0, 0, 0.0)


def _block(first: int, values: list[bytes], refs: list[weakref.ref[np.ndarray]]) -> RecordBlock:
    """A fetched block whose keys and values sit in NumPy buffers (the values' weakly
    referenced in ``refs``)."""
    n = len(values)
    lengths = np.array([0, *map(len, values)], np.int64)
    data = np.frombuffer(b"".join(values), np.uint8).copy()
    keys = np.frombuffer(b"k" * n, np.uint8).copy()
    refs.append(weakref.ref(data))
    return RecordBlock(
        np.arange(first, first + n, dtype=np.int64),
        np.full(n, 1_700_000_000_000, np.int64),
        Binaries(keys, np.arange(n + 1, dtype=np.int64), None),
        Binaries(data, np.cumsum(lengths), None),
    )


def _fetched(refs: list[weakref.ref[np.ndarray]]) -> dict[TopicPartition, RecordBlocks]:
    """Two partitions of telemetry (one fetched in two blocks) and one of alarms."""
    return {
        TopicPartition(TELEMETRY, 0): RecordBlocks(
            [_block(10, [b"t0-%d" % i for i in range(3)], refs), _block(13, [b"t0-x"], refs)]
        ),
        TopicPartition(TELEMETRY, 1): RecordBlocks([_block(0, [b"t1-a", b"t1-b"], refs)]),
        TopicPartition(ALARMS, 0): RecordBlocks([_block(5, [b"a0"], refs)]),
    }


def _engine(tmp_path: Path, pipeline: _Pipeline) -> BatchEngine:
    return BatchEngine(
        Settings(lake_root=str(tmp_path / "lake")),
        {TELEMETRY: EventKind.TELEMETRY, ALARMS: EventKind.INSPECTION},
        lambda: pipeline,  # type: ignore[arg-type,return-value]
        block=WriteBlock("w", tmp_path),
    )


def test_fetched_buffers_are_released_before_the_batch_is_prepared(tmp_path: Path) -> None:
    """A handed-over batch's fetched values (every block's buffer) are freed before the
    pipeline prepares it, and each kind still gets exactly its messages."""
    refs: list[weakref.ref[np.ndarray]] = []
    pipeline = _Pipeline(refs)
    engine = _engine(tmp_path, pipeline)
    ids = {TELEMETRY: "tid-t", ALARMS: "tid-a"}

    async def handle() -> None:
        prepared: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # As the run loop hands a batch over: the task alone holds the records.
        await engine._handle(_fetched(refs), ids, {}, None, prepared)

    asyncio.run(handle())
    assert len(refs) == 4
    assert pipeline.alive_at_prepare == [0, 0]
    assert pipeline.written == ["batch", "batch"]  # one write per kind
    assert pipeline.given == [
        (
            "telemetry",
            [
                RawMessage(TELEMETRY, 0, 10 + i, 1_700_000_000_000, b"k", v, "tid-t")
                for i, v in enumerate([b"t0-0", b"t0-1", b"t0-2", b"t0-x"])
            ]
            + [
                RawMessage(TELEMETRY, 1, i, 1_700_000_000_000, b"k", v, "tid-t")
                for i, v in enumerate([b"t1-a", b"t1-b"])
            ],
        ),
        ("inspection", [RawMessage(ALARMS, 0, 5, 1_700_000_000_000, b"k", b"a0", "tid-a")]),
    ]


def test_a_batch_without_a_topic_id_fails_before_anything_is_prepared(tmp_path: Path) -> None:
    """A topic with no lineage still stops the batch (nothing prepared, nothing written)."""
    refs: list[weakref.ref[np.ndarray]] = []
    pipeline = _Pipeline(refs)
    engine = _engine(tmp_path, pipeline)
    records: Any = _fetched(refs)
    with pytest.raises(StreamsError, match="no topic id"):
        engine._prepare(records, {TELEMETRY: "tid-t"})
    assert pipeline.given == []
