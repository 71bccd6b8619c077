"""Whole batches prepared and written by this code and by the previous code
(:mod:`tests.unit.streams.previous_prepare`) decide alike: the same silver rows (topic columns,
content hashes), duplicates, conflicts and quarantine rows, batch after batch, on hostile
batches (bad input, resends, reused ids, several topics and partitions, topic ids missing or
varied, tombstones)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pyarrow as pa

from lake import BatchOutput, DeltaStore
from streams.batch_rows import RawMessage, _take_strings
from tests.unit.lake.batches import TOPIC, CapturingWriter, pipeline, telemetry, with_bad_input
from tests.unit.streams.previous_prepare import previous_code

_OTHER = TOPIC.replace("telemetry", "telemetry-b")
"""A second topic of the same tenant and kind."""

_FUTURE = re.compile(r"is \d+ s in the future")
"""Measured against the clock, which moves between the two preparations."""

_VOLATILE = {
    "silver": ("ingested_at",),
    "quarantine": ("quarantined_at", "date"),
    "duplicates": ("detected_at", "date"),
}


def _batches(rng: random.Random, count: int) -> list[list[RawMessage]]:
    payloads = [e.payload for e in with_bad_input(160)] + [e.payload for e in telemetry(60)]
    offsets: dict[tuple[str, int], int] = {}
    batches = []
    sent: list[bytes] = []
    for _ in range(count):
        topics = [TOPIC] if rng.random() < 0.5 else [TOPIC, _OTHER]
        ids = rng.choice([("tid-a",), (None,), ("tid-a", "tid-b")])
        batch = []
        for _ in range(rng.randrange(1, 70)):
            roll = rng.random()
            if sent and roll < 0.15:
                value: bytes | None = rng.choice(sent)  # a resend, maybe on another partition
            elif sent and roll < 0.22:
                value = rng.choice(sent).replace(b'"value":', b'"value": ', 1)  # reused id
            elif roll < 0.24:
                value = None
            else:
                value = rng.choice(payloads)
            topic = rng.choice(topics)
            partition = rng.randrange(3)
            offset = offsets.get((topic, partition), rng.randrange(5))
            offsets[(topic, partition)] = offset + rng.randrange(1, 3)
            batch.append(RawMessage(topic, partition, offset, None, b"k", value, rng.choice(ids)))
            if value is not None:
                sent.append(value)
        batches.append(batch)
    return batches


def _comparable(output: BatchOutput) -> dict[str, pa.Table]:
    tables = {"offsets": output.offsets}
    for name, volatile in _VOLATILE.items():
        table: pa.Table = getattr(output, name)
        tables[name] = table.drop_columns([c for c in volatile if c in table.column_names])
    quarantine = tables["quarantine"]
    details = [
        [_FUTURE.sub("is N s in the future", d) for d in row]
        for row in quarantine["details"].to_pylist()
    ]
    at = quarantine.column_names.index("details")
    field = quarantine.schema.field(at)
    tables["quarantine"] = quarantine.set_column(at, field, pa.array(details, field.type))
    return tables


def test_batches_are_prepared_and_deduplicated_as_by_the_previous_code(tmp_path: Path) -> None:
    decided = {"silver": 0, "duplicates": 0, "conflicts": 0}
    for seed in range(6):
        batches = _batches(random.Random(seed), 5)
        new_root, old_root = tmp_path / f"new{seed}", tmp_path / f"old{seed}"
        new = pipeline(new_root, CapturingWriter(DeltaStore(new_root)))
        old = pipeline(old_root, CapturingWriter(DeltaStore(old_root)))
        for batch in batches:
            got = new.prepare("telemetry", batch)
            new.write(got)
            with previous_code():
                want = old.prepare("telemetry", batch)
                old.write(want)
            assert len(got) == len(want)
            for a, b in zip(got, want, strict=True):
                mine, previous = _comparable(a), _comparable(b)
                for name in mine:
                    assert mine[name].schema == previous[name].schema, name
                    assert mine[name].equals(previous[name]), name
                decided["silver"] += a.silver.num_rows
                decided["duplicates"] += a.duplicates.num_rows
                decided["conflicts"] += sum(
                    "event_id_conflict" in r for r in a.quarantine["reasons"].to_pylist()
                )
    # The batches exercised every decision.
    assert all(decided.values()), decided


def test_topic_columns_of_silver_rows_equal_a_take() -> None:
    """One repeated topic, several, nulls, an empty batch, indices in any order."""
    rng = random.Random(3)
    for _ in range(300):
        n = rng.randrange(0, 12)
        pools: list[list[str | None]] = [["a"], ["a", "b"], ["a", None], [None], [""]]
        pool = rng.choice(pools)
        column = pa.chunked_array([pa.array([rng.choice(pool) for _ in range(n)], pa.string())])
        idx = pa.chunked_array(
            [
                pa.array(
                    [rng.randrange(n) for _ in range(rng.randrange(0, 20))] if n else [], pa.int32()
                )
            ]
        )
        got = _take_strings(column, idx)
        want = column.take(idx)
        got_chunked = got if isinstance(got, pa.ChunkedArray) else pa.chunked_array([got], got.type)
        assert got_chunked.type == want.type
        assert got_chunked.to_pylist() == want.to_pylist()
