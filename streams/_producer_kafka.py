"""The Kafka side of :class:`~streams.producer.PlantProducer`: batching and aiokafka delivery.

Why not a client's per-record ``send``: kafka-python spends ~35 µs of pure Python per record
(accumulator, batch builder, varints, partitioner, one future per record), which caps a producer
near 30,000 events/s. Here the caller's thread does one dict lookup and one list append per event
into an open batch per partition (:class:`Batcher`); a full batch, or one older than the linger
time, becomes a :class:`Chunk` handed to an asyncio loop in a background thread
(:class:`KafkaLink`), which builds the record batch with aiokafka's C builder and submits it with
``send_batch``. Delivery is idempotent with ``acks=all``.

Ordering per partition: chunks of one partition are submitted one after the other by one worker
task, in hand-off order; aiokafka keeps at most one produce request per broker in flight and puts
a batch that failed with a retriable error back at the head of its partition's queue, and the
idempotent producer's sequence numbers make the broker refuse a later batch after a lost one
(``OutOfOrderSequenceNumber``). After any failure that is not a broker's refusal of the records
the link is *broken*: later chunks fail without being sent, so the owner can resend the failed
chunk and everything after it, in order, through a new link.

Partitioning is Kafka's default for keyed records: ``murmur2(key) & 0x7fffffff`` modulo the
partition count, as the Java client and kafka-python compute it, so a machine's events land in
the same partition whichever client wrote them. Unkeyed records stick to one partition per batch,
then move to the next.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.codec import has_lz4
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from aiokafka.partitioner import murmur2

from maxlake.errors import TerminalError
from streams.errors import StreamsError

logger = logging.getLogger(__name__)

T = TypeVar("T")

_RECORD_OVERHEAD = 24
_REJECTIONS = frozenset(
    {
        "ClusterAuthorizationFailedError",
        "CorruptRecordException",
        "InvalidRequestError",
        "InvalidRequiredAcksError",
        "InvalidTimestampError",
        "InvalidTopicError",
        "MessageSizeTooLargeError",
        "PolicyViolationError",
        "RecordListTooLargeError",
        "RecordTooLargeError",
        "TopicAuthorizationFailedError",
        "UnsupportedForMessageFormatError",
    }
)


def compression() -> str:
    """``lz4`` when its module is installed (faster), else ``gzip`` from the standard library."""
    return "lz4" if has_lz4() else "gzip"


def use_fast_lz4() -> bool:
    """Make aiokafka's record batches use LZ4's fast mode instead of LZ4-HC level 9.

    aiokafka compresses lz4 at level 9 (HC): ~2.5 µs per 300-byte event, more than the rest of
    a send together. kafka-python, which PlantProducer used before, compresses in LZ4's default
    fast mode: 8x faster for ~18% more bytes (71 instead of 60 per single-reading event). The
    builder looks ``lz4_encode`` up in its module's globals, so the fast encoder is put there;
    the frames stay standard, so every consumer reads them. This applies to every aiokafka
    producer of the process. Returns ``False`` (level 9 stays) if aiokafka's layout changed.
    """
    try:
        import cramjam  # noqa: PLC0415 - aiokafka private layout, optional
        from aiokafka.record import default_records  # noqa: PLC0415 - aiokafka private layout, optional
        from aiokafka.record._crecords import default_records as c_default_records  # noqa: PLC0415 - aiokafka private layout, optional
    except ImportError:
        return False
    modules = [m for m in (c_default_records, default_records) if hasattr(m, "lz4_encode")]
    if not modules:
        return False

    def lz4_encode(payload: bytes, level: int = 0) -> bytes:
        compressor = cramjam.lz4.Compressor(level=0, content_checksum=False, block_linked=False)
        compressor.compress(payload)
        return bytes(compressor.finish())

    for module in modules:
        module.lz4_encode = lz4_encode
    return True


def is_rejection(exc: BaseException | None) -> bool:
    """A broker-side refusal of the records that a resend cannot fix (versus an outage)."""
    return exc is not None and type(exc).__name__ in _REJECTIONS


def default_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record (Java ``Utils.toPositive(murmur2)``)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


Records = list[tuple[bytes | None, bytes]]


class ChunkState(Enum):
    PENDING = "pending"
    ACKED = "acked"
    FAILED = "failed"
    TAKEN = "taken"  # the owner spooled it; a late acknowledgement changes nothing


@dataclass(eq=False, slots=True)
class Chunk:
    """Records of one partition handed to the link together, in send order."""

    topic: str
    partition: int
    records: Records
    handed_at: float
    state: ChunkState = ChunkState.PENDING
    error: BaseException | None = None
    waiting: int = 0


Taken = tuple[str, Records, Chunk | None]


@dataclass(eq=False, slots=True)
class _Open:
    records: Records
    since: float
    size: int = 0


@dataclass(eq=False, slots=True)
class Route:
    """One topic's partition count, key placements and open batches."""

    topic: str
    partitions: int
    keys: dict[bytes, int] = field(default_factory=dict)
    open: list[_Open | None] = field(default_factory=list)
    sticky: int = 0

    def __post_init__(self) -> None:
        self.open = [None] * self.partitions

    def place(self, key: bytes) -> int:
        partition = self.keys[key] = default_partition(key, self.partitions)
        return partition


class Batcher:
    """Open batches per partition and the chunks handed off but not yet reaped, in order.

    The owner's thread adds records; the link's loop thread hands off lingering batches and
    resolves chunks. Both happen under :attr:`lock`; :attr:`changed` is notified whenever a
    chunk resolves.
    """

    def __init__(self, batch_size: int, linger_s: float) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.routes: dict[str, Route] = {}
        self.chunks: deque[Chunk] = deque()
        self.unresolved = 0
        self.inflight_events = 0
        self.link: KafkaLink | None = None
        self._batch_size = batch_size
        self._linger_s = linger_s

    def route(self, topic: str, timeout_s: float) -> Route | None:
        """Look the topic's partition count up through the link and keep its new route.

        Returns:
            ``None`` when there is no link or the broker does not answer within ``timeout_s``.

        Raises:
            TopicMissing: the broker answers but has no such topic.
            aiokafka.errors.KafkaError: the broker refuses the topic (authorization).
        """
        link = self.link
        partitions = link.partitions(topic, timeout_s) if link is not None else None
        if partitions is None:
            return None
        route = Route(topic, partitions)
        with self.lock:
            self.routes[topic] = route
        return route

    def add(self, route: Route, key: bytes | None, value: bytes) -> None:
        """Append one record to its partition's open batch (hands it off when full)."""
        if key is None:
            partition = route.sticky
        else:
            cached = route.keys.get(key)
            partition = route.place(key) if cached is None else cached
        with self.lock:
            batch = route.open[partition]
            if batch is None:
                batch = route.open[partition] = _Open([], time.monotonic())
            batch.records.append((key, value))
            batch.size += len(value) + _RECORD_OVERHEAD
            if batch.size >= self._batch_size:
                self._hand_off(route, partition, batch)

    def hand_off_all(self, *, older_than: float | None = None) -> None:
        """Hand off every open batch (or only those opened before ``older_than``)."""
        with self.lock:
            for route in self.routes.values():
                for partition, batch in enumerate(route.open):
                    if batch is not None and (older_than is None or batch.since <= older_than):
                        self._hand_off(route, partition, batch)

    def linger(self) -> None:
        """Called by the link every linger period: hand off batches that waited long enough."""
        self.hand_off_all(older_than=time.monotonic() - self._linger_s)

    def _hand_off(self, route: Route, partition: int, batch: _Open) -> None:
        route.open[partition] = None
        if partition == route.sticky:
            route.sticky = (partition + 1) % route.partitions
        chunk = Chunk(route.topic, partition, batch.records, time.monotonic())
        self.chunks.append(chunk)
        self.unresolved += 1
        self.inflight_events += len(batch.records)
        link = self.link
        if link is None:
            self._resolve(chunk, ConnectionError("no Kafka link"))
        else:
            link.submit(chunk)

    def resolve(self, chunk: Chunk, error: BaseException | None) -> None:
        """Record a chunk's outcome (from the loop thread)."""
        with self.lock:
            self._resolve(chunk, error)

    def _resolve(self, chunk: Chunk, error: BaseException | None) -> None:
        if chunk.state is not ChunkState.PENDING:
            return
        chunk.state = ChunkState.ACKED if error is None else ChunkState.FAILED
        chunk.error = error
        self.unresolved -= 1
        self.changed.notify_all()

    def take_all(self, *, keep_routes: bool = False) -> list[Taken]:
        """Remove every chunk and open batch (and route, unless kept); pending ones become TAKEN.

        Returns:
            ``(topic, records, chunk)`` oldest first per partition; ``chunk`` is ``None`` for
            an open batch.
        """
        with self.lock:
            taken: list[Taken] = []
            for chunk in self.chunks:
                if chunk.state is ChunkState.PENDING:
                    chunk.state = ChunkState.TAKEN
                    self.unresolved -= 1
                taken.append((chunk.topic, chunk.records, chunk))
            self.chunks.clear()
            self.inflight_events = 0
            for route in self.routes.values():
                for partition, batch in enumerate(route.open):
                    if batch is not None:
                        taken.append((route.topic, batch.records, None))
                        route.open[partition] = None
            if not keep_routes:
                self.routes.clear()  # partition counts are looked up again on the next link
            return taken

    def oldest_resolved(self) -> bool:
        """Whether the oldest chunk (if any) has an outcome; call with :attr:`lock` held."""
        return not self.chunks or self.chunks[0].state is not ChunkState.PENDING

    def oldest_pending_age(self) -> float:
        """Seconds since the oldest unresolved chunk was handed off (0 when none)."""
        with self.lock:
            for chunk in self.chunks:
                if chunk.state is ChunkState.PENDING:
                    return time.monotonic() - chunk.handed_at
        return 0.0


class TopicMissing(StreamsError, TerminalError):
    """The broker answered and has no such topic."""


class _Loop:
    """One asyncio event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer from the Kafka client within {timeout_s:.1f}s") from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10.0)
        if not self.thread.is_alive():
            self.loop.close()


class KafkaLink:
    """One started ``AIOKafkaProducer`` on a background loop, delivering chunks in order.

    Create with :meth:`open`; every method is called from the owner's thread except
    :meth:`submit`, which any thread may call.
    """

    def __init__(self, loop: _Loop, producer: Any, batcher: Batcher, linger_s: float) -> None:
        self._loop = loop
        self._producer = producer
        self._batcher = batcher
        self._linger_s = linger_s
        self._queues: dict[tuple[str, int], asyncio.Queue[Chunk]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.broken: BaseException | None = None

    @classmethod
    def open(
        cls, config: dict[str, Any], batcher: Batcher, linger_s: float, timeout_s: float
    ) -> KafkaLink | None:
        """Start a producer (bootstrap, producer id); ``None`` when the broker does not answer."""
        if config.get("compression_type") == "lz4":
            use_fast_lz4()
        loop = _Loop("maxlake-producer-io")

        async def start() -> Any:
            producer = AIOKafkaProducer(**config)
            try:
                async with asyncio.timeout(timeout_s):
                    await producer.start()
            except BaseException:
                async with asyncio.timeout(timeout_s):
                    await producer.stop()
                raise
            return producer

        try:
            producer = loop.run(start(), timeout_s * 2 + 1)
        except (KafkaError, OSError, TimeoutError) as exc:
            logger.info("broker not available yet: %s", exc)
            loop.stop()
            return None
        link = cls(loop, producer, batcher, linger_s)
        loop.loop.call_soon_threadsafe(link._spawn, link._linger())
        return link

    # ------------------------------------------------------------------ owner's thread

    def partitions(self, topic: str, timeout_s: float) -> int | None:
        """The topic's partition count; ``None`` when the broker does not answer.

        Raises:
            TopicMissing: the broker answers but has no such topic.
            aiokafka.errors.TopicAuthorizationFailedError: the principal may not see it.
        """
        try:
            return self._loop.run(self._partitions(topic, timeout_s), timeout_s + 5)
        except TimeoutError:
            return None

    def submit(self, chunk: Chunk) -> None:
        """Queue a chunk for delivery after every chunk of its partition submitted before."""
        self._loop.loop.call_soon_threadsafe(self._enqueue, chunk)

    def close(self, timeout_s: float) -> None:
        """Deliver what was submitted (up to ``timeout_s``) and stop; failed chunks stay FAILED."""
        try:
            self._loop.run(self._stop(graceful=True), timeout_s + 5)
        except (TimeoutError, KafkaError) as exc:
            logger.debug("closing the Kafka link: %s", exc)
        self._loop.stop()

    def abandon(self) -> None:
        """Stop now, without waiting for acknowledgements: chunks not yet delivered stay
        pending (or fail) and are the owner's to take and spool."""
        self.broken = self.broken or ConnectionError("link abandoned")
        try:
            self._loop.run(self._stop(graceful=False), 15.0)
        except (TimeoutError, KafkaError) as exc:
            logger.debug("abandoning the Kafka link: %s", exc)
        self._loop.stop()

    # ------------------------------------------------------------------ loop thread

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _linger(self) -> None:
        while True:
            await asyncio.sleep(self._linger_s)
            self._batcher.linger()

    def _enqueue(self, chunk: Chunk) -> None:
        tp = (chunk.topic, chunk.partition)
        queue = self._queues.get(tp)
        if queue is None:
            queue = self._queues[tp] = asyncio.Queue()
            self._spawn(self._partition_worker(queue))
        queue.put_nowait(chunk)

    async def _partition_worker(self, queue: asyncio.Queue[Chunk]) -> None:
        producer = self._producer
        while True:
            chunk = await queue.get()
            if self.broken is not None:
                self._batcher.resolve(chunk, self.broken)
                continue
            futures: list[asyncio.Future[Any]] = []
            try:
                batch = producer.create_batch()
                for key, value in chunk.records:
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        futures.append(await self._send(batch, chunk))
                        batch = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=None)
                futures.append(await self._send(batch, chunk))
            except (KafkaError, OSError, TimeoutError) as exc:
                self._failed(chunk, exc)
                for future in futures:
                    future.add_done_callback(_retrieve)
                continue
            chunk.waiting = len(futures)
            for future in futures:
                future.add_done_callback(functools.partial(self._batch_done, chunk))

    async def _send(self, batch: Any, chunk: Chunk) -> asyncio.Future[Any]:
        batch.close()
        future: asyncio.Future[Any] = await self._producer.send_batch(
            batch, chunk.topic, partition=chunk.partition
        )
        return future

    def _batch_done(self, chunk: Chunk, future: asyncio.Future[Any]) -> None:
        error = future.exception() if not future.cancelled() else ConnectionError("cancelled")
        if error is not None:
            self._failed(chunk, error)
            return
        chunk.waiting -= 1
        if chunk.waiting == 0:
            self._batcher.resolve(chunk, None)

    def _failed(self, chunk: Chunk, error: BaseException) -> None:
        if not is_rejection(error) and self.broken is None:
            self.broken = error
        self._batcher.resolve(chunk, error)

    async def _partitions(self, topic: str, timeout_s: float) -> int | None:
        client = self._producer.client
        deadline = time.monotonic() + timeout_s
        client.add_topic(topic)
        answered = False
        while True:
            partitions = client.cluster.partitions_for_topic(topic)
            if partitions:
                return len(partitions)
            if topic in client.cluster.unauthorized_topics:
                raise TopicAuthorizationFailedError(topic)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if answered:
                    raise TopicMissing(topic)
                return None
            try:
                async with asyncio.timeout(remaining):
                    updated = await client.force_metadata_update()
            except TimeoutError:
                updated = False
            answered = answered or bool(updated)
            if not client.cluster.partitions_for_topic(topic):
                await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    async def _stop(self, *, graceful: bool) -> None:
        producer = self._producer
        for task in list(self._tasks):
            task.cancel()
        for queue in self._queues.values():
            while not queue.empty():
                self._batcher.resolve(queue.get_nowait(), self.broken or ConnectionError("closed"))
        if graceful:
            try:
                async with asyncio.timeout(5.0):
                    await producer.stop()
                return
            except TimeoutError:
                logger.debug("the Kafka producer did not stop within 5 s; closing it")
        # Cancelling the sender stops delivery without waiting for acknowledgements that may
        # never come; undelivered batches stay pending and the owner spools their chunks.
        sender = producer._sender.sender_task
        if sender is not None and not sender.done():
            sender.cancel()
            await asyncio.wait([sender], timeout=5.0)
        producer._closed = True
        await producer.client.close()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def any_reachable(bootstrap_servers: str, timeout_s: float) -> bool:
    """A cheap TCP probe so that a down broker costs one refused connect, not a bootstrap wait."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False
