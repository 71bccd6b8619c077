"""The batch engine's check, before each batch is handed over, that its topics are the ones
its records were fetched from.

aiokafka fetches by topic name. A topic deleted and created again between two metadata
refreshes of the client, while the worker fetched nothing from it, and given more records than
the worker's position, raises no error and triggers no rebalance: the client reads the new
incarnation from the old position on, and the engine wrote those records under the old topic
id and never read the new incarnation's first offsets. So before a batch is handed over, the
engine asks the brokers it fetched the batch from (the leaders of its partitions; one
Metadata request each, :mod:`streams.kafka_topic_ids`) for the ids of the batch's topics: a
broker that leads none of them may not have applied the recreation yet.

Which records are whose: the client buffers at most one fetch response per partition and
fetches the next only once it is drained, and it stamps the partition with the time (ms) it
received each response (``AIOKafkaConsumer.last_poll_timestamp``); each chunk of records the
engine takes carries the stamp of its response. Before asking, the engine notes each
partition's stamp: a response received by then was served before the broker answered, so if
the answer is the old id, every response stamped no later is the old incarnation's. When an
answer is a new id, the records stamped no later than the partition's last such check (and the
client's buffered response, if it is that old) are the old incarnation's: they are written
under the old id. The records received since may belong to either incarnation: they are
discarded, and the partitions are sought to the new lineage's start by the out-of-range path
(:meth:`BatchEngine._reset`), which reads them again. (Two responses of one partition within
the same millisecond, the topic recreated between them, would be taken for the old one.)

What of the old incarnation the lake will never hold is recorded in ``ops/gaps`` under the old
topic id (``discarded_topic_recreated``) before anything else happens: from the first offset
not kept up to the highest offset the client was told the partition holds (the high watermark
of each fetch response, of either incarnation) or discarded. A worker killed after that record
and before the kept records are written leaves them to the partition's next positioning
(:func:`lake.lineage.recreation_gaps`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from lake.lineage import DISCARDED_TOPIC_RECREATED
from maxlake.errors import exception_text
from maxlake.settings import Settings
from streams.kafka_records import RecordBlock, RecordBlocks
from streams.kafka_topic_ids import UnsupportedBrokerError, current_topic_ids
from streams.write_block import WriteAbandoned, WriteBlock

__all__ = ["LineageCheck"]

logger = logging.getLogger("streams.batch_engine")

Stamps = dict[TopicPartition, list[tuple[int, int]]]
"""Per partition, the chunks of the batch's records: (index of the chunk's first record in
the partition's list, ms the client received the fetch response it came from)."""


def _ranges(offsets: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    out: list[str] = []
    for offset in offsets:
        if out and offset == int(out[-1].rsplit("-", 1)[-1]) + 1:
            out[-1] = f"{out[-1].split('-', 1)[0]}-{offset}"
        else:
            out.append(str(offset))
    return ", ".join(out)


class LineageCheck:
    """The lineage half of :class:`~streams.batch_engine.BatchEngine` (a mixin).

    Shapes: ``_stamps`` are the chunks of the batch being filled (:data:`Stamps`);
    ``_verified`` maps a partition to the receipt stamp (ms) of the last fetch response
    received before a check that saw its topic's id unchanged: responses stamped no later are
    the lineage's the engine reads; ``_highwater`` maps a partition to the highest high
    watermark (next offset) a fetch response of it announced since its lineage was read.
    """

    settings: Settings
    consumer: AIOKafkaConsumer | None
    block: WriteBlock
    _topic_ids: dict[str, str]
    _ready: set[TopicPartition]
    _next: dict[TopicPartition, int]
    _out_of_range: dict[TopicPartition, int]
    _pause: Callable[[], int]
    _resume: Callable[[], None]
    _record_gap: Callable[..., Awaitable[None]]

    def _init_lineage_check(self) -> None:
        self._stamps: Stamps = {}
        self._verified: dict[TopicPartition, int] = {}
        self._highwater: dict[TopicPartition, int] = {}
        self.recreated_dropped = 0
        self.lineage_checks = 0
        self._unsupported_told = False

    def _received(self, tp: TopicPartition) -> int:
        """When (ms) the client received the last fetch response of ``tp``; -1: none yet."""
        assert self.consumer is not None
        try:
            received = self.consumer.last_poll_timestamp(tp)
        except AssertionError:  # aiokafka asserts the partition is assigned
            return -1
        return -1 if received is None else int(received)

    def _note_highwater(self, tp: TopicPartition) -> int:
        """Note the high watermark of the client's last fetch response of ``tp``; returns the
        highest noted since the lineage was read (-1: none)."""
        assert self.consumer is not None
        try:
            announced = self.consumer.highwater(tp)
        except AssertionError:  # aiokafka asserts the partition is assigned
            announced = None
        seen = max(self._highwater.get(tp, -1), -1 if announced is None else int(announced))
        if seen >= 0:
            self._highwater[tp] = seen
        return seen

    def _stamp(self, tp: TopicPartition, first_index: int) -> None:
        """Note that the partition's records from ``first_index`` on came from the response
        the client holds now (called right after ``getmany`` returned them: no other task ran
        in between, so no other response of the partition was received)."""
        chunks = self._stamps.setdefault(tp, [])
        while chunks and chunks[-1][0] >= first_index:
            chunks.pop()  # records cut by a seek (_move)
        chunks.append((first_index, self._received(tp)))
        self._note_highwater(tp)

    async def _ask_topic_ids(
        self,
        consumer: AIOKafkaConsumer,
        topics: list[str],
        partitions: Iterable[TopicPartition] = (),
    ) -> dict[str, str]:
        """The ids of ``topics`` now, as the leaders of ``partitions`` answer (the brokers the
        records were fetched from), asking until they answer (every second); none (the check
        is off, said once) from a broker older than Kafka 2.8."""
        told = False
        while True:
            try:
                async with asyncio.timeout(self.settings.broker_session_timeout_s):
                    return await current_topic_ids(
                        consumer._client,
                        topics,
                        leaders_of=[(tp.topic, tp.partition) for tp in partitions],
                        held=self._topic_ids,
                    )
            except UnsupportedBrokerError as exc:
                if not self._unsupported_told:
                    logger.warning(
                        "%s; this worker does not check topic ids before writing (a topic "
                        "deleted and created again unseen by the client may lose records)",
                        exc,
                    )
                    self._unsupported_told = True
                return {}
            except (TimeoutError, KafkaError, ValueError) as exc:
                if not told:
                    logger.warning(
                        "topic ids of %s not checked (%s); the batch waits until Kafka answers",
                        ", ".join(topics),
                        exception_text(exc),
                    )
                    told = True
            await asyncio.sleep(1.0)

    async def _verify_lineages(
        self,
        consumer: AIOKafkaConsumer,
        records: dict[TopicPartition, RecordBlocks],
        positions: dict[TopicPartition, int],
        stamps: Stamps,
    ) -> None:
        """Check the ids of the topics of ``records`` and ``positions`` (the batch about to be
        handed over, changed in place).

        A topic with a new id keeps the records received before its previous check (written
        under the old id), gains the old ones the client still buffers, and loses the rest
        and its positions; its partitions are queued for the out-of-range path
        (:attr:`_out_of_range`), which seeks them to the new lineage's start once the batch is
        written. A topic the broker does not describe (deleted, not created again) is taken for
        the old incarnation. Records of partitions revoked or sought during the check are
        dropped (their next owner, or the seek, reads them; a recreated topic's kept ones are
        recorded as a gap, :meth:`_drop_revoked`).
        """
        topics = sorted({tp.topic for tp in records} | {tp.topic for tp in positions})
        if not topics:
            return
        # Responses received before the question were served before the broker answered it.
        asked = set(topics)
        received = {tp: self._received(tp) for tp in self._ready if tp.topic in asked}
        for tp in received:
            self._note_highwater(tp)
        # Every partition verified below, not only the batch's: a response buffered for
        # another partition may come from a leader that already serves a new incarnation.
        now = await self._ask_topic_ids(consumer, topics, [*records, *positions, *received])
        self.lineage_checks += 1
        for tp in list(records):
            if tp not in self._ready or self._next.get(tp) != records[tp].last_offset() + 1:
                del records[tp]
                positions.pop(tp, None)
        recreated = {
            t: now[t] for t in topics if t in now and now[t] != self._topic_ids.get(t, now[t])
        }
        for tp, at in received.items():
            if tp.topic not in recreated:
                self._verified[tp] = max(self._verified.get(tp, -1), at)
        old_ids = {topic: self._topic_ids.get(topic) for topic in recreated}
        for topic, new_id in recreated.items():
            await self._split_recreated(consumer, topic, new_id, records, positions, stamps)
        if recreated:
            await self._drop_revoked(records, positions, old_ids)

    async def _drop_revoked(
        self,
        records: dict[TopicPartition, RecordBlocks],
        positions: dict[TopicPartition, int],
        old_ids: dict[str, str | None],
    ) -> None:
        """Drop the records and positions of partitions revoked while a recreated topic was
        split (its awaits let a rebalance in): the batch is not yet handed over, so the
        rebalance did not wait for it. A recreated topic's kept records are then the old
        incarnation's, which nobody can read again: recorded in ``ops/gaps`` under the old id
        (``old_ids``, topic -> id), never written to the lake beside such a gap."""
        revoked = [tp for tp in records if tp not in self._ready]
        for tp in [tp for tp in positions if tp not in self._ready]:
            positions.pop(tp, None)
        unheld: dict[str, dict[TopicPartition, tuple[int, int]]] = {}
        for tp in revoked:
            batch = records.pop(tp)
            logger.info(
                "%s[%d] revoked during the topic-id check: %d record(s) of the batch dropped",
                tp.topic,
                tp.partition,
                len(batch),
            )
            if tp.topic in old_ids and batch:
                first = int(batch.offsets()[0])
                unheld.setdefault(tp.topic, {})[tp] = (first, batch.last_offset())
        for topic, gaps in sorted(unheld.items()):
            await self._record_unheld(gaps, old_ids[topic])

    async def _split_recreated(
        self,
        consumer: AIOKafkaConsumer,
        topic: str,
        new_id: str,
        records: dict[TopicPartition, RecordBlocks],
        positions: dict[TopicPartition, int],
        stamps: Stamps,
    ) -> None:
        old_id = self._topic_ids.get(topic)
        kept = dropped = 0
        discarded: list[str] = []
        unheld: dict[TopicPartition, tuple[int, int]] = {}
        parts = {tp for tp in records if tp.topic == topic}
        parts |= {tp for tp in positions if tp.topic == topic}
        parts |= {tp for tp in consumer.assignment() & self._ready if tp.topic == topic}
        for tp in sorted(parts, key=lambda tp: tp.partition):
            verified = self._verified.pop(tp, -1)
            positions.pop(tp, None)
            batch = records.pop(tp, RecordBlocks())
            cut = next((i for i, at in stamps.get(tp, ()) if at > verified), len(batch))
            old, ambiguous = batch[:cut], batch[cut:]
            if not ambiguous:
                drained, ambiguous = await self._drain_old(consumer, tp, verified)
                old.extend(drained)
            if old:
                records[tp] = old
                kept += len(old)
            if ambiguous:
                dropped += len(ambiguous)
                offsets = _ranges(ambiguous.offsets().tolist())
                discarded.append(f"[{tp.partition}] {offsets}")
            first = int(ambiguous.offsets()[0]) if ambiguous else self._next.get(tp)
            last = max(self._note_highwater(tp) - 1, ambiguous.last_offset() if ambiguous else -1)
            self._highwater.pop(tp, None)
            if first is not None and last >= first:
                unheld[tp] = (first, last)
            self._out_of_range[tp] = -1
        await self._record_unheld(unheld, old_id)
        self.recreated_dropped += dropped
        if self.block.metrics is not None:
            self.block.metrics.recreated_discarded.inc(dropped)
        logger.warning(
            "topic %s was deleted and created again unseen by the client (topic id %s -> %s): "
            "%s; %d record(s) fetched before kept under the old id; the new incarnation is "
            "read from its start",
            topic,
            old_id,
            new_id,
            "fetched records discarded (either incarnation's, read since the id was last "
            f"checked): partition {'; '.join(discarded)}"
            if discarded
            else "no fetched record discarded",
            kept,
        )

    async def _record_unheld(
        self, unheld: dict[TopicPartition, tuple[int, int]], old_id: str | None
    ) -> None:
        """Record in ``ops/gaps``, under the old topic id ``old_id``, the old incarnation's
        offsets (partition -> first, last) the lake will never hold: before the batch is handed
        over, so that no kill loses the record (the lake refusing writes holds the batch until
        it takes them)."""
        for tp, (first, last) in sorted(unheld.items(), key=lambda item: item[0].partition):
            try:
                await self.block.retry(
                    partial(self._record_gap, tp, first, last, DISCARDED_TOPIC_RECREATED, old_id),
                    pause=self._pause,
                    resume=self._resume,
                )
            except WriteAbandoned as exc:  # a rebalance or shutdown while the lake refused
                logger.warning(
                    "%s[%d] (topic id %s): offsets %d..%d of the old incarnation will never be "
                    "in the lake, and the lake refused to record it in ops/gaps (%s)",
                    tp.topic,
                    tp.partition,
                    old_id,
                    first,
                    last,
                    exc,
                )

    async def _lineage_ended(self, lost: dict[TopicPartition, int], topics: list[str]) -> None:
        """Topics whose id changed under positions Kafka no longer holds (``lost``: partition ->
        the position, -1 when the lineage check sought it and recorded its gap): what the
        client was told the old incarnation held beyond the position is recorded as not held."""
        logger.warning("topic(s) %s have a new topic id: a new lineage", ", ".join(topics))
        old_ids = {topic: self._topic_ids.get(topic) for topic in topics}
        unheld: dict[str, dict[TopicPartition, tuple[int, int]]] = {}
        for tp, position in lost.items():
            if tp.topic not in topics:
                continue
            last = self._note_highwater(tp) - 1 if position >= 0 else -1
            if last >= position >= 0:
                unheld.setdefault(tp.topic, {})[tp] = (position, last)
            self._highwater.pop(tp, None)
        for topic, gaps in sorted(unheld.items()):
            await self._record_unheld(gaps, old_ids[topic])

    async def _drain_old(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, verified: int
    ) -> tuple[RecordBlocks, RecordBlocks]:
        """The records the client still buffers for ``tp`` from a response stamped no later
        than ``verified`` (ms; the old incarnation's), then the first chunk received later
        (either incarnation's), if ``getmany`` returns one before the seek."""
        old = RecordBlocks()
        while True:
            try:
                got: RecordBlock | None = (await consumer.getmany(tp, timeout_ms=0)).get(tp)
            except KafkaError:  # an error buffered instead of records: nothing old is left
                return old, RecordBlocks()
            if not got:
                return old, RecordBlocks()
            fresh = got.from_offset(self._next.get(tp, -1))
            if len(fresh):
                self._next[tp] = int(fresh.offsets[-1]) + 1
            if self._received(tp) > verified:
                return old, RecordBlocks([fresh])
            old.append(fresh)
