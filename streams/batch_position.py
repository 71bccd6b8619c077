"""Where the batch engine resumes each assigned partition: right after what the lake holds.

Reading the lake's resume points (``ops/validation_runs`` app transactions) is a round of HTTP
requests on an object store: seconds, a minute on a slow or throttled one. It runs **off the
rebalance listener**, in a background task and a thread of its own: aiokafka heartbeats only
once the assignment listener has returned, so a read in the listener that outlasted the
session timeout got the worker evicted, and every later rebalance restarted the same read
(docs/OPERATIONS.md, "A slow object store"). Meanwhile the new partitions are paused (nothing
is fetched from them) and the other partitions are read and written as usual.

A read is never thrown away by a rebalance: it goes on, and its result positions the partitions
that are assigned (again) and still unpositioned when it ends. A read that began before the
partition's latest assignment is a lower bound (another owner may have written more since):
the partition resumes there, the pipeline skips what the lake already holds, and the sought
position is not committed to Kafka (it might lie below the group's committed offset), nor is a
gap recorded from it (the partition is read again instead). Nor are the batches read from there
committed until they pass what the group committed in the same lineage (commits carry the
topic id as metadata): the group's offset never goes backwards within a lineage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from kafka.errors import KafkaError as KafkaPythonError

from lake import RUNS
from lake.lineage import DELETED_AT_CORRUPT_BATCH, EXPIRED_BEFORE_INGEST, Gap
from lake.sink import SinkHandle
from maxlake.errors import exception_text
from maxlake.settings import Settings
from streams.batch_corrupt import CorruptFetches
from streams.ingest import IngestPipeline
from streams.kafka_records import RecordBlocks
from streams.kafka_topic_ids import (
    UnsupportedBrokerError,
    current_topic_ids,
    require_current_topic_ids,
)
from streams.topics import TopicAdminError
from streams.write_block import WriteBlock

__all__ = ["LakePositioning"]

logger = logging.getLogger("streams.batch_engine")

_PLACEHOLDER = 0
"""Position given to a partition while it waits for the lake (it is paused, never fetched):
without one, the client would look up the group's committed offset and, for a group that never
committed, raise NoOffsetForPartitionError at every fetch until the partition is positioned."""


def _unreached(exc: BaseException) -> str:
    """What a failed positioning could not reach, for the log: Kafka or the lake."""
    if isinstance(exc, (KafkaError, TopicAdminError, KafkaPythonError, UnsupportedBrokerError)):
        return "Kafka did not answer where they start or under which topic id"
    return "the lake could not be read"


class LakePositioning:
    """The positioning half of :class:`~streams.batch_engine.BatchEngine` (a mixin).

    Shapes: ``_ready`` are the assigned partitions positioned from the lake (only they are
    fetched, committed and resumed); ``_positions`` / ``_sought`` map a partition to its next
    offset to read (``_sought``: positions to commit even if no record follows); ``_next`` to
    the next offset the batch being filled expects (records below it were taken already);
    ``_group_commits`` to the group's committed offset and the topic id it was committed under
    (the lineage; commits below it in that lineage are not made). Every seek goes through
    :meth:`_move`, which keeps them all in step with the client.
    """

    settings: Settings
    consumer: AIOKafkaConsumer | None
    pipeline: Callable[[], IngestPipeline]
    block: WriteBlock
    corrupt: CorruptFetches
    _topic_ids: dict[str, str]
    _positions: dict[TopicPartition, int]
    _sought: dict[TopicPartition, int]
    _ready: set[TopicPartition]
    _out_of_range: dict[TopicPartition, int]
    _next: dict[TopicPartition, int]
    _filling: dict[TopicPartition, RecordBlocks]
    _highwater: dict[TopicPartition, int]

    def _init_positioning(self) -> None:
        self._next = {}
        self._filling = {}
        self._group_commits: dict[TopicPartition, tuple[int, str]] = {}
        self._gaps_recorded: set[Gap] = set()
        self._highwater = {}
        self._position_pool = ThreadPoolExecutor(1, thread_name_prefix="maxlake-position")
        self._lake_reader: SinkHandle | None = None
        self._position_task: asyncio.Task[None] | None = None
        self._position_failed_at = 0.0
        self._assignments = 0

    def start_positioning(self, assigned: Sequence[TopicPartition]) -> None:
        """Pause newly ``assigned`` partitions and position them from the lake in the
        background (called by the assignment listener; returns at once)."""
        self._assignments += 1
        if self.consumer is None or not assigned:
            return
        owned = self.consumer.assignment()
        for tp in assigned:
            if tp in owned:
                self._move(tp, None)
        self._position_failed_at = 0.0
        self._start_read()

    def _fetching(self) -> bool:
        """Whether positioned partitions may be fetched now (else they stay paused): unless a
        batch the lake refused waits for its retry. Blocked with no batch held (a rebalance
        abandoned it), they were never resumed before: nothing was left to retry, so the
        worker stayed paused for good after space returned."""
        return not (self.block.blocked and self.block.holding)

    def stop_positioning(self) -> None:
        """Cancel a read under way (shutdown); its thread ends with the read."""
        if self._position_task is not None:
            self._position_task.cancel()
        self._position_pool.shutdown(wait=False, cancel_futures=True)

    def _waiting(self) -> set[TopicPartition]:
        if self.consumer is None:
            return set()
        assigned: set[TopicPartition] = self.consumer.assignment()
        return assigned - self._ready - set(self._out_of_range)

    def _start_read(self) -> None:
        """Read the lake for the partitions waiting, unless a read is under way (its end
        starts the next one)."""
        task = self._position_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            return
        waiting = self._waiting()
        if waiting:
            self._position_task = asyncio.create_task(
                self._position(sorted(waiting), self._assignments)
            )

    async def _position_unpositioned(self) -> None:
        """Retry, every ``lake_retry_max_s``, partitions the lake could not position before."""
        if not self._position_failed_at or not self._waiting():
            return
        if time.monotonic() - self._position_failed_at < self.settings.lake_retry_max_s:
            return
        self._start_read()

    async def _position(self, tps: list[TopicPartition], assignments: int) -> None:
        """One background read of the lake for ``tps``, then their seeks."""
        retried = self._position_failed_at > 0
        started = time.monotonic()
        try:
            topics = sorted({tp.topic for tp in tps})
            lineages = await self._lineages(topics)
            reading = time.monotonic()
            done = await self._read_lake(tps, lineages)
            lake_s = time.monotonic() - reading
            starts = await self._log_starts(tps)
            moved = await self._moved(lineages)
            committed = await self._committed(tps)
            read_s = time.monotonic() - started
            positioned = 0
            for tp in tps:
                if tp.topic in moved:
                    continue  # the read answered for another lineage: the next read decides
                done_tp, start = done.get(tp, -1), starts.get(tp, 0)
                # Asked per partition: a gap recorded for one awaits the lake, and a rebalance
                # meanwhile makes the read stale for the partitions after it.
                current = assignments == self._assignments
                if await self._position_one(tp, done_tp, start, current=current):
                    self._note_group_commit(tp, committed.get(tp))
                    positioned += 1
            current = assignments == self._assignments
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._position_failed_at = time.monotonic()
            logger.warning(
                "%d partition(s) not positioned: %s (%s); nothing of them is read until it "
                "can, retrying every %.0f s",
                len(tps),
                _unreached(exc),
                exception_text(exc),
                self.settings.lake_retry_max_s,
            )
            return
        self._position_failed_at = 0.0
        self._report(len(tps), positioned, read_s, lake_s, retried=retried, current=current)
        self._start_read()

    def _report(
        self,
        read: int,
        positioned: int,
        read_s: float,
        lake_s: float,
        *,
        retried: bool,
        current: bool,
    ) -> None:
        """Log a positioning: ``read_s`` in all, ``lake_s`` of it reading the lake (the rest
        is Kafka: topic ids, log starts, the group's commits), seconds."""
        if self.block.metrics is not None:
            self.block.metrics.position_seconds.observe(read_s)
        if lake_s >= self.settings.broker_session_timeout_s / 2:
            logger.warning(
                "the lake is slow: reading where %d partition(s) resume took %.1f s "
                "(ops/validation_runs); each is read from once positioned, the others meanwhile",
                read,
                lake_s,
            )
        kafka_s = read_s - lake_s
        logger.info(
            "%d partition(s) positioned from the lake%s in %.1f s%s%s",
            positioned,
            " after a retry" if retried else "",
            read_s,
            f" ({kafka_s:.1f} s of it waiting for Kafka)" if kafka_s >= 1.0 else "",
            "" if current else " (read began before the latest rebalance: a lower bound)",
        )

    async def _position_one(
        self, tp: TopicPartition, done: int, start: int, *, current: bool
    ) -> bool:
        """Seek and resume ``tp`` if it is assigned and waits; False when it was not."""
        if self.consumer is None or tp in self._ready or tp not in self.consumer.assignment():
            return False
        if not current and done + 1 < start:
            return False  # no gap from a stale read: the next read decides
        await self._position_after(tp, done, start, commit=current)
        if tp in self._ready and self._fetching():
            self.consumer.resume(tp)
        return tp in self._ready

    def _reader(self) -> SinkHandle:
        """The lake as the positioning thread reads it (table handles of its own)."""
        if self._lake_reader is None:
            self._lake_reader = self.pipeline().writer.handle()
        return self._lake_reader

    async def _lineages(
        self,
        topics: Sequence[str],
        *,
        require: bool = True,
        held: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """Each topic's id now (its lineage): topic -> id, as the leaders of the topics'
        assigned partitions answer (:mod:`streams.kafka_topic_ids`: a random broker that has not
        applied a recreation yet answers the old id, and positioning under it read the lake of
        the old lineage and sought the new incarnation past its first offsets). ``held``: the
        ids the engine holds (default: :attr:`_topic_ids`); another id from any leader wins.
        ``require``: ask again until every topic has one (raises TopicAdminError after a
        minute); else topics that do not exist are left out."""
        assert self.consumer is not None
        wanted = list(topics)
        leaders_of = [
            (tp.topic, tp.partition) for tp in self.consumer.assignment() if tp.topic in wanted
        ]
        held = self._topic_ids if held is None else held
        ask_s = self.settings.broker_session_timeout_s
        if require:
            return await require_current_topic_ids(
                self.consumer._client, wanted, leaders_of=leaders_of, held=held, ask_timeout_s=ask_s
            )
        async with asyncio.timeout(ask_s):
            return await current_topic_ids(
                self.consumer._client, wanted, leaders_of=leaders_of, held=held
            )

    async def _moved(self, lineages: dict[str, str]) -> set[str]:
        """The topics of ``lineages`` whose id is another one now, or that no longer exist.

        A read of the lake answers for the lineages it was asked about; a topic deleted and
        created again during a slow read (and its partition assigned again meanwhile) is a new
        lineage, of which the answer says nothing: seeking the new topic past what the lake
        holds of the old one skipped its first offsets for good, and wrote the rest under the
        old id.
        """
        now = await self._lineages(sorted(lineages), require=False, held=lineages)
        moved = {topic for topic, tid in lineages.items() if now.get(topic) != tid}
        if moved:
            logger.warning(
                "topic(s) %s deleted or created again while the lake was read: their partitions "
                "are positioned by a new read, under the topic's id then",
                ", ".join(sorted(moved)),
            )
        return moved

    async def _read_lake(
        self, tps: Sequence[TopicPartition], lineages: dict[str, str]
    ) -> dict[TopicPartition, int]:
        """The last offset the lake fully holds per partition (-1: none) in the lineage
        ``lineages`` gives its topic (topic -> id, see :meth:`_lineages`)."""
        self._topic_ids.update(lineages)
        versions = await asyncio.get_running_loop().run_in_executor(
            self._position_pool,
            partial(
                self._reader().stored_offsets,
                RUNS,
                [(tp.topic, tp.partition) for tp in tps],
                {**self._topic_ids, **lineages},
                self.pipeline().worker,
            ),
        )
        await asyncio.get_running_loop().run_in_executor(
            self._position_pool, self._record_recreation_gaps, tps, lineages
        )
        return {tp: versions.get((tp.topic, tp.partition), -1) for tp in tps}

    def _record_recreation_gaps(
        self, tps: Sequence[TopicPartition], lineages: dict[str, str]
    ) -> None:
        """Record what superseded lineages of these partitions' topics lost with a killed
        worker (:func:`lake.lineage.recreation_gaps`; a sink without it records nothing)."""
        record = getattr(self._reader(), "record_recreation_gaps", None)
        if record is not None:
            parts = [(tp.topic, tp.partition) for tp in tps]
            record(lineages, parts, worker=self.pipeline().worker)

    async def _log_starts(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        if self.consumer is None:
            return {}
        owned = [tp for tp in tps if tp in self.consumer.assignment()]
        if not owned:
            return {}
        starts: dict[TopicPartition, int] = await self.consumer.beginning_offsets(owned)
        return starts

    async def seek_past_lake(self, assigned: Sequence[TopicPartition]) -> None:
        """Position each partition of ``assigned`` right after what the lake holds of its
        lineage, now (the run loop, after Kafka lost a position or a topic's id changed).

        The lake, not the group's committed offset, decides (a committed offset may belong to
        an older incarnation of the topic). Offsets Kafka no longer holds are recorded as a gap.
        """
        if self.consumer is None or not assigned:
            return
        lineages = await self._lineages(sorted({tp.topic for tp in assigned}))
        done = await self._read_lake(assigned, lineages)
        starts = await self._log_starts(assigned)
        moved = await self._moved(lineages)
        committed = await self._committed(assigned)
        for tp in assigned:
            if tp.topic in moved:
                self._unposition(tp)
            elif tp in starts:
                await self._position_after(tp, done[tp], starts[tp])
                self._note_group_commit(tp, committed.get(tp))
        if moved:
            self._start_read()

    async def _committed(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, Any]:
        """The group's committed offsets of ``tps`` with their metadata (aiokafka's
        ``OffsetAndMetadata``); empty when the broker does not answer within the session
        timeout (commits are then not held back: the lake still decides where reading
        resumes)."""
        if self.consumer is None or not tps:
            return {}
        # AIOKafkaConsumer.committed() drops the metadata, which names the lineage.
        coordinator = self.consumer._coordinator
        try:
            async with asyncio.timeout(self.settings.broker_session_timeout_s):
                answer: dict[TopicPartition, Any] = await coordinator.fetch_committed_offsets(
                    list(tps)
                )
        except (TimeoutError, KafkaError) as exc:
            logger.info(
                "the group's committed offsets of %d partition(s) not read (%s)",
                len(tps),
                exception_text(exc),
            )
            return {}
        return answer

    def _note_group_commit(self, tp: TopicPartition, committed: Any) -> None:
        """Remember what the group committed for ``tp`` and under which topic id (the
        metadata this engine commits with; unknown for commits without it)."""
        if committed is None or committed.offset < 0 or not committed.metadata:
            return
        if tp in self._ready:
            known = self._group_commits.get(tp)
            if known is None or known[1] != committed.metadata or known[0] < committed.offset:
                self._group_commits[tp] = (committed.offset, committed.metadata)

    def _below_group(self, tp: TopicPartition, offset: int, topic_id: str) -> bool:
        """Whether the group committed beyond ``offset`` for ``tp`` in lineage ``topic_id``."""
        known = self._group_commits.get(tp)
        return known is not None and known[1] == topic_id and offset < known[0]

    def _unposition(self, tp: TopicPartition) -> None:
        """Pause ``tp`` at the placeholder until a background read positions it."""
        assert self.consumer is not None
        if tp in self.consumer.assignment():
            self._move(tp, None)
        else:
            self._forget(tp)

    async def _position_after(
        self, tp: TopicPartition, done: int, start: int, *, commit: bool = True
    ) -> None:
        """Seek ``tp`` to ``done + 1``, or to the log start when Kafka lost offsets before it."""
        position = done + 1
        if position < start:
            held = self.corrupt.held_at(tp)
            cause = (
                DELETED_AT_CORRUPT_BATCH
                if held is not None and position <= held[0] < start
                else EXPIRED_BEFORE_INGEST
            )
            await self._record_gap(tp, position, start - 1, cause)
            position = start
        if not self._seek(tp, position, commit=commit):
            return
        if done >= 0:
            logger.info("%s[%d]: lake holds up to %d, seeking", tp.topic, tp.partition, done)

    def _seek(self, tp: TopicPartition, position: int, *, commit: bool = True) -> bool:
        """Seek ``tp`` if it is still assigned; False when a rebalance took it meanwhile.

        Positioning awaits the lake and the broker; a rebalance may revoke the partition during
        those awaits, and seeking it then raised IllegalStateError and crashed the worker
        (found by the soak). Its next owner positions it from the lake. ``commit``: commit the
        position to Kafka with the next batch even if no record follows it.
        """
        assert self.consumer is not None
        if tp not in self.consumer.assignment():
            logger.info(
                "%s[%d] revoked while being positioned; its next owner positions it",
                tp.topic,
                tp.partition,
            )
            return False
        self._move(tp, position, commit=commit)
        return True

    def _move(self, tp: TopicPartition, position: int | None, *, commit: bool = False) -> None:
        """Seek assigned ``tp`` to ``position``, or (None) pause it at the placeholder until the
        lake positions it. The one place the engine seeks: the bookkeeping follows every seek.

        ``_next`` follows too: a seek backwards without a rebalance (a topic created again
        unseen by the client, then sought to its new lineage's start; a position beyond the log
        end sought back to it) left the next expected offset where the old position was, and
        the records below it were dropped as "fetched again": lost, and committed past.
        Records of the unfinished batch at or beyond ``position`` are dropped (they are fetched
        again from there).
        """
        assert self.consumer is not None
        held = self.corrupt.drop(tp)
        if position is None:
            self._forget(tp)
            self.consumer.seek(tp, _PLACEHOLDER)
            self.consumer.pause(tp)
            return
        self.consumer.seek(tp, position)
        if held and self._fetching():
            self.consumer.resume(tp)
        self._next[tp] = self._positions[tp] = position
        if commit:
            self._sought[tp] = position
        else:
            self._sought.pop(tp, None)
        self._ready.add(tp)
        taken = self._filling.get(tp)
        if taken and taken.last_offset() >= position:
            self._filling[tp] = taken.below(position)

    def _forget(self, tp: TopicPartition) -> None:
        """Drop what the engine knows of ``tp``'s position (revoked, or waiting for the lake)."""
        self._ready.discard(tp)
        self._positions.pop(tp, None)
        self._sought.pop(tp, None)
        self._next.pop(tp, None)
        self._group_commits.pop(tp, None)
        self._highwater.pop(tp, None)

    async def _record_gap(
        self, tp: TopicPartition, first: int, last: int, cause: str, topic_id: str | None = None
    ) -> None:
        """Record ``first``..``last`` of ``tp`` in ``ops/gaps`` under ``topic_id`` (default: the
        engine's id of the topic now)."""
        tid = topic_id if topic_id is not None else self._topic_ids.get(tp.topic)
        gap = Gap(tp.topic, tid, tp.partition, first, last, cause)
        if gap in self._gaps_recorded:
            # Met again after a rebalance gave the partition back: one row is enough.
            logger.info(
                "%s[%d]: offsets %d..%d already recorded in ops/gaps by this worker",
                tp.topic,
                tp.partition,
                first,
                last,
            )
            return
        await asyncio.get_running_loop().run_in_executor(
            self._position_pool,
            partial(self._reader().record_gap, gap, worker=self.pipeline().worker),
        )
        self._gaps_recorded.add(gap)
