"""The batch ingest engine: the same pipeline, fed by whole fetches instead of Faust streams.

Faust's stream machinery costs several asyncio tasks and queue hand-offs per message, which caps
one worker process at roughly 10-25k messages/s (see docs/BENCHMARKS.md), below the ingest target.
This engine keeps the Faust app (lifecycle, signals, logging, timers) but runs the consumer loop
as a Faust task over aiokafka's ``getmany``: a fetch returns thousands of records per partition as
one column block decoded natively from the fetched bytes (:mod:`streams.kafka_records`), the
batch is split by event kind and handed to the same
:class:`~streams.ingest.IngestPipeline`, and offsets are committed to Kafka only after the Delta
commits — the same exactly-once guarantee as the agent engine. When the lake refuses writes (full
disk, read-only mount), :class:`~streams.write_block.WriteBlock` pauses every assigned partition
and retries the same batch with backoff until it goes through; a shutdown or a rebalance in that
state abandons the unwritten batches (their offsets are not committed, so nothing is lost).
On assignment it seeks each partition past what the lake already holds (``ops/validation_runs``
app transactions), so a restart does not even re-read written offsets; that read runs in the
background, off the rebalance listener (:mod:`streams.batch_position`).

The pipeline runs in two worker threads, not on the event loop: a large batch takes seconds, and
a blocked loop would miss heartbeats (the group would evict the worker mid-batch) and could not
fetch ahead. One thread prepares (decodes, validates, dedupes) batch N+1 while the other writes
batch N to Delta (Arrow's JSON parser, pandas and deltalake release the GIL, so the stages
overlap on two cores) and the client fetches ahead. Batches are written and their offsets
committed strictly in order, at most two handed to the threads; a rebalance or shutdown waits
until every batch handed over is written and committed. A commit that still fails
because the group moved on is logged, not fatal: the lake holds the batch, and the partition's
next owner seeks past it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
)

from lake import BatchOutput
from maxlake.settings import Settings
from schemas import EventKind
from streams import memory
from streams.batch_consumer import batch_consumer
from streams.batch_corrupt import CorruptFetches
from streams.batch_lineage import LineageCheck
from streams.batch_position import LakePositioning
from streams.batch_rebalance import BatchRebalanceListener
from streams.batch_rows import ColumnMessages, Columns, block_columns
from streams.broker_wait import start_until_reachable
from streams.errors import StreamsError
from streams.ingest import IngestPipeline, log_batch
from streams.kafka_records import CorruptFetch, RecordBlock, RecordBlocks
from streams.write_block import WriteAbandoned, WriteBlock, worker_state_dir

__all__ = ["BatchEngine"]

logger = logging.getLogger(__name__)


class BatchEngine(LakePositioning, LineageCheck):
    """One aiokafka consumer over every ingest topic; batches of up to ``batch_max_events``."""

    def __init__(
        self,
        settings: Settings,
        topics: dict[str, EventKind] | Callable[[], dict[str, EventKind]],
        pipeline: Callable[[], IngestPipeline],
        block: WriteBlock | None = None,
    ) -> None:
        """Args:
        settings: broker, group, batch and lake settings.
        topics: ingest topic -> event kind; or a function giving it, asked again every
            ``settings.registry_poll_s`` seconds: topics it adds (a company onboarded in the
            live registry) are subscribed without a restart. Topics are never dropped.
        pipeline: the ingest pipeline (built once, in a thread).
        block: the write block shared with the worker's status (a new one by default).
        """
        self.settings = settings
        self._topics_of = topics if callable(topics) else None
        self.topics = dict(topics() if callable(topics) else topics)
        self._topics_checked_at = time.monotonic()
        self.pipeline = pipeline
        self.block = block or WriteBlock(
            f"{socket.gethostname()}-{os.getpid()}",
            worker_state_dir(settings.faust_datadir),
            lake_root=settings.lake_root,
        )
        self.consumer: AIOKafkaConsumer | None = None
        self._prepare_pool = ThreadPoolExecutor(1, thread_name_prefix="maxlake-prepare")
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="maxlake-write")
        self._releaser = memory.Releaser(settings.memory_keep_free_mib)
        self._newest: asyncio.Task[None] | None = None
        self._topic_ids: dict[str, str] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._sought: dict[TopicPartition, int] = {}
        self._ready: set[TopicPartition] = set()
        self._out_of_range: dict[TopicPartition, int] = {}
        self.repeats_dropped = 0
        self.corrupt = CorruptFetches(self.block, settings)
        self._handed: list[asyncio.Task[None]] = []
        self._init_positioning()
        self._init_lineage_check()

    async def run(self) -> None:
        """Consume until cancelled (Faust cancels its tasks on shutdown)."""
        # Before the pipeline and the worker threads allocate (docs/INGEST.md, "Memory").
        memory.configure(self.settings.arrow_memory_pool, self.settings.memory_mmap_threshold_kib)
        # Building the pipeline imports Great Expectations and builds its context: seconds
        # (12-16 s on a loaded machine). On the event loop it would stall heartbeats and the
        # first fetches right after assignment; it is built in a thread before joining.
        await asyncio.get_running_loop().run_in_executor(None, self.pipeline)
        memory.tune_collector()
        # The broker may have gone away since the worker found it (wait_for_broker).
        consumer = await start_until_reachable(
            self._start_consumer,
            self.settings.bootstrap_servers,
            "the batch consumer",
            discard=self._stop_consumer,
        )
        preparing: asyncio.Future[None] | None = None
        try:
            while True:
                if self.block.blocked and self._newest is not None and not self._newest.done():
                    self._pause()  # newly assigned partitions wait for the blocked batch too
                await self._room_for_a_batch()
                records = await self._fill_batch(consumer)
                positions = await self._advanced_positions(consumer)
                self.corrupt.moved(positions)
                if records:
                    if preparing is not None and self._newest is not None:
                        await asyncio.wait(
                            {preparing, self._newest}, return_when=asyncio.FIRST_COMPLETED
                        )
                    self._raise_if_failed()
                if records or positions:
                    # Before a batch is handed over: its topics are the ones it was read from.
                    await self._verify_lineages(consumer, records, positions, self._stamps)
                if records:
                    preparing = asyncio.get_running_loop().create_future()
                    self._newest = asyncio.create_task(
                        self._handle(
                            records, dict(self._topic_ids), positions, self._newest, preparing
                        )
                    )
                    self._handed.append(self._newest)
                    self._newest.add_done_callback(self._handed_back)
                    # The task alone holds the raw batch: it drops it once prepared.
                    del records
                else:
                    self._raise_if_failed()
                    if positions:
                        # Only transaction markers or aborted records: nothing to write, but
                        # the position moved past them (read_committed); commit it in order.
                        await self.settle()
                        await self._commit(positions)
                if self._out_of_range:
                    await self.settle()
                    await self._reset(consumer)
                await self._position_unpositioned()
                await self._follow_topics(consumer)
                if not self.block.blocked:
                    self.corrupt.resume_due(consumer, self._ready)
        finally:
            self.stop_positioning()
            # Cancelled (SIGTERM): batches in hand are still written and committed, unless the
            # lake refuses them: then they are abandoned, uncommitted, for the next owner.
            self.block.abandon()
            await asyncio.shield(self.settle())
            self.block.close()
            await consumer.stop()
            self._prepare_pool.shutdown(wait=True)
            self._write_pool.shutdown(wait=True)

    async def _start_consumer(self) -> AIOKafkaConsumer:
        """A new consumer of every ingest topic, started (it joins the group on first fetch)."""
        consumer = batch_consumer(self.settings)
        consumer.subscribe(pattern=self._pattern(), listener=BatchRebalanceListener(self))
        self.consumer = consumer
        await consumer.start()
        return consumer

    async def _stop_consumer(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def _follow_topics(self, consumer: AIOKafkaConsumer) -> None:
        """Subscribe to the topics the topic function added since it was last asked."""
        if self._topics_of is None:
            return
        if time.monotonic() - self._topics_checked_at < self.settings.registry_poll_s:
            return
        self._topics_checked_at = time.monotonic()
        wanted = await asyncio.get_running_loop().run_in_executor(None, self._topics_of)
        added = sorted(set(wanted) - set(self.topics))
        if not added:
            return
        await self.settle()
        self.topics.update({topic: wanted[topic] for topic in added})
        logger.info("subscribing to %d new topic(s): %s", len(added), ", ".join(added))
        consumer.subscribe(pattern=self._pattern(), listener=BatchRebalanceListener(self))

    def _pattern(self) -> str:
        """A subscription pattern of exactly :attr:`topics`: a topic that does not exist yet is
        picked up once it is created (Kafka metadata is refreshed every 10 s), instead of
        failing the start."""
        return "^(" + "|".join(re.escape(topic) for topic in sorted(self.topics)) + ")$"

    def _raise_if_failed(self) -> None:
        """A failed batch stops the engine: its error is raised in the consumer loop."""
        if self._newest is not None and self._newest.done():
            self._newest.result()

    async def _room_for_a_batch(self) -> None:
        """Return once fewer than two batches are in hand (or the lake is blocked).

        Batches are written strictly in order; when the lake writes slower than batches are
        prepared (a slow object store), handing over more would only queue them: memory grows,
        and a rebalance, which waits until every batch in hand is written, would take longer
        with each (six batches, 65 s, in one run before this). The client keeps fetching ahead
        meanwhile, up to its buffer bounds. While the lake refuses writes the loop goes on
        polling with the partitions paused (:class:`WriteBlock`).
        """
        while len(self._handed) >= 2 and not self.block.blocked:
            await asyncio.wait({self._handed[0]}, timeout=1.0)

    def _handed_back(self, task: asyncio.Task[None]) -> None:
        self._handed.remove(task)

    def batches_in_hand(self) -> int:
        """Batches handed to the threads and not yet written and committed (0-2)."""
        return len(self._handed)

    async def settle(self) -> bool:
        """Return once every batch in hand is written and its offsets committed (True), or
        abandoned (False; see :class:`WriteBlock`); raises what a batch raised otherwise."""
        while (newest := self._newest) is not None and not newest.done():
            await asyncio.wait({newest})
        if newest is not None:
            try:
                newest.result()
            except WriteAbandoned as exc:
                self._newest = None
                logger.warning("%s; its offsets are consumed again by their next owner", exc)
                return False
        return True

    def _pause(self) -> int:
        """Stop fetching every assigned partition; returns how many."""
        if self.consumer is None:
            return 0
        assigned = self.consumer.assignment()
        self.consumer.pause(*assigned)
        return len(assigned)

    def _resume(self) -> None:
        """Fetch again the partitions positioned from the lake (the others wait for it), but
        those waiting for a corrupt fetch's next attempt."""
        if self.consumer is not None:
            ready = self.consumer.assignment() & self._ready
            self.consumer.resume(*(ready - self.corrupt.paused()))

    async def _handle(
        self,
        records: dict[TopicPartition, RecordBlocks],
        topic_ids: dict[str, str],
        positions: dict[TopicPartition, int],
        previous: asyncio.Task[None] | None,
        prepared: asyncio.Future[None],
    ) -> None:
        """Prepare ``records``, then (after ``previous`` is done) write and commit them."""
        loop = asyncio.get_running_loop()
        # Offsets only grow within a partition's records (_take), so the last is the highest.
        offsets = {tp: batch.last_offset() + 1 for tp, batch in records.items()}
        for tp, position in positions.items():
            offsets[tp] = max(offsets.get(tp, 0), position)
        try:
            outputs = await loop.run_in_executor(
                self._prepare_pool, self._prepare, records, topic_ids
            )
        finally:
            if not prepared.done():
                prepared.set_result(None)
            # The prepared outputs hold copies of what they need: the raw records (a batch of
            # message values, ~30 MB at 50,000 snapshots) are freed before the write, not
            # after it.
            del records
        if previous is not None:
            await previous
        started = time.monotonic()
        await self.block.retry(
            lambda: loop.run_in_executor(self._write_pool, self._write, outputs),
            pause=self._pause,
            resume=self._resume,
        )
        self._slow_write(time.monotonic() - started)
        await self._commit(offsets, topic_ids)

    def _slow_write(self, write_s: float) -> None:
        """Warn when the lake is so slow that a rebalance, which waits for the (at most two)
        batches in hand, nears ``broker_rebalance_timeout_s``."""
        limit = self.settings.broker_rebalance_timeout_s
        if write_s < limit / 4:
            return
        logger.warning(
            "the lake is slow: a batch took %.1f s to write; a rebalance waits for up to two "
            "such batches and drops a worker after %.0f s (MAXLAKE_BROKER_REBALANCE_TIMEOUT_S): "
            "raise it, or lower MAXLAKE_BATCH_MAX_EVENTS",
            write_s,
            limit,
        )

    async def _advanced_positions(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """Positions that moved since the last batch: the next offset to read per partition.

        With ``read_committed`` a position also moves past transaction markers and aborted
        records, which no batch holds; committing it lets the group's lag reach zero. A
        position sought on assignment (the lake holds more than the group committed, e.g. a
        batch whose commit the previous owner lost in a rebalance) is committed too, even if no
        record follows it.
        """
        moved = {tp: o for tp, o in self._sought.items() if tp not in self._out_of_range}
        self._sought.clear()
        for tp in consumer.assignment():
            if tp in self._out_of_range or tp not in self._ready:
                continue
            try:
                async with asyncio.timeout(1.0):
                    position = await consumer.position(tp)
            except (TimeoutError, KafkaError, IllegalStateError):
                continue
            if position > self._positions.get(tp, -1):
                moved[tp] = self._positions[tp] = position
        return moved

    async def _commit(
        self, offsets: dict[TopicPartition, int], topic_ids: dict[str, str] | None = None
    ) -> None:
        """Commit ``offsets`` (partition -> next offset to read) to the group, each with the
        topic id of the lineage it belongs to (``topic_ids``, topic -> id; the engine's
        current ones by default) as the commit's metadata.

        An offset below what the group committed for the partition in the same lineage is not
        committed (:meth:`_below_group`): after a lower-bound seek the worker reads offsets
        the lake holds (skipped), and committing them moved the group's offset backwards, so
        operators saw lag that was not there.
        """
        if self.consumer is None:
            return
        ids = self._topic_ids if topic_ids is None else topic_ids
        assigned = self.consumer.assignment()
        commits = {
            tp: (o, ids.get(tp.topic, ""))
            for tp, o in offsets.items()
            if tp in assigned and not self._below_group(tp, o, ids.get(tp.topic, ""))
        }
        if not commits:
            return
        try:
            # aiokafka retries a retriable error without end: a partition that no longer
            # exists (its topic deleted, or created again with fewer partitions) answers
            # UnknownTopicOrPartition to every try, and the batch, the run loop and any
            # rebalance waiting for it stalled for good. Positions come from the lake, so a
            # commit given up costs only lag shown until the next one.
            async with asyncio.timeout(self.settings.broker_session_timeout_s):
                await self.consumer.commit(commits)
            for tp, (offset, topic_id) in commits.items():
                if topic_id:
                    self._group_commits[tp] = (offset, topic_id)
        except TimeoutError:
            logger.warning(
                "offsets of %d partition(s) not committed to Kafka: no answer but retriable "
                "errors in %.0f s (a partition deleted, or its topic created again with fewer "
                "partitions?); the lake holds the batch and the next owner seeks past it",
                len(commits),
                self.settings.broker_session_timeout_s,
            )
        except (CommitFailedError, IllegalStateError) as exc:
            logger.warning(
                "offsets of %d partition(s) not committed to Kafka, the group moved on "
                "(%s); the lake holds the batch and the next owner seeks past it",
                len(offsets),
                type(exc).__name__,
            )

    async def _fill_batch(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, RecordBlocks]:
        """Records per partition, strictly increasing offsets, up to ``batch_max_events`` in all.

        A batch spans several ``getmany`` calls, and a rebalance between two of them may seek a
        partition back (:meth:`seek_past_lake`): records at or below the last offset already
        taken for a partition (in this batch or one handed over before) are dropped here, so a
        batch never holds an offset twice. A partition revoked meanwhile loses its records of
        the unfinished batch (:meth:`drop_unfinished`); its next owner reads them.
        """
        limit = self.settings.batch_max_events
        deadline = time.monotonic() + self.settings.batch_wait_s
        records: dict[TopicPartition, RecordBlocks] = {}
        self._filling = records
        self._stamps = {}
        count = 0
        try:
            while count < limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    fetched = await consumer.getmany(
                        timeout_ms=int(remaining * 1000), max_records=limit - count
                    )
                except OffsetOutOfRangeError as exc:
                    # Kafka no longer holds a position (retention, DeleteRecords, a topic
                    # created again): the batch so far is written first, then _reset runs.
                    self._out_of_range.update(exc.args[0] if exc.args else {})
                    break
                except RecordTooLargeError as exc:
                    if found := self.corrupt.too_large(consumer, exc):
                        count += self._take(*found)
                    continue
                except NoOffsetForPartitionError as exc:
                    # Partitions still waiting for the lake are positioned by it.
                    lost = [tp for tp in exc.args if tp in self._ready]
                    self._out_of_range.update(dict.fromkeys(lost, -1))
                    break
                for tp, batch in fetched.items():
                    count += self._take(tp, batch)
        finally:
            self._filling = {}
        return {tp: batch for tp, batch in records.items() if batch}

    def _take(self, tp: TopicPartition, block: RecordBlock) -> int:
        """Append the records of ``block`` beyond the partition's next expected offset.

        Records of a partition not yet positioned from the lake are dropped: the client may
        have fetched a newly assigned partition from the group's committed offset before the
        listener paused it to read the lake (:mod:`streams.batch_position`); the seek then
        fetches from the right place, under the partition's topic id.
        """
        if isinstance(block, CorruptFetch):  # paused for its next attempt (batch_corrupt)
            self.corrupt.failed(self.consumer, tp, block, positioned=tp in self._ready)
            return 0
        if tp not in self._ready:
            self.repeats_dropped += len(block)
            logger.info(
                "%s[%d]: %d record(s) fetched before the partition was positioned, dropped",
                tp.topic,
                tp.partition,
                len(block),
            )
            return 0
        expected = self._next.get(tp, -1)
        fresh = block.from_offset(expected)
        if len(fresh) != len(block):
            self.repeats_dropped += len(block) - len(fresh)
            logger.info(
                "%s[%d]: %d record(s) at offsets below %d fetched again, dropped",
                tp.topic,
                tp.partition,
                len(block) - len(fresh),
                expected,
            )
        if len(fresh):
            self.corrupt.fetched(tp, int(fresh.offsets[0]))
            taken = self._filling.setdefault(tp, RecordBlocks())
            self._stamp(tp, len(taken))
            taken.append(fresh)
            self._next[tp] = int(fresh.offsets[-1]) + 1
        return len(fresh)

    def drop_unfinished(self, revoked: Sequence[TopicPartition]) -> None:
        """Forget revoked partitions: their records in the unfinished batch and positions."""
        self.corrupt.forget(list(revoked))
        for tp in revoked:
            dropped = self._filling.pop(tp, None)
            self._forget(tp)
            self._out_of_range.pop(tp, None)
            if dropped:
                logger.info(
                    "%s[%d] revoked: %d record(s) of the unfinished batch left to its next owner",
                    tp.topic,
                    tp.partition,
                    len(dropped),
                )

    def _prepare(
        self, records: dict[TopicPartition, RecordBlocks], topic_ids: dict[str, str]
    ) -> list[tuple[EventKind, list[BatchOutput]]]:
        """Runs in the prepare thread; empties ``records`` once their columns are built.

        The columns hold copies of what the pipeline reads (one ``bytes`` per value), so the
        fetched buffers (~30 MB at 50,000 snapshots) are freed before the decode starts, not
        after the batch is prepared: the prepare overlaps the previous batch's write, the
        worker's peak (docs/BENCHMARKS.md, issue 20, sixteenth pass).
        """
        columns = self._columns(records, topic_ids)
        records.clear()
        pipeline = self.pipeline()
        prepared: list[tuple[EventKind, list[BatchOutput]]] = []
        while columns:
            kind, cols = columns.pop(0)
            prepared.append((kind, pipeline.prepare(kind, ColumnMessages(cols))))
            del cols
        return prepared

    def _columns(
        self, records: dict[TopicPartition, RecordBlocks], topic_ids: dict[str, str]
    ) -> list[tuple[EventKind, Columns]]:
        """The columns of ``records``, one :class:`Columns` per event kind."""
        by_kind: dict[EventKind, list[tuple[str, int, str, RecordBlock]]] = {}
        for tp, batch in records.items():
            topic, partition = tp.topic, tp.partition
            tid = topic_ids.get(topic)
            if tid is None:
                raise StreamsError(f"{topic}[{partition}]: no topic id, so no lineage to write to")
            parts = by_kind.setdefault(self.topics[topic], [])
            parts.extend((topic, partition, tid, block) for block in batch.blocks)
        return [(kind, block_columns(parts)) for kind, parts in by_kind.items()]

    def _write(self, prepared: list[tuple[EventKind, list[BatchOutput]]]) -> None:
        """Runs in the write thread."""
        pipeline = self.pipeline()
        for kind, outputs in prepared:
            log_batch(kind, pipeline.write(outputs))
        del prepared[:]
        self._releaser.after_batch()

    async def _fetching_at(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int
    ) -> bool:
        """Whether ``tp`` is still fetched from ``offset``.

        The client's position, not :attr:`_positions`: that one moves only between batches, so
        an error right after records of the same batch (retention deleting offsets just ahead
        of a lagging worker) was taken for a stale one, and the partition fetched the same
        offset again, in a loop (hundreds of errors a second) until a fetch happened to
        return between two batches.
        """
        try:
            async with asyncio.timeout(1.0):
                position = await consumer.position(tp)
        except (TimeoutError, KafkaError, IllegalStateError):
            return self._positions.get(tp) == offset
        return bool(position == offset)

    async def _reset(self, consumer: AIOKafkaConsumer) -> None:
        """Handle positions Kafka no longer holds (every batch in hand is written)."""
        lost, self._out_of_range = self._out_of_range, {}
        assigned = consumer.assignment()
        # An error about a position this engine no longer holds (it sought elsewhere since, e.g.
        # to a new lineage's start) is stale: the fetch it answers was sent before the seek.
        lost = {
            tp: o
            for tp, o in lost.items()
            if tp in assigned and (o < 0 or await self._fetching_at(consumer, tp, o))
        }
        if not lost:
            return
        topics = sorted({tp.topic for tp in lost})
        # The leaders of the lost partitions, as before each batch: a random broker that has
        # not applied a recreation yet answers the old id.
        fresh = await self._ask_topic_ids(consumer, topics, lost)
        # A topic the broker did not describe this time is not taken for a new incarnation.
        recreated = [t for t in topics if t in fresh and fresh[t] != self._topic_ids.get(t)]
        if recreated:
            await self._lineage_ended(lost, recreated)
            await self.seek_past_lake([tp for tp in lost if tp.topic in recreated])
        rest = {tp: o for tp, o in lost.items() if tp.topic not in recreated}
        if not rest:
            return
        ends = await consumer.end_offsets(list(rest))
        # Below the log start (retention, DeleteRecords), or no position: the lake says what is
        # lost. The position may be a lower bound of what it holds (a read that outlived a
        # rebalance; another owner wrote more meanwhile): a gap from the position recorded
        # offsets the lake held as lost.
        again = [tp for tp, offset in rest.items() if offset <= ends[tp]]
        await self.seek_past_lake(again)
        for tp, offset in rest.items():
            if offset > ends[tp]:
                await self._record_gap(tp, ends[tp], offset - 1, "beyond_log_end")
                # The log was cut short: what the group committed past its end is void.
                self._group_commits.pop(tp, None)
                self._seek(tp, ends[tp])
