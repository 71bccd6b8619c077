"""The exactly-once checks of the prepare thread (``IngestPipeline._not_in_lake`` and
``_committed_decisions``) give exactly the answers of their per-message Python versions (kept
here as the reference, as they were before :class:`streams.partition_index.PartitionIndex`),
and ask the lake the same questions, on random batches over several topics, partitions and
topic ids, in any message order, as lists of messages and as fetched columns."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pytest

from lake import DUPLICATES, RUNS, BatchOutput, Sink, SinkHandle, WriteResult, silver_table
from maxlake.settings import Settings
from quality import ValidationGateway
from schemas import EventKind
from streams.batch_rows import ColumnMessages, Columns, RawMessage, offsets_table
from streams.ingest import IngestPipeline
from streams.partition_index import PartitionIndex

TopicPartition = tuple[str, int]
KIND = EventKind.TELEMETRY


class _Lake:
    """A sink handle answering from dicts, recording every question."""

    def __init__(
        self,
        stored: dict[str, dict[TopicPartition, int]],
        duplicates: dict[TopicPartition, set[int]],
    ) -> None:
        self.stored = stored
        self.duplicates = duplicates
        self.asked: list[tuple[str, frozenset[TopicPartition], tuple[tuple[str, Any], ...]]] = []
        self.dup_asked: set[tuple[Any, ...]] = set()

    def stored_offsets(
        self,
        table: str,
        partitions: Sequence[TopicPartition],
        topic_ids: Mapping[str, str | None],
        worker: str,
    ) -> dict[TopicPartition, int]:
        asked = {t for t, _ in partitions}
        ids = tuple(sorted((t, i) for t, i in topic_ids.items() if t in asked))
        self.asked.append((table, frozenset(partitions), ids))
        return {tp: self.stored.get(table, {}).get(tp, -1) for tp in partitions}

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
        self.dup_asked.add((kind, topic, partition, first, last, topic_id))
        return {o for o in self.duplicates.get((topic, partition), set()) if first <= o <= last}

    def recent_event_ids(self, kind: str, *, tenant: str, topic: str, since: date) -> pa.Table:
        raise AssertionError("not asked by the checks under test")


class _Sink:
    def __init__(self, lake: _Lake) -> None:
        self.lake = lake

    def handle(self) -> SinkHandle:
        return cast(SinkHandle, self.lake)

    def write(self, batch: BatchOutput) -> WriteResult:
        raise AssertionError("nothing is written here")


def _pipeline(tmp_path: Path, lake: _Lake) -> IngestPipeline:
    return IngestPipeline(
        Settings(lake_root=str(tmp_path)),
        cast(ValidationGateway, None),
        cast(Sink, _Sink(lake)),
        worker="w",
    )


def _reference_not_in_lake(
    handle: _Lake, messages: Sequence[RawMessage], cols: Columns
) -> Sequence[RawMessage]:
    """``_not_in_lake`` as it was: one tuple per message."""
    if not messages:
        return messages
    partitions = sorted(set(zip(cols.topic, cols.partition, strict=True)))
    topic_ids = dict(zip(cols.topic, cols.topic_id, strict=True))
    done = handle.stored_offsets(RUNS, partitions, topic_ids, "w")
    if all(v < 0 for v in done.values()):
        return messages
    return [m for m in messages if m.offset > done[(m.topic, m.partition)]]


def _reference_committed_decisions(
    handle: _Lake, messages: Sequence[RawMessage], cols: Columns, keep: np.ndarray
) -> dict[int, bool]:
    """``_committed_decisions`` as it was: Arrow group_by, one tuple per kept message."""
    kept = offsets_table(cols).filter(pa.array(keep))
    if kept.num_rows == 0:
        return {}
    spans = kept.group_by(["topic", "partition"]).aggregate([("offset", "min")])
    firsts = {
        (t, p): o
        for t, p, o in zip(
            spans["topic"].to_pylist(),
            spans["partition"].to_pylist(),
            spans["offset_min"].to_pylist(),
            strict=True,
        )
    }
    topic_ids = dict(zip(cols.topic, cols.topic_id, strict=True))
    dup_versions = handle.stored_offsets(DUPLICATES, list(firsts), topic_ids, "w")
    silver_versions = handle.stored_offsets(silver_table(KIND), list(firsts), topic_ids, "w")
    replayed = {tp for tp, f in firsts.items() if f <= max(dup_versions[tp], silver_versions[tp])}
    decided: dict[int, bool] = {}
    for idx in np.flatnonzero(keep).tolist():
        m = messages[idx]
        tp = (m.topic, m.partition)
        if tp not in replayed:
            continue
        first, dup_version = firsts[tp], dup_versions[tp]
        in_duplicates = (
            handle.duplicate_offsets(
                KIND.value,
                topic=m.topic,
                partition=m.partition,
                first=first,
                last=dup_version,
                topic_id=topic_ids[m.topic],
            )
            if first <= dup_version
            else set()
        )
        if m.offset <= dup_version:
            decided[idx] = m.offset in in_duplicates
        elif m.offset <= silver_versions[tp]:
            decided[idx] = False
    return decided


def _batch(rng: random.Random) -> list[RawMessage]:
    """Messages over 1-3 topics and up to 6 partitions each (unique offsets per partition,
    not always in order), sometimes a second topic id for a topic, in runs or shuffled."""
    topics = rng.sample(["m.a.telemetry", "m.b.telemetry", "m.c.telemetry"], rng.randint(1, 3))
    out: list[RawMessage] = []
    for topic in topics:
        ids: list[str | None] = [rng.choice([None, f"id-{topic}"])]
        if rng.random() < 0.2:
            ids.append(f"id2-{topic}")
        for partition in rng.sample(range(8), rng.randint(1, 6)):
            start = rng.randint(0, 500)
            offsets = list(range(start, start + rng.randint(1, 60)))
            if rng.random() < 0.3:
                rng.shuffle(offsets)
            out.extend(
                RawMessage(topic, partition, o, None, b"k", b"{}", rng.choice(ids)) for o in offsets
            )
    if rng.random() < 0.5:
        rng.shuffle(out)
    return out


def _lake(rng: random.Random, batch: Sequence[RawMessage]) -> _Lake:
    """Stored versions per table around the batch's offsets (or none), random duplicates."""
    spans: dict[TopicPartition, list[int]] = {}
    for m in batch:
        spans.setdefault((m.topic, m.partition), []).append(m.offset)
    stored: dict[str, dict[TopicPartition, int]] = {}
    duplicates: dict[TopicPartition, set[int]] = {}
    for table in (RUNS, DUPLICATES, silver_table(KIND)):
        if rng.random() < 0.2:
            continue
        stored[table] = {
            tp: rng.choice([-1, min(o) - 1, rng.randint(min(o), max(o)), max(o) + 5])
            for tp, o in spans.items()
            if rng.random() < 0.8
        }
    for tp, offsets in spans.items():
        duplicates[tp] = {o for o in offsets if rng.random() < 0.3}
    return _Lake(stored, duplicates)


def _same(index: PartitionIndex, other: PartitionIndex) -> None:
    assert (index.pairs, index.topic_ids) == (other.pairs, other.topic_ids)
    assert index.which.tolist() == other.which.tolist()
    assert index.offset.tolist() == other.offset.tolist()


@pytest.mark.parametrize("seed", range(25))
def test_the_checks_answer_as_the_per_message_versions(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(10):
        given = _batch(rng)
        as_columns = rng.random() < 0.5
        messages: Sequence[RawMessage] = ColumnMessages(Columns.of(given)) if as_columns else given
        lake = _lake(rng, given)
        reference = _Lake(lake.stored, lake.duplicates)
        worker = _pipeline(tmp_path, lake)

        kept, cols, index = worker._not_in_lake(messages, Columns.of(messages))
        expected = _reference_not_in_lake(reference, messages, Columns.of(messages))
        assert list(kept) == list(expected)
        assert cols == Columns.of(expected)
        _same(index, PartitionIndex.of(cols))

        keep = np.array([rng.random() < 0.8 for _ in kept], bool)
        decided = worker._committed_decisions(KIND, cols, keep, index)
        assert decided == _reference_committed_decisions(reference, kept, cols, keep)
        assert lake.asked == reference.asked
        assert lake.dup_asked == reference.dup_asked
        # A half of a split batch builds its own index: the same answer.
        assert worker._committed_decisions(KIND, cols, keep) == decided


@pytest.mark.parametrize("seed", range(20))
def test_the_index_holds_what_the_messages_say(seed: int) -> None:
    rng = random.Random(seed)
    given = _batch(rng)
    if rng.random() < 0.3:  # partitions far apart: the sorted path
        given = [m._replace(partition=m.partition * 400_000) for m in given]
    cols = Columns.of(given)
    index = PartitionIndex.of(cols)

    assert index.pairs == tuple(sorted(set(zip(cols.topic, cols.partition, strict=True))))
    assert [index.pairs[w] for w in index.which.tolist()] == [(m.topic, m.partition) for m in given]
    assert index.offset.tolist() == list(cols.offset)
    assert index.topic_ids == dict(zip(cols.topic, cols.topic_id, strict=True))
    keep = np.array([rng.random() < 0.5 for _ in given], bool)
    lowest: dict[TopicPartition, int] = {}
    for m, k in zip(given, keep.tolist(), strict=True):
        if k:
            tp = (m.topic, m.partition)
            lowest[tp] = min(lowest.get(tp, m.offset), m.offset)
    assert index.first_offsets(keep) == dict(sorted(lowest.items()))
    values = {tp: rng.randint(0, 9) for tp in index.pairs if rng.random() < 0.5}
    assert index.per_partition(values, -1).tolist() == [
        values.get((m.topic, m.partition), -1) for m in given
    ]


def test_an_empty_batch_has_an_empty_index() -> None:
    index = PartitionIndex.of(Columns.of([]))
    assert (index.pairs, index.topic_ids, len(index.which), len(index.offset)) == ((), {}, 0, 0)
    assert index.first_offsets(np.zeros(0, bool)) == {}
