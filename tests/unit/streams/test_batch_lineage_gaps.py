"""What the lineage check records in ``ops/gaps`` when a topic has a new id: the old
incarnation's offsets from the first one not kept up to the highest the client was told of."""

from __future__ import annotations

import asyncio
import errno
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from maxlake.settings import Settings
from streams.batch_lineage import LineageCheck
from streams.kafka_records import RecordBlock, RecordBlocks
from streams.write_block import WriteBlock

TP = TopicPartition("t", 0)


class _Consumer:
    def __init__(self, highwater: int, received: int) -> None:
        self.hw = highwater
        self.received = received

    def highwater(self, tp: TopicPartition) -> int:
        return self.hw

    def last_poll_timestamp(self, tp: TopicPartition) -> int:
        return self.received

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def getmany(self, tp: TopicPartition, timeout_ms: int) -> dict[Any, Any]:
        return {}


class _Engine(LineageCheck):
    def __init__(self, tmp_path: Path, consumer: _Consumer) -> None:
        self.settings = Settings(lake_root=str(tmp_path))
        self.consumer = consumer
        self.block = WriteBlock("w", tmp_path)
        self._topic_ids = {"t": "old"}
        self._ready = {TP}
        self._next: dict[TopicPartition, int] = {}
        self._out_of_range: dict[TopicPartition, int] = {}
        self.gaps: list[tuple[TopicPartition, int, int, str]] = []
        self.disk_full = False
        self._init_lineage_check()

    async def _record_gap(
        self, tp: TopicPartition, first: int, last: int, cause: str, topic_id: str | None = None
    ) -> None:
        assert topic_id == "old"
        if self.disk_full:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._topic_ids["t"] = "new"  # a positioning read meanwhile must not change the id
        self.gaps.append((tp, first, last, cause))

    def _pause(self) -> int:
        return 0

    def _resume(self) -> None:
        pass


def _records(first: int, last: int) -> RecordBlocks:
    records = [
        SimpleNamespace(offset=o, timestamp=0, key=None, value=b"{}")
        for o in range(first, last + 1)
    ]
    return RecordBlocks([RecordBlock.of_records(records)])


def _split(engine: _Engine, batch: RecordBlocks, stamps: list[tuple[int, int]]) -> dict[Any, Any]:
    records = {TP: batch}
    engine._next[TP] = batch.last_offset() + 1
    asyncio.run(
        engine._split_recreated(
            engine.consumer,
            "t",
            "new",
            records,
            {},
            {TP: stamps},
        )
    )
    return records


def test_discarded_and_buffered_offsets_are_one_gap_under_the_old_id(tmp_path: Path) -> None:
    """Batch 100-199 came from a response received after the last check (1000 ms); that
    response announced a high watermark of 300 (200-299 still buffered)."""
    engine = _Engine(tmp_path, _Consumer(highwater=300, received=2000))
    engine._verified[TP] = 1000
    records = _split(engine, _records(100, 199), [(0, 2000)])
    assert records == {}
    assert engine.gaps == [(TP, 100, 299, "discarded_topic_recreated")]
    assert engine._out_of_range == {TP: -1}


def test_kept_records_are_not_in_the_gap(tmp_path: Path) -> None:
    engine = _Engine(tmp_path, _Consumer(highwater=200, received=2000))
    engine._verified[TP] = 1000
    records = _split(engine, _records(100, 199), [(0, 900), (50, 2000)])
    assert records[TP].offsets().tolist() == list(range(100, 150))
    assert engine.gaps == [(TP, 150, 199, "discarded_topic_recreated")]


def test_an_old_incarnation_read_to_its_end_leaves_no_gap(tmp_path: Path) -> None:
    engine = _Engine(tmp_path, _Consumer(highwater=200, received=900))
    engine._verified[TP] = 1000
    records = _split(engine, _records(100, 199), [(0, 900)])
    assert len(records[TP]) == 100
    assert engine.gaps == []


def test_a_higher_watermark_announced_earlier_bounds_the_gap(tmp_path: Path) -> None:
    """A lagging worker was told 10,000 by the old incarnation; the new one's response (the
    last, 2,000 ms) announces 700: the old one's unread offsets reach 9,999."""
    consumer = _Consumer(highwater=10_000, received=900)
    engine = _Engine(tmp_path, consumer)
    engine._stamp(TP, 0)
    consumer.hw, consumer.received = 700, 2000
    engine._verified[TP] = 1000
    _split(engine, _records(500, 599), [(0, 2000)])
    assert engine.gaps == [(TP, 500, 9999, "discarded_topic_recreated")]


def test_a_position_beyond_the_new_incarnation_s_end_records_the_unread_rest(
    tmp_path: Path,
) -> None:
    """Kafka answered 'offset out of range' at 500 and the topic has a new id: the old
    incarnation announced 800, so 500-799 will never be read. A partition the lineage check
    sought (-1) has its gap recorded already."""
    engine = _Engine(tmp_path, _Consumer(highwater=800, received=900))
    other = TopicPartition("t", 1)
    asyncio.run(engine._lineage_ended({TP: 500, other: -1}, ["t"]))
    assert engine.gaps == [(TP, 500, 799, "discarded_topic_recreated")]


def test_a_gap_the_lake_refuses_during_a_rebalance_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The lake is full when the gap is written and a rebalance gives the write up: the
    range is named in the log and the engine goes on (it raised WriteAbandoned and stopped)."""
    engine = _Engine(tmp_path, _Consumer(highwater=300, received=2000))
    engine.disk_full = True
    engine.block.abandon()
    engine._verified[TP] = 1000
    with caplog.at_level(logging.WARNING, logger="streams.batch_engine"):
        _split(engine, _records(100, 199), [(0, 2000)])
    assert engine.gaps == []
    told = [r.getMessage() for r in caplog.records if "refused to record" in r.getMessage()]
    assert len(told) == 1, told
    assert "offsets 100..299" in told[0]
    assert "(topic id old)" in told[0]
    assert engine._out_of_range == {TP: -1}


def test_a_partition_revoked_during_the_gap_write_hands_over_nothing_and_gaps_its_kept_records(
    tmp_path: Path,
) -> None:
    """The gap write yields to the event loop, and a rebalance then revokes the partition: the
    batch was not handed over yet, so the rebalance did not wait for it. The kept 100-149 must
    not be written beside a gap its next owner records: they become a gap themselves."""
    engine = _Engine(tmp_path, _Consumer(highwater=200, received=2000))
    engine._verified[TP] = 1000
    record_gap = engine._record_gap

    async def revoking(
        tp: TopicPartition, first: int, last: int, cause: str, topic_id: str | None = None
    ) -> None:
        await record_gap(tp, first, last, cause, topic_id)
        engine._ready.discard(TP)

    async def ask(consumer: Any, topics: list[str], partitions: Any = ()) -> dict[str, str]:
        return {"t": "new"}

    engine._record_gap = revoking  # type: ignore[method-assign]
    engine._ask_topic_ids = ask  # type: ignore[method-assign]
    batch = _records(100, 199)
    records = {TP: batch}
    engine._next[TP] = 200
    asyncio.run(engine._verify_lineages(engine.consumer, records, {}, {TP: [(0, 900), (50, 2000)]}))
    assert records == {}
    assert engine.gaps == [
        (TP, 150, 199, "discarded_topic_recreated"),
        (TP, 100, 149, "discarded_topic_recreated"),
    ]
