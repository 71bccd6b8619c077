"""The topic-id check asks the leader of every partition it marks verified, not only of the
batch's partitions: a response buffered for another partition, served by a leader that already
serves the topic's new incarnation, must not be taken for the old incarnation's on the strength
of a stale broker's answer (its records would be written under the old topic id, and again
under the new one once the partition is sought to the new start)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from maxlake.settings import Settings
from streams.batch_lineage import LineageCheck
from streams.kafka_records import RecordBlock, RecordBlocks
from streams.write_block import WriteBlock

OLD = uuid.UUID("11111111-2222-3333-4444-555555555555")
NEW = uuid.UUID("99999999-2222-3333-4444-555555555555")
P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


class _Cluster:
    def __init__(self) -> None:
        self.leaders = {("t", 0): 1, ("t", 1): 2}
        self.answers = {1: NEW, 2: OLD}  # node 1 (leads P0) applied the recreation, node 2 not yet
        self.asked: list[int] = []

    def leader_for_partition(self, tp: Any) -> int | None:
        return self.leaders.get((tp.topic, tp.partition))


class _Client:
    def __init__(self) -> None:
        self.cluster = _Cluster()

    def get_random_node(self) -> int:
        return 2

    async def send(self, node: int, request: Any) -> Any:
        self.cluster.asked.append(node)
        return SimpleNamespace(topics=[(0, "t", self.cluster.answers[node], False, [])])


class _Consumer:
    def __init__(self) -> None:
        self._client = _Client()
        self.received = {P0: 1500, P1: 1000}

    def highwater(self, tp: TopicPartition) -> int:
        return 10

    def last_poll_timestamp(self, tp: TopicPartition) -> int:
        return self.received[tp]

    def assignment(self) -> set[TopicPartition]:
        return {P0, P1}

    async def getmany(self, tp: TopicPartition, timeout_ms: int) -> dict[Any, Any]:
        return {}


class _Engine(LineageCheck):
    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(lake_root=str(tmp_path))
        self.fake = _Consumer()
        self.consumer: Any = self.fake
        self.block = WriteBlock("w", tmp_path)
        self._topic_ids = {"t": str(OLD)}
        self._ready = {P0, P1}
        self._next: dict[TopicPartition, int] = {}
        self._out_of_range: dict[TopicPartition, int] = {}
        self.gaps: list[Any] = []
        self._init_lineage_check()

    async def _record_gap(self, *args: Any, **kw: Any) -> None:
        self.gaps.append(args)

    def _pause(self) -> int:
        return 0

    def _resume(self) -> None:
        pass


def _records(first: int, last: int) -> RecordBlocks:
    rows = [
        SimpleNamespace(offset=o, timestamp=0, key=None, value=b"{}")
        for o in range(first, last + 1)
    ]
    return RecordBlocks([RecordBlock.of_records(rows)])


def test_a_partition_whose_leader_was_not_asked_is_not_verified(tmp_path: Path) -> None:
    engine = _Engine(tmp_path)
    consumer: Any = engine.fake
    # Batch k: P1's records only (its leader, node 2, is stale). P0's next response (the new
    # incarnation's offsets 0-4, from node 1) arrived while the batch waited (stamp 1500).
    batch_k = {P1: _records(50, 59)}
    engine._next[P1] = 60
    asyncio.run(engine._verify_lineages(consumer, batch_k, {}, {P1: [(0, 1000)]}))
    assert sorted(consumer._client.cluster.asked) == [1, 2]  # P0 is verified: its leader asked
    # Batch k+1: P0's records from that response.
    batch_k1 = {P0: _records(0, 4)}
    engine._next[P0] = 5
    asyncio.run(engine._verify_lineages(consumer, batch_k1, {}, {P0: [(0, 1500)]}))
    # Before the fix: the new incarnation's offsets 0-4 were kept, written under the old id.
    assert P0 not in batch_k1, "new-incarnation records kept under the old topic id"
