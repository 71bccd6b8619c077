"""Positioning a partition from the lake and the out-of-range path ask the leaders of the
partitions for topic ids, like the check before each batch: a broker that has not applied a
topic's recreation yet (here the admin client's random broker) still answers the old id, and
positioning under it read the lake of the old lineage and sought the new incarnation past its
first offsets, or recorded the new incarnation's offsets as a gap under the old id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from maxlake.settings import Settings
from schemas import EventKind
from streams.batch_engine import BatchEngine
from streams.write_block import WriteBlock

OLD = uuid.UUID("11111111-2222-3333-4444-555555555555")
NEW = uuid.UUID("99999999-2222-3333-4444-555555555555")
TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)

RANDOM_NODE = 1
"""The broker the admin client (and aiokafka's ``get_random_node``) happens to ask."""


class _Cluster:
    """Three brokers; node 1 has not applied the topic's recreation yet (stale metadata)."""

    def __init__(self) -> None:
        self.leaders = {("t", 0): 2, ("t", 1): 3}
        self.answers = {1: OLD, 2: NEW, 3: NEW}
        self.stale_answers = -1  # how many more times node 1 answers OLD (-1: always)
        self.asked: list[int] = []

    def answer(self, node: int) -> uuid.UUID:
        self.asked.append(node)
        if node == 1 and self.stale_answers == 0:
            return NEW
        if node == 1 and self.stale_answers > 0:
            self.stale_answers -= 1
        return self.answers[node]

    def leader_for_partition(self, tp: Any) -> int | None:
        return self.leaders.get((tp.topic, tp.partition))


class _Client:
    def __init__(self) -> None:
        self.cluster = _Cluster()

    def get_random_node(self) -> int:
        return RANDOM_NODE

    async def send(self, node: int, request: Any) -> Any:
        return SimpleNamespace(topics=[(0, "t", self.cluster.answer(node), False, [])])


def _stale_admin(settings: Settings, topics: Iterable[str], **kw: Any) -> dict[str, str]:
    """What the admin client answered: its random broker's view (node 1, stale)."""
    return {t: str(OLD) for t in topics}


class _Consumer:
    """The new incarnation holds offsets 0-9; the worker was at 42 in the old one."""

    def __init__(self) -> None:
        self._client = _Client()
        self.sought: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return {TP0, TP1}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought[tp] = offset

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    async def position(self, tp: TopicPartition) -> int:
        return 42

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 10)

    def highwater(self, tp: TopicPartition) -> int:
        return 42

    def last_poll_timestamp(self, tp: TopicPartition) -> int:
        return 1000


class _Engine(BatchEngine):
    """The batch engine over a lake holding offsets 0-41 of the old incarnation."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(
            Settings(lake_root=str(tmp_path / "lake"), broker_session_timeout_s=10.0),
            {"t": EventKind.TELEMETRY},
            lambda: None,  # type: ignore[arg-type,return-value]
            block=WriteBlock("w", tmp_path),
        )
        self.fake = _Consumer()
        self.consumer = self.fake
        self._topic_ids["t"] = str(OLD)
        self._ready.add(TP0)
        self.read_under: list[str] = []
        self.gaps: list[tuple[int, int, str, str | None]] = []

    async def _read_lake(
        self, tps: Sequence[TopicPartition], lineages: dict[str, str]
    ) -> dict[TopicPartition, int]:
        self._topic_ids.update(lineages)
        self.read_under.append(lineages["t"])
        return {tp: 41 if lineages[tp.topic] == str(OLD) else -1 for tp in tps}

    async def _log_starts(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    async def _committed(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, Any]:
        return {}

    async def _record_gap(
        self, tp: TopicPartition, first: int, last: int, cause: str, topic_id: str | None = None
    ) -> None:
        tid = topic_id if topic_id is not None else self._topic_ids.get(tp.topic)
        self.gaps.append((first, last, cause, tid))


@pytest.fixture
def stale_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the engine asked the admin client before (it no longer does), it meets node 1."""
    monkeypatch.setattr("streams.batch_position.require_topic_ids", _stale_admin, raising=False)
    monkeypatch.setattr("streams.batch_position.topic_ids", _stale_admin, raising=False)
    monkeypatch.setattr("streams.batch_engine.topic_ids", _stale_admin, raising=False)


@pytest.mark.usefixtures("stale_admin")
def test_positioning_after_a_recreation_reads_the_new_lineage_from_its_start(
    tmp_path: Path,
) -> None:
    engine = _Engine(tmp_path)
    asyncio.run(engine.seek_past_lake([TP0]))
    assert engine.read_under == [str(NEW)], "the lake was read under the old lineage"
    # Before: sought to 42, past the new incarnation's offsets 0-41 (read again only once
    # the check before the next batch found the new id).
    assert engine.fake.sought == {TP0: 0}
    assert RANDOM_NODE not in engine.fake._client.cluster.asked


@pytest.mark.usefixtures("stale_admin")
def test_out_of_range_after_a_recreation_records_no_gap_under_the_old_id(
    tmp_path: Path,
) -> None:
    engine = _Engine(tmp_path)
    engine._out_of_range = {TP0: 42}
    asyncio.run(engine._reset(engine.fake))
    # Before: the new incarnation's end (10) taken for a log cut short, offsets 10-41
    # recorded as lost under the old topic id, and the partition sought to 10 (0-9 skipped).
    assert engine.gaps == []
    assert engine.fake.sought == {TP0: 0}
    assert engine._topic_ids == {"t": str(NEW)}
    assert RANDOM_NODE not in engine.fake._client.cluster.asked


@pytest.mark.usefixtures("stale_admin")
def test_a_first_positioning_waits_for_the_leaders_to_agree(tmp_path: Path) -> None:
    """A worker holding no id yet cannot tell which of two ids is the new one: it asks again
    until the stale leader has applied the recreation, and never positions under the old id."""
    engine = _Engine(tmp_path)
    engine._topic_ids.clear()
    cluster = engine.fake._client.cluster
    cluster.leaders[("t", 0)] = 1  # the stale broker leads the partition (client metadata)
    cluster.stale_answers = 1  # it applies the recreation after its first answer
    asyncio.run(engine.seek_past_lake([TP0]))
    assert cluster.asked.count(1) >= 2, "asked once: the disagreement was not asked again"
    assert engine.read_under == [str(NEW)]
    assert engine.fake.sought == {TP0: 0}
