"""A Faust app whose consumer reads committed records only (``isolation_level=read_committed``)
and whose Kafka clients wait for a broker that is down when they start.

Faust (0.15) builds its aiokafka consumer with ``read_committed`` only under its own
``processing_guarantee="exactly_once"``, which maxlake does not use (PITFALLS.md: it is
unreliable and covers Kafka-to-Kafka only). Without it, records of aborted producer
transactions would reach the lake. This module is the one place that bends Faust for that: the
consumer thread asks for ``read_committed`` while the consumer is being built.

Faust's producer and consumer connect when the app starts; if the broker went away since the
worker found it (``streams.broker_wait.wait_for_broker``), Faust would crash with a traceback.
Here each start is retried with one log line per attempt (``start_until_reachable``).

A fetched record batch that fails its CRC (aiokafka's ``CorruptRecordException``) stops the
stream engine: unlike the batch engine (:mod:`streams.batch_corrupt`), it does not pause and
retry the partition. aiokafka has then dropped the records it had read of that fetch and moved
the positions of the partitions drained before it, so the consumer must not fetch again; the
worker stops with one ERROR naming the partition, the offset and docs/OPERATIONS.md, 'A
corrupt record batch' (:class:`CorruptFetchStopped`). Nothing past the batch was handed to the
agents, so nothing past it is acknowledged or committed: a restarted worker reads from the
group's committed offset and meets the same batch until it is repaired or deleted.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.errors import CorruptRecordException
from faust.transport import producer as faust_producer
from faust.transport.drivers import aiokafka as faust_aiokafka

from maxlake.errors import TerminalError
from streams.broker_wait import start_until_reachable
from streams.errors import StreamsError

__all__ = ["CorruptFetchStopped", "ReadCommittedApp"]

logger = logging.getLogger("streams.worker")


class CorruptFetchStopped(StreamsError, TerminalError):
    """The stream engine fetched a corrupt record batch and stops (it does not retry)."""

    def __init__(self, tp: TopicPartition | None, offset: int | None, reason: str) -> None:
        where = "a partition" if tp is None else f"{tp.topic}[{tp.partition}]"
        at = "" if offset is None else f" offset {offset}"
        self.tp, self.offset = tp, offset
        super().__init__(
            f"{where}{at}: the fetched record batch is corrupt ({reason}); the stream engine "
            "stops: it does not retry or hold a partition like the batch engine. Nothing at or "
            f"past{at or ' it'} is in the lake or committed, and a restarted stream worker meets "
            "the same batch. Run a batch-engine worker on this group (MAXLAKE_INGEST_ENGINE="
            "batch, the default): it ingests everything before the batch, retries it, and holds "
            "the partition there with the corrupt_record_batch alert; only then delete a lost "
            "batch. See docs/OPERATIONS.md, 'A corrupt record batch'"
        )


def corrupt_partition(consumer: Any) -> tuple[TopicPartition | None, int | None]:
    """The partition whose fetched records aiokafka was reading when it raised
    ``CorruptRecordException``, and the offset of the first record it did not hand over (the
    corrupt batch's, or the first of the fetch's batches before it); (None, None) if not
    found. aiokafka names neither: its record iterator for that partition ended with the
    exception (a closed generator) while holding the offset it had reached."""
    for tp, result in list(consumer._fetcher._records.items()):
        records: Any = getattr(result, "_partition_records", None)
        iterator = getattr(records, "_records_iterator", None)
        if iterator is not None and getattr(iterator, "gi_frame", True) is None:
            return tp, int(records.next_fetch_offset)
    return None, None


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = self.consumer
        was = consumer.in_transaction
        consumer.in_transaction = True  # selects isolation_level="read_committed", nothing else
        try:
            return super()._create_worker_consumer(transport)
        finally:
            consumer.in_transaction = was

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,  # noqa: ASYNC109 (Faust's signature)
        max_records: int | None = None,
    ) -> Any:
        try:
            return await super()._fetch_records(
                consumer, active_partitions, timeout=timeout, max_records=max_records
            )
        except CorruptRecordException as exc:
            tp, offset = corrupt_partition(consumer)
            reason = str(exc.args[0] if exc.args else exc).split(" - TopicPartition(")[0]
            stop = CorruptFetchStopped(tp, offset, reason)
            logger.error("%s", stop)  # noqa: TRY400 (Faust logs the traceback as it stops)
            raise stop from exc

    async def on_start(self) -> None:
        async def start() -> None:
            self._consumer = self._create_consumer(loop=self.thread_loop)
            self.time_started = time.monotonic()
            await self._consumer.start()

        async def discard() -> None:
            if self._consumer is not None:
                await self._consumer.stop()

        await start_until_reachable(
            start, _servers(self.transport), "Faust's consumer", discard=discard
        )


class _Producer(faust_aiokafka.Producer):
    async def on_start(self) -> None:
        await faust_producer.Producer.on_start(self)  # the driver's own start, minus connecting

        async def start() -> Any:
            producer = self._producer = self._new_producer()
            await producer.start()
            return producer

        async def discard() -> None:
            if self._producer is not None:
                await self._producer.stop()

        producer = await start_until_reachable(
            start, _servers(self.transport), "Faust's producer", discard=discard
        )
        self.beacon.add(producer)


def _servers(transport: Any) -> str:
    return ",".join(faust_aiokafka.server_list(transport.url, transport.default_port))


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class ReadCommittedApp(faust.App):
    """``faust.App`` over Kafka whose worker consumer reads committed records only."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
