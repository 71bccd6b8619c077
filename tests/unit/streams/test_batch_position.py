"""LakePositioning: reading the lake runs off the rebalance listener, new partitions wait paused,
and a read that outlived a rebalance is used as a lower bound (never committed, no gap)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from maxlake.settings import Settings
from streams.batch_corrupt import CorruptFetches
from streams.batch_position import LakePositioning
from streams.kafka_records import RecordBlock, RecordBlocks
from streams.topics import TopicAdminError
from streams.write_block import WriteBlock

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


class _Consumer:
    def __init__(self) -> None:
        self.assigned: set[TopicPartition] = set()
        self.sought: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought[tp] = offset

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)


class _Engine(LakePositioning):
    """The positioning half with a lake that answers when told to, and Kafka log starts."""

    def __init__(self, tmp_path: Path, done: dict[TopicPartition, int], start: int) -> None:
        self.settings = Settings(lake_root=str(tmp_path), broker_session_timeout_s=10.0)
        self.consumer = _Consumer()
        self.block = WriteBlock("w", tmp_path)
        self.corrupt = CorruptFetches(None, self.settings)
        self._topic_ids, self._positions, self._sought = {}, {}, {}
        self._ready: set[TopicPartition] = set()
        self._out_of_range: dict[TopicPartition, int] = {}
        self.done, self.start = done, start
        self.answer = asyncio.Event()
        self.reads = 0
        self.ids = {"t": "id-1"}
        self.read_ids: list[dict[str, str]] = []
        self.gaps: list[tuple[TopicPartition, int, int]] = []
        self._init_positioning()

    async def _lineages(
        self,
        topics: Sequence[str],
        *,
        require: bool = True,
        held: dict[str, str] | None = None,
    ) -> dict[str, str]:
        return {t: self.ids[t] for t in topics if t in self.ids}

    async def _read_lake(
        self, tps: Sequence[TopicPartition], lineages: dict[str, str]
    ) -> dict[TopicPartition, int]:
        self.reads += 1
        self.read_ids.append(dict(lineages))
        await self.answer.wait()
        # What the lake holds is of the first lineage; a topic created again starts empty.
        return {tp: self.done.get(tp, -1) if lineages[tp.topic] == "id-1" else -1 for tp in tps}

    async def _log_starts(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.start)

    async def _record_gap(
        self, tp: TopicPartition, first: int, last: int, cause: str, topic_id: str | None = None
    ) -> None:
        self.gaps.append((tp, first, last))

    async def _committed(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, Any]:
        return {}

    def assign(self, *tps: TopicPartition) -> None:
        """A rebalance: everything revoked, ``tps`` assigned (as the listener does it)."""
        self._ready.clear()
        self.consumer.assigned = set(tps)  # type: ignore[union-attr]
        self.start_positioning(list(tps))


async def _settled(engine: _Engine) -> None:
    for _ in range(50):
        await asyncio.sleep(0)
        task = engine._position_task
        if task is not None and task.done() and not engine._waiting():
            return


def test_new_partitions_wait_paused_until_the_lake_answers(tmp_path: Path) -> None:
    async def scenario() -> _Engine:
        engine = _Engine(tmp_path, {TP0: 41}, start=0)
        engine.assign(TP0, TP1)
        await asyncio.sleep(0)
        assert engine.consumer.paused == {TP0, TP1}  # type: ignore[union-attr]
        assert not engine._ready
        engine.answer.set()
        await _settled(engine)
        return engine

    engine = asyncio.run(scenario())
    assert engine.consumer.sought == {TP0: 42, TP1: 0}  # type: ignore[union-attr]
    assert engine.consumer.paused == set()  # type: ignore[union-attr]
    assert engine._ready == {TP0, TP1}
    assert engine._sought == {TP0: 42, TP1: 0}  # committed with the next batch
    assert engine.reads == 1


def test_a_read_that_outlived_a_rebalance_is_used_but_not_committed(tmp_path: Path) -> None:
    async def scenario() -> _Engine:
        engine = _Engine(tmp_path, {TP0: 41, TP1: 9}, start=0)
        engine.assign(TP0, TP1)
        await asyncio.sleep(0)
        engine.assign(TP0, TP1)  # a rebalance while the lake is being read
        engine.answer.set()
        await _settled(engine)
        return engine

    engine = asyncio.run(scenario())
    assert engine.reads == 1, "the read under way is not started again"
    assert engine.consumer.sought == {TP0: 42, TP1: 10}  # type: ignore[union-attr]
    assert engine._ready == {TP0, TP1}
    assert engine._sought == {}, "a lower bound may lie below the group's committed offset"


def test_a_stale_read_records_no_gap_and_the_next_read_decides(tmp_path: Path) -> None:
    async def scenario() -> _Engine:
        engine = _Engine(tmp_path, {TP0: 4}, start=20)
        engine.assign(TP0)
        await asyncio.sleep(0)
        engine.assign(TP0)
        engine.answer.set()
        await _settled(engine)
        return engine

    engine = asyncio.run(scenario())
    assert engine.reads == 2
    assert engine.gaps == [(TP0, 5, 19)]  # recorded once, by the read of the current assignment
    assert engine.consumer.sought == {TP0: 20}  # type: ignore[union-attr]
    assert engine._sought == {TP0: 20}


def test_a_read_that_outlived_the_topic_s_lineage_positions_nothing(tmp_path: Path) -> None:
    """The topic was deleted and created again (a new id) while the lake was read: the answer is
    about the old lineage, so the partitions wait for a read under the new id."""

    async def scenario() -> _Engine:
        engine = _Engine(tmp_path, {TP0: 41}, start=0)
        engine.assign(TP0)
        await asyncio.sleep(0)
        engine.ids = {"t": "id-2"}
        engine.assign(TP0)
        engine.answer.set()
        await _settled(engine)
        return engine

    engine = asyncio.run(scenario())
    assert engine.read_ids == [{"t": "id-1"}, {"t": "id-2"}]
    assert engine.consumer.sought == {TP0: 0}  # type: ignore[union-attr]
    assert engine.gaps == []


def test_every_seek_moves_the_next_expected_offset(tmp_path: Path) -> None:
    """A seek backwards without a rebalance (a new lineage sought to its start, a position
    beyond the log end sought back to it): the records from there on are wanted again, so the
    next expected offset follows the seek, and the unfinished batch keeps only what lies
    below it. A pause at the placeholder forgets it."""

    async def scenario() -> _Engine:
        engine = _Engine(tmp_path, {}, start=0)
        engine.assign(TP0, TP1)
        engine.answer.set()
        await _settled(engine)
        engine._next[TP0] = 500
        engine._filling[TP0] = RecordBlocks(
            [_block(range(490, 493)), _block(range(493, 500))]  # two fetches
        )
        engine._seek(TP0, 495)
        engine._next[TP1] = 7
        engine._unposition(TP1)
        return engine

    engine = asyncio.run(scenario())
    assert engine._next == {TP0: 495}
    assert engine._filling[TP0].offsets().tolist() == list(range(490, 495))
    assert engine.consumer.sought == {TP0: 495, TP1: 0}  # type: ignore[union-attr]
    assert TP1 in engine.consumer.paused  # type: ignore[union-attr]
    assert engine._ready == {TP0}


def _block(offsets: range) -> RecordBlock:
    records = [SimpleNamespace(offset=o, timestamp=0, key=None, value=b"{}") for o in offsets]
    return RecordBlock.of_records(records)


class _NoBroker(_Engine):
    async def _lineages(
        self,
        topics: Sequence[str],
        *,
        require: bool = True,
        held: dict[str, str] | None = None,
    ) -> dict[str, str]:
        raise TopicAdminError("the broker at 127.0.0.1:1 did not answer in 60 s")


def test_a_positioning_kafka_failed_names_kafka_not_the_lake(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker gone while partitions are positioned (kill -9): the log must not send the
    operator to the lake."""

    async def scenario() -> _Engine:
        engine = _NoBroker(tmp_path, {}, start=0)
        engine.assign(TP0)
        await _settled(engine)
        return engine

    with caplog.at_level(logging.WARNING, logger="streams.batch_engine"):
        engine = asyncio.run(scenario())
    assert not engine._ready
    lines = [r.getMessage() for r in caplog.records if "not positioned" in r.getMessage()]
    assert lines, caplog.text
    assert "Kafka did not answer" in lines[0], lines
    assert "lake could not be read" not in lines[0], lines


class _GapEngine(_Engine):
    """The real ``_record_gap`` over a lake that keeps the rows it is given."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path, {}, start=0)
        self.rows: list[Any] = []
        self._topic_ids = {"t": "id-1"}

    async def _record_gap(
        self, tp: TopicPartition, first: int, last: int, cause: str, topic_id: str | None = None
    ) -> None:
        await LakePositioning._record_gap(self, tp, first, last, cause, topic_id)

    def _reader(self) -> Any:
        return SimpleNamespace(record_gap=lambda gap, worker: self.rows.append(gap))

    def pipeline(self) -> Any:
        return SimpleNamespace(worker="w")


def _hold_at(engine: _Engine, tp: TopicPartition, offset: int) -> None:
    from streams.kafka_records import CorruptFetch  # noqa: PLC0415

    engine.consumer.assigned = {tp}  # type: ignore[union-attr]
    for _ in range(engine.settings.corrupt_fetch_attempts):
        engine.corrupt.failed(engine.consumer, tp, CorruptFetch(offset, "corrupt", end=offset + 55))


def test_records_deleted_at_a_held_corrupt_batch_are_a_gap_of_their_own_cause(
    tmp_path: Path,
) -> None:
    """Deleting a lost corrupt batch was recorded as expired_before_ingest, like retention:
    an audit could not tell data lost to corruption from data lost to retention."""
    engine = _GapEngine(tmp_path)
    _hold_at(engine, TP0, 7858)
    asyncio.run(engine._position_after(TP0, 7857, 7913))
    asyncio.run(engine._position_after(TP1, 99, 150))  # no hold there: retention
    assert [(g.partition, g.from_offset, g.to_offset, g.cause) for g in engine.rows] == [
        (0, 7858, 7912, "deleted_at_corrupt_batch"),
        (1, 100, 149, "expired_before_ingest"),
    ]


def test_a_worker_does_not_record_the_same_gap_twice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After a rebalance gave the partition back, the same worker wrote the same gap row again
    (and logged it as lost twice)."""
    engine = _GapEngine(tmp_path)
    caplog.set_level(logging.INFO, "streams.batch_engine")
    asyncio.run(engine._position_after(TP0, 18118, 18719))
    asyncio.run(engine._position_after(TP0, 18118, 18719))
    assert [(g.from_offset, g.to_offset) for g in engine.rows] == [(18119, 18718)]
    assert "already recorded in ops/gaps by this worker" in caplog.text
