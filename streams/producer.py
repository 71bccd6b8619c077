"""The plant-side producer: JSON events to Kafka, with store-and-forward through a disk spool.

:class:`PlantProducer` batches events per partition in the caller's thread and delivers the
batches through one idempotent ``acks=all``, lz4-compressed aiokafka producer running on an
asyncio loop in a background thread (``streams/_producer_kafka.py`` says why and how), and keeps
one :class:`~streams.spool.Spool`. It has two modes:

* **direct**: events go to Kafka; a batch leaves when it is full (``batch_size``) or
  ``linger_ms`` old, so the caller never waits per event. Acknowledgements are reaped in order
  every few thousand events or half a second.
* **spooling**: the broker is unreachable (at construction, a topic's metadata did not come, a
  flush timed out, a delivery failed or stalled). Every event not yet acknowledged, then every
  new event, is appended to the spool, in send order per partition (so per machine). Every
  ``retry_interval_s`` (or on :meth:`PlantProducer.flush`) the producer probes the broker; once
  it answers, the spool is resent in order in chunks, each chunk removed from the spool only
  after the broker acknowledged all of it, and only when the spool is empty do new events go
  direct again.

Guarantees: per machine (the message key), the first delivery of each event follows send order;
an event may be delivered twice (an acknowledgement lost in the outage, a chunk resent after a
partial failure) but always with the same bytes and ``event_id``, so the lake's dedupe removes
the copy. Everything handed to :meth:`PlantProducer.send` is acknowledged or on disk once
:meth:`PlantProducer.flush` returns; between flushes, unacknowledged events (for up to about
``stall_timeout_s``) and up to ``spool_batch`` spooled events live only in memory. A producer
built on a spool directory that still holds events drains it before anything newer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from maxlake.errors import MaxlakeError, TerminalError
from maxlake.settings import Settings
from streams._producer_errors import (
    DeliveryError,
    DeliveryRejectedError,
    EventSerializationError,
    EventTooLargeError,
    UnknownTopicError,
    _DeliveryFailure,
)
from streams._producer_kafka import (
    Batcher,
    ChunkState,
    KafkaLink,
    Route,
    TopicMissing,
    any_reachable,
    compression,
    is_rejection,
)
from streams.spool import Spool

__all__ = [
    "DeliveryError",
    "DeliveryRejectedError",
    "EventSerializationError",
    "EventTooLargeError",
    "PlantProducer",
    "UnknownTopicError",
]

logger = logging.getLogger(__name__)

_CHECK_EVERY = 4096
_CHECK_INTERVAL_S = 0.5
_PROBE_AFTER_S = 1.0
_MIN_START_TIMEOUT_S = 5.0
_BYTES = (bytes, bytearray, memoryview)


class _Mode(Enum):
    DIRECT = "direct"
    SPOOLING = "spooling"


class _Clock:
    """RFC 3339 ``sent_time`` text, recomputed at most once per millisecond (hot path)."""

    def __init__(self) -> None:
        self._ms = -1
        self._text = ""

    def now_text(self) -> str:
        now = time.time()
        ms = int(now * 1000)
        if ms != self._ms:
            self._ms = ms
            self._text = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return self._text


class PlantProducer:
    """Send plant events to Kafka without losing or reordering them across broker outages.

    Not thread-safe: use one producer per thread, each with its own spool directory.

    Args:
        settings: bootstrap servers, security, topic naming and the default spool directory.
        spool_dir: the store-and-forward directory; ``None`` uses ``settings.spool_dir``.
        client_id: the Kafka client id, visible in broker logs and quotas.
        store_and_forward: ``False`` disables the spool: undeliverable events then raise
            :class:`DeliveryError` (from :meth:`send` while disconnected, else from :meth:`flush`).
        linger_ms: how long a partition's batch waits to fill; trades latency for throughput.
        batch_size: Kafka batch size in bytes per partition.
        max_request_size: larger events raise :class:`EventTooLargeError`.
        stall_timeout_s: an unacknowledged batch older than this means the broker is gone.
        retry_interval_s: how often a spooling producer probes the broker.
        connect_timeout_s: bound on one probe's TCP connect and on waiting for a topic's
            metadata; starting a Kafka client (bootstrap, producer id) may take up to 5 s more.
        max_in_flight: unacknowledged events kept in memory before :meth:`send` waits for the
            broker (backpressure instead of unbounded memory).
        spool_batch: spooled events buffered in memory between two fsyncs.
        drain_batch: events per resend chunk; a chunk leaves the spool only when fully acked.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        spool_dir: Path | None = None,
        client_id: str = "maxlake-plant-producer",
        store_and_forward: bool = True,
        linger_ms: int = 20,
        batch_size: int = 512 * 1024,
        max_request_size: int = 1024 * 1024,
        stall_timeout_s: float = 15.0,
        retry_interval_s: float = 2.0,
        connect_timeout_s: float = 2.0,
        max_in_flight: int = 100_000,
        spool_batch: int = 2000,
        drain_batch: int = 10_000,
    ) -> None:
        self.settings = settings
        self.sent = 0
        self.spooled = 0
        self.resent = 0
        self.failed = 0
        self._stall_timeout_s = stall_timeout_s
        self._retry_interval_s = retry_interval_s
        self._connect_timeout_s = connect_timeout_s
        self._max_in_flight = max_in_flight
        self._spool_batch = spool_batch
        self._drain_batch = drain_batch
        self._max_request_size = max_request_size
        self._linger_s = max(linger_ms, 1) / 1000
        self._clock = _Clock()
        self._topics: dict[tuple[str, str], str] = {}
        self._batcher = Batcher(batch_size, self._linger_s)
        self._since_check = 0
        self._next_check = 0.0
        self._buffer: list[tuple[str, bytes | None, bytes]] = []
        self._errors: list[MaxlakeError] = []
        self._next_probe = 0.0
        self._closed = False
        self._kafka_config: dict[str, Any] = {
            "bootstrap_servers": settings.bootstrap_servers,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "compression_type": compression(),
            "max_batch_size": batch_size,
            "max_request_size": max_request_size,
            "request_timeout_ms": max(1000, int(stall_timeout_s * 1000)),
            "retry_backoff_ms": 100,
            **settings.kafka_security(),
        }
        self._spool = Spool(spool_dir or settings.spool_dir) if store_and_forward else None
        self._link: KafkaLink | None = None
        self._mode = _Mode.SPOOLING
        self._try_recover()

    # ------------------------------------------------------------------ public API

    @property
    def spool_pending(self) -> int:
        """Events in the spool (on disk or about to be written) waiting for the broker."""
        return (len(self._spool) if self._spool is not None else 0) + len(self._buffer)

    @property
    def kafka_config(self) -> dict[str, Any]:
        """The aiokafka ``AIOKafkaProducer`` configuration in use (a copy; has credentials)."""
        return dict(self._kafka_config)

    @property
    def connected(self) -> bool:
        """Whether new events currently go straight to Kafka."""
        return self._mode is _Mode.DIRECT

    def send(self, event: Mapping[str, Any] | bytes, *, topic: str | None = None) -> None:
        """Queue one event for delivery; returns without waiting for the broker.

        A mapping is serialized to JSON with ``sent_time`` added when absent. Bytes are sent as
        they are; routing then parses them, so unparseable bytes need an explicit ``topic``. The
        key is the event's ``machine`` (unkeyed when absent) and the topic, unless given, is
        ``settings.topic_for(tenant, kind)``.

        Raises:
            EventSerializationError: not JSON-serializable, or no way to derive the topic.
            EventTooLargeError: larger than ``max_request_size``.
            DeliveryError: only without store-and-forward, when the broker is unreachable.
        """
        if isinstance(event, _BYTES):
            value = bytes(event)
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                parsed = None
            fields: Mapping[str, Any] = parsed if isinstance(parsed, dict) else {}
        else:
            fields = event
            if "sent_time" not in event:
                event = {**event, "sent_time": self._clock.now_text()}
            try:
                value = orjson.dumps(event)
            except TypeError as exc:
                raise EventSerializationError(f"event is not JSON-serializable: {exc}") from exc
        if topic is None:
            tenant, kind = fields.get("tenant"), fields.get("kind")
            topic = self._topics.get((tenant, kind))  # type: ignore[arg-type]
            if topic is None:
                if not isinstance(tenant, str) or not isinstance(kind, str):
                    raise EventSerializationError(
                        "cannot derive the topic: the event needs string 'tenant' and 'kind' "
                        "(or pass topic=...)"
                    )
                topic = self._topics[(tenant, kind)] = self.settings.topic_for(tenant, kind)
        machine = fields.get("machine")
        self.send_raw(topic, value, key=machine.encode() if isinstance(machine, str) else None)

    def send_raw(self, topic: str, value: bytes, *, key: bytes | None = None) -> None:
        """Queue pre-serialized bytes for ``topic`` unchanged (same ordering and spooling rules).

        Raises:
            EventTooLargeError: larger than ``max_request_size``.
            UnknownTopicError: the broker answers but has no such topic.
            DeliveryError: only without store-and-forward, when the broker is unreachable.
        """
        if self._closed:
            raise TerminalError("PlantProducer is closed")
        if len(value) + len(topic) + (len(key) if key else 0) > self._max_request_size:
            raise EventTooLargeError(
                f"event of {len(value)} bytes exceeds max_request_size {self._max_request_size}"
            )
        if self._mode is _Mode.SPOOLING and time.monotonic() >= self._next_probe:
            self._try_recover()
        if self._mode is _Mode.DIRECT:
            route = self._batcher.routes.get(topic) or self._route(topic)
            if route is not None:
                self._batcher.add(route, key, value)
                self._since_check += 1
                if self._since_check >= _CHECK_EVERY or time.monotonic() >= self._next_check:
                    self._check_health()
                return
            if self._mode is _Mode.DIRECT:
                return  # refused by the broker (counted, raised by flush)
        if self._spool is None:
            self.failed += 1
            raise DeliveryError(topic, "broker unreachable and store-and-forward is off")
        self._to_spool(topic, key, value)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Make everything sent so far acknowledged or durable in the spool.

        In direct mode this sends every open batch and waits for the broker's acknowledgements
        (falling back to the spool if they do not come); in spooling mode it fsyncs the spool
        and makes one attempt to reconnect and drain it.

        Raises:
            DeliveryRejectedError: the broker refused some events since the last flush.
            DeliveryError: without store-and-forward, some events could not be delivered.
        """
        if self._link is not None and self._mode is _Mode.DIRECT:
            batcher = self._batcher
            batcher.hand_off_all()
            self._wait(lambda: batcher.unresolved == 0, timeout_s)
            self._reap()
            if self._mode is _Mode.DIRECT and batcher.chunks:
                self._enter_spooling("acknowledgement missing after flush")
        if self._mode is _Mode.SPOOLING:
            self._write_buffer()
            self._try_recover()
        self._raise_errors()

    def wait_drained(self, timeout_s: float = 60.0) -> bool:
        """Retry the broker until the spool is empty; ``True`` when it is, ``False`` on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.flush(timeout_s=max(1.0, deadline - time.monotonic()))
            if self._mode is _Mode.DIRECT and not self._batcher.chunks and not self.spool_pending:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self._retry_interval_s, max(0.0, deadline - time.monotonic())))

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush, close the Kafka client and release the spool; idempotent."""
        if self._closed:
            return
        try:
            self.flush(timeout_s)
        finally:
            self._closed = True
            if self._link is not None:
                link, self._link = self._link, None
                self._batcher.link = None
                link.close(timeout_s)
            self._write_buffer()
            if self._spool is not None:
                self._spool.close()

    def __enter__(self) -> PlantProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def counters(self) -> dict[str, int]:
        """``sent``, ``spooled``, ``resent``, ``failed`` and the current ``spool_pending``."""
        return {
            "sent": self.sent,
            "spooled": self.spooled,
            "resent": self.resent,
            "failed": self.failed,
            "spool_pending": self.spool_pending,
        }

    # ------------------------------------------------------------------ direct mode

    def _route(self, topic: str) -> Route | None:
        """The topic's route; ``None`` after a refusal (counted) or entering spooling."""
        try:
            route = self._batcher.route(topic, self._connect_timeout_s)
        except TopicMissing as exc:
            raise UnknownTopicError(topic) from exc
        except KafkaError as exc:
            self._reject(topic, exc, 1)
            return None
        if route is None:
            self._enter_spooling(f"no metadata for topic {topic!r}")
        return route

    def _check_health(self) -> None:
        """Reap acknowledgements; fall back to the spool on a failure, stall or full window."""
        self._since_check = 0
        self._next_check = time.monotonic() + _CHECK_INTERVAL_S
        self._reap()
        batcher = self._batcher
        while self._mode is _Mode.DIRECT and batcher.inflight_events >= self._max_in_flight:
            if not self._wait(batcher.oldest_resolved, 1e9):
                self._enter_spooling("broker too slow")
                return
            self._reap()
        link = self._link
        if self._mode is not _Mode.DIRECT or link is None:
            return
        age = batcher.oldest_pending_age()
        if link.broken is not None:
            self._enter_spooling(f"delivery failed: {link.broken!r}")
        elif age > self._stall_timeout_s:
            self._enter_spooling(f"no acknowledgement for {self._stall_timeout_s:.0f}s")
        elif age > _PROBE_AFTER_S and not self._broker_reachable():
            self._enter_spooling("broker refuses connections")

    def _wait(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Wait for ``done()``; ``False`` on timeout, a broken link or a stalled batch.

        A batch unacknowledged for over a second also triggers a TCP probe (outside the lock)
        every half second: a broker that refuses connections counts as a stall at once, rather
        than after ``stall_timeout_s`` of aiokafka reconnecting in a tight loop.
        """
        batcher = self._batcher
        deadline = time.monotonic() + timeout_s
        while True:
            with batcher.changed:
                if done():
                    return True
                link = self._link
                if link is None or link.broken is not None:
                    return False
                now = time.monotonic()
                oldest = next(
                    (c.handed_at for c in batcher.chunks if c.state is ChunkState.PENDING), now
                )
                remaining = min(deadline, oldest + self._stall_timeout_s) - now
                if remaining <= 0:
                    return False
                if now - oldest < _PROBE_AFTER_S:
                    batcher.changed.wait(min(remaining, _CHECK_INTERVAL_S))
                    continue
            if not self._broker_reachable():
                return False
            with batcher.changed:
                if not done():
                    batcher.changed.wait(min(remaining, _CHECK_INTERVAL_S))

    def _broker_reachable(self) -> bool:
        return any_reachable(self.settings.bootstrap_servers, self._connect_timeout_s)

    def _reap(self) -> None:
        """Count acknowledged chunks from the oldest on; stop at the first one still pending."""
        batcher = self._batcher
        failure: BaseException | None = None
        with batcher.lock:
            chunks = batcher.chunks
            while chunks and chunks[0].state is not ChunkState.PENDING:
                chunk = chunks[0]
                if chunk.state is ChunkState.FAILED and not is_rejection(chunk.error):
                    failure = chunk.error
                    break
                chunks.popleft()
                batcher.inflight_events -= len(chunk.records)
                if chunk.state is ChunkState.ACKED:
                    self.sent += len(chunk.records)
                else:
                    self._reject(chunk.topic, chunk.error, len(chunk.records))
        if failure is not None:
            self._enter_spooling(f"delivery failed: {failure!r}")

    def _reject(self, topic: str, exc: BaseException | None, count: int) -> None:
        self.failed += count
        logger.error("broker rejected %d event(s) for topic %s: %r", count, topic, exc)
        self._errors.append(DeliveryRejectedError(topic, repr(exc), count))

    def _enter_spooling(self, reason: str) -> None:
        """Drop the Kafka link and spool every unacknowledged event, oldest first."""
        logger.warning("broker unavailable (%s); spooling events", reason)
        self._mode = _Mode.SPOOLING
        self._next_probe = time.monotonic() + self._retry_interval_s
        self._drop_link()
        for topic, records, chunk in self._batcher.take_all():
            if chunk is not None and chunk.state is ChunkState.ACKED:
                self.sent += len(records)
            elif chunk is not None and is_rejection(chunk.error):
                self._reject(topic, chunk.error, len(records))
            else:
                for key, value in records:
                    self._to_spool(topic, key, value)
        self._write_buffer()

    def _drop_link(self) -> None:
        link, self._link = self._link, None
        self._batcher.link = None
        if link is not None:
            link.abandon()

    # ------------------------------------------------------------------ spooling mode

    def _to_spool(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self._spool is None:
            self.failed += 1
            self._errors.append(DeliveryError(topic, "broker unreachable, store-and-forward off"))
            return
        self._buffer.append((topic, key, value))
        self.spooled += 1
        if len(self._buffer) >= self._spool_batch:
            self._write_buffer()

    def _write_buffer(self) -> None:
        if self._buffer and self._spool is not None:
            self._spool.append(self._buffer)
            self._buffer = []

    def _try_recover(self) -> None:
        """Probe the broker; when it answers, resend the spool and go direct if it empties."""
        self._next_probe = time.monotonic() + self._retry_interval_s
        if self._link is None:
            if not self._broker_reachable():
                return
            timeout_s = max(self._connect_timeout_s, _MIN_START_TIMEOUT_S)
            link = KafkaLink.open(self._kafka_config, self._batcher, self._linger_s, timeout_s)
            if link is None:
                return
            self._link = self._batcher.link = link
        if self._drain():
            self._mode = _Mode.DIRECT
            self._next_check = time.monotonic() + _CHECK_INTERVAL_S
            logger.info("connected to %s; sending directly", self.settings.bootstrap_servers)

    def _drain(self) -> bool:
        """Resend the spool in order, chunk by chunk; ``True`` when it is empty."""
        if self._spool is None:
            return True
        self._write_buffer()
        batcher = self._batcher
        while len(self._spool):
            records, position = self._spool.read(self._drain_batch)
            if not records:
                break
            rejected = 0
            for record in records:
                route = batcher.routes.get(record.topic)
                if route is None:
                    try:
                        route = batcher.route(record.topic, self._connect_timeout_s)
                    except TopicMissing:
                        return self._drain_failed(str(UnknownTopicError(record.topic)))
                    except KafkaError as exc:
                        rejected += 1
                        self._reject(record.topic, exc, 1)
                        continue
                    if route is None:
                        return self._drain_failed(f"no metadata for topic {record.topic!r}")
                batcher.add(route, record.key, record.value)
            batcher.hand_off_all()
            self._wait(lambda: batcher.unresolved == 0, self._stall_timeout_s)
            failure = ""
            for topic, chunk_records, chunk in batcher.take_all(keep_routes=True):
                if chunk is not None and chunk.state is ChunkState.ACKED:
                    continue
                if chunk is not None and is_rejection(chunk.error):
                    rejected += len(chunk_records)
                    self._reject(topic, chunk.error, len(chunk_records))
                    continue
                failure = failure or repr(chunk.error if chunk else None) or "no acknowledgement"
            if failure:
                return self._drain_failed(failure)
            self._spool.commit(position, len(records))
            self.resent += len(records) - rejected
            logger.info(
                "resent %s spooled events, %s left", f"{len(records):,}", f"{len(self._spool):,}"
            )
        return True

    def _drain_failed(self, reason: str) -> bool:
        logger.warning("resending the spool failed (%s); will retry", reason)
        if self._spool is not None:
            self._spool.rewind()
        self._drop_link()
        self._batcher.take_all()  # these records are still in the spool
        return False

    def _raise_errors(self) -> None:
        if not self._errors:
            return
        errors, self._errors = self._errors, []
        first = errors[0]
        count = sum(getattr(error, "count", 1) for error in errors)
        if isinstance(first, _DeliveryFailure):
            raise type(first)(first.topic, first.reason, count)
        raise first
