"""A batch's messages as columns: the repeated-offset guard gives the per-message answer."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
from aiokafka.consumer import fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition

from lake import DeltaStore
from streams.batch_rows import ColumnMessages, Columns, RawMessage, block_columns
from streams.ingest import unique_offsets
from streams.kafka_records import RAW, RecordBlock, RecordBlocks, install
from tests.unit.lake.batches import (
    TENANT,
    TOPIC,
    CapturingWriter,
    messages,
    pipeline,
    with_bad_input,
)

_FUTURE = re.compile(r"is \d+ s in the future")


def test_repeated_offsets_are_found_across_topics_and_partitions() -> None:
    rng = random.Random(5)
    for _ in range(200):
        batch = [
            RawMessage(rng.choice("ab"), rng.randrange(3), rng.randrange(30), None, None, b"")
            for _ in range(rng.randrange(0, 40))
        ]
        first: dict[tuple[str, int, int], RawMessage] = {}
        for m in batch:
            first.setdefault(m[:3], m)
        assert Columns.of(batch).has_repeated_offsets() == (len(first) != len(batch))
        assert list(unique_offsets(batch)) == list(first.values())


def test_a_batch_held_as_columns_is_prepared_like_the_same_messages(tmp_path: Path) -> None:
    batch = messages([e.payload for e in with_bad_input(120)], partition=2, first_offset=7)
    batch[5] = batch[5]._replace(value=None)
    columns = ColumnMessages(Columns.of(batch))
    assert list(columns) == batch
    assert columns[3:5] == batch[3:5]
    prepared = [
        pipeline(tmp_path / name, CapturingWriter(DeltaStore(tmp_path / name))).prepare(
            "telemetry", given
        )
        for name, given in (("list", batch), ("columns", columns))
    ]
    for a, b in zip(*prepared, strict=True):
        assert a.quarantine.num_rows
        assert a.duplicates.num_rows
        for table in ("offsets", "silver", "quarantine", "duplicates"):
            drop = ["ingested_at", "quarantined_at", "detected_at"]
            left, right = getattr(a, table), getattr(b, table)
            left = left.drop_columns([c for c in drop if c in left.column_names])
            right = right.drop_columns([c for c in drop if c in right.column_names])
            if table == "quarantine":
                left, right = _without_clock(left), _without_clock(right)
            assert left.equals(right), table


def _without_clock(quarantine: pa.Table) -> pa.Table:
    """The quarantine rows with "N s in the future" masked: N is measured against the clock,
    which moves between the two preparations."""
    details = [
        None if row is None else [_FUTURE.sub("is N s in the future", d) for d in row]
        for row in quarantine["details"].to_pylist()
    ]
    at = quarantine.column_names.index("details")
    return quarantine.set_column(at, "details", pa.array(details, quarantine.schema.field(at).type))


def test_a_redelivery_as_columns_skips_exactly_what_each_partition_holds(tmp_path: Path) -> None:
    """Two topics, two partitions each, the lake holding a different last offset per partition:
    a batch held as columns that reaches back into each keeps only the offsets beyond it."""
    other = TOPIC.replace(TENANT, "other-co")
    payloads = [e.payload for e in with_bad_input(80)]
    held = {(TOPIC, 0): 9, (TOPIC, 1): 3, (other, 0): 14, (other, 2): 0}
    worker = pipeline(tmp_path)
    chunks = iter([payloads[i : i + 20] for i in range(0, 80, 20)])
    for (topic, partition), last in held.items():
        worker.process(
            "telemetry", messages(next(chunks)[: last + 1], topic=topic, partition=partition)
        )
    again = [
        m
        for (topic, partition) in held
        for m in messages(payloads[:20], topic=topic, partition=partition)
    ]
    outputs = worker.prepare("telemetry", ColumnMessages(Columns.of(again)))
    fresh = [m for m in again if m.offset > held[(m.topic, m.partition)]]
    assert outputs[0].already_in_lake == len(again) - len(fresh)
    offsets = pa.concat_tables([o.offsets for o in outputs])
    got = zip(*(offsets[c].to_pylist() for c in ("topic", "partition", "offset")), strict=True)
    assert list(got) == [(m.topic, m.partition, m.offset) for m in fresh]


def test_fetched_record_blocks_are_prepared_like_the_same_messages(tmp_path: Path) -> None:
    """The batch engine's columns of fetched record blocks (two fetches of one partition, one
    of another; a tombstone; null and set keys) are the messages they hold, field by field,
    and prepare to the same tables."""
    payloads = [e.payload for e in with_bad_input(90)]
    payloads[4] = None  # type: ignore[call-overload]
    keys = [None if i % 3 else b"M-%d" % i for i in range(90)]

    def fetched(partition: int, first: int, count: int) -> RecordBlock:
        builder = DefaultRecordBatchBuilder(2, 3, 0, -1, -1, -1, 1 << 22)
        for i in range(first, first + count):
            builder.append(
                i - first,
                timestamp=1_700_000_000_000 + i,
                key=keys[i],
                value=payloads[i],
                headers=[],
            )
        raw = bytearray(builder.build())
        raw[0:8] = (100 * partition + first).to_bytes(8, "big")
        install()
        records: Any = fetcher.PartitionRecords(
            TopicPartition(TOPIC, partition),
            fetcher.MemoryRecords(bytes(raw)),
            [],
            100 * partition + first,
            RAW,
            None,
            True,
            1,
        )
        block, _ = records.take(None)
        assert isinstance(block, RecordBlock)
        return block

    one = RecordBlocks([fetched(1, 0, 30), fetched(1, 30, 30)])
    columns = ColumnMessages(
        block_columns([(TOPIC, 1, "id-1", one.block()), (TOPIC, 2, "id-2", fetched(2, 60, 30))])
    )
    batch = [
        RawMessage(TOPIC, p, 100 * p + i, 1_700_000_000_000 + i, keys[i], payloads[i], f"id-{p}")
        for i, p in zip(range(90), [1] * 60 + [2] * 30, strict=True)
    ]
    assert list(columns) == batch
    prepared = [
        pipeline(tmp_path / name, CapturingWriter(DeltaStore(tmp_path / name))).prepare(
            "telemetry", given
        )
        for name, given in (("list", batch), ("blocks", columns))
    ]
    for a, b in zip(*prepared, strict=True):
        assert a.quarantine.num_rows
        for table in ("offsets", "silver", "quarantine", "duplicates"):
            drop = ["ingested_at", "quarantined_at", "detected_at"]
            left, right = getattr(a, table), getattr(b, table)
            left = left.drop_columns([c for c in drop if c in left.column_names])
            right = right.drop_columns([c for c in drop if c in right.column_names])
            if table == "quarantine":
                left, right = _without_clock(left), _without_clock(right)
            assert left.equals(right), table
