"""The plant-side producer: JSON events to Kafka, with store-and-forward through a disk spool.

:class:`PlantProducer` wraps one kafka-python ``KafkaProducer`` (idempotent, ``acks=all``, batched
and compressed) and one :class:`~streams.spool.Spool`. It has two modes:

* **direct**: events go to Kafka; sends are asynchronous and reaped in order every few thousand
  events, so the caller never waits per event.
* **spooling**: the broker is unreachable (at construction, a send or flush timed out, an event's
  delivery failed or stalled). Every event not yet acknowledged, then every new event, is appended
  to the spool in send order. Every ``retry_interval_s`` (or on :meth:`PlantProducer.flush`) the
  producer probes the broker; once it answers, the spool is resent in order in chunks, each chunk
  removed from the spool only after the broker acknowledged all of it, and only when the spool is
  empty do new events go direct again.

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
import socket
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.codec import has_lz4
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError

from maxlake.errors import MaxlakeError, TerminalError, TransientError
from maxlake.settings import Settings
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

_REAP_EVERY = 2048
_REAP_INTERVAL_S = 0.5
_Pending = tuple[Any, str, bytes | None, bytes, float]


class _DeliveryFailure(MaxlakeError):
    """Events of one topic that did not reach the broker, with the reason and how many."""

    verb = "not delivered"

    def __init__(self, topic: str, reason: str, count: int = 1) -> None:
        self.topic = topic
        self.reason = reason
        self.count = count
        super().__init__(f"{count} event(s) to topic {topic!r} {self.verb}: {reason}")


class DeliveryError(_DeliveryFailure, TransientError):
    """Events could not be delivered and there is no spool to keep them (or the spool failed)."""


class DeliveryRejectedError(_DeliveryFailure, TerminalError):
    """The broker refused events for good (authorization, record too large for the topic, ...)."""

    verb = "rejected by the broker"


class EventSerializationError(TerminalError):
    """An event is not JSON-serializable or lacks what the producer needs to route it."""


class EventTooLargeError(TerminalError):
    """An event is larger than the producer's ``max_request_size``."""


class UnknownTopicError(TerminalError):
    """The broker answers but has no such topic (maxlake brokers do not auto-create topics)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        super().__init__(
            f"topic {topic!r} does not exist; create it first (`maxlake topics create`)"
        )


class _Mode(Enum):
    DIRECT = "direct"
    SPOOLING = "spooling"


def _compression() -> str:
    """``lz4`` when its module is installed (faster), else ``gzip`` from the standard library."""
    return "lz4" if has_lz4() else "gzip"


def _is_rejection(exc: BaseException | None) -> bool:
    """A broker-side refusal that a resend cannot fix (versus an outage or a forced close)."""
    if not isinstance(exc, KafkaError):
        return False
    if exc.retriable or isinstance(exc, KafkaTimeoutError):
        return False
    name = type(exc).__name__
    return name not in {"IllegalStateError", "KafkaConnectionError", "UnknownError"}


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
        linger_ms: how long Kafka batches wait to fill; trades a little latency for throughput.
        batch_size: Kafka batch size in bytes per partition.
        max_request_size: larger events raise :class:`EventTooLargeError`.
        stall_timeout_s: an unacknowledged event older than this means the broker is gone.
        retry_interval_s: how often a spooling producer probes the broker.
        connect_timeout_s: bound on one probe (TCP connect, then Kafka bootstrap).
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
        self._clock = _Clock()
        self._inflight: deque[_Pending] = deque()
        self._since_reap = 0
        self._next_reap = 0.0
        self._buffer: list[tuple[str, bytes | None, bytes]] = []
        self._errors: list[MaxlakeError] = []
        self._next_probe = 0.0
        self._closed = False
        request_timeout_ms = max(1000, int(stall_timeout_s * 1000))
        config: dict[str, Any] = {
            "bootstrap_servers": settings.bootstrap_servers.split(","),
            "client_id": client_id,
            "acks": "all",
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "compression_type": _compression(),
            "max_request_size": max_request_size,
            "request_timeout_ms": request_timeout_ms,
            "delivery_timeout_ms": request_timeout_ms + linger_ms + 1000,
            "max_block_ms": int(connect_timeout_s * 1000),
            "bootstrap_timeout_ms": int(connect_timeout_s * 1000),
            "reconnect_backoff_max_ms": 1000,
            **settings.kafka_security(),
        }
        if "enable_idempotence" in KafkaProducer.DEFAULT_CONFIG:
            config["enable_idempotence"] = True
        self._kafka_config = config
        self._spool = Spool(spool_dir or settings.spool_dir) if store_and_forward else None
        self._kafka: KafkaProducer | None = None
        self._mode = _Mode.SPOOLING
        self._try_recover()

    # ------------------------------------------------------------------ public API

    @property
    def spool_pending(self) -> int:
        """Events in the spool (on disk or about to be written) waiting for the broker."""
        return (len(self._spool) if self._spool is not None else 0) + len(self._buffer)

    @property
    def kafka_config(self) -> dict[str, Any]:
        """The kafka-python ``KafkaProducer`` configuration in use (a copy; has credentials)."""
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
        if isinstance(event, bytes | bytearray | memoryview):
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
            if not isinstance(tenant, str) or not isinstance(kind, str):
                raise EventSerializationError(
                    "cannot derive the topic: the event needs string 'tenant' and 'kind' "
                    "(or pass topic=...)"
                )
            topic = self.settings.topic_for(tenant, kind)
        machine = fields.get("machine")
        key = machine.encode() if isinstance(machine, str) else None
        self.send_raw(topic, value, key=key)

    def send_raw(self, topic: str, value: bytes, *, key: bytes | None = None) -> None:
        """Queue pre-serialized bytes for ``topic`` unchanged (same ordering and spooling rules).

        Raises:
            EventTooLargeError: larger than ``max_request_size``.
            DeliveryError: only without store-and-forward, when the broker is unreachable.
        """
        if self._closed:
            raise TerminalError("PlantProducer is closed")
        if len(value) + len(topic) + (len(key) if key else 0) > self._max_request_size:
            raise EventTooLargeError(
                f"event of {len(value)} bytes exceeds max_request_size {self._max_request_size}"
            )
        now = time.monotonic()
        if self._mode is _Mode.SPOOLING and now >= self._next_probe:
            self._try_recover()
        if self._mode is _Mode.DIRECT and self._kafka is not None:
            self._since_reap += 1
            if (
                self._since_reap >= _REAP_EVERY
                or now >= self._next_reap
                or len(self._inflight) >= self._max_in_flight
            ):
                self._check_health()
        if self._mode is _Mode.DIRECT and self._kafka is not None:
            try:
                future = self._kafka.send(topic, value, key=key)
            except MessageSizeTooLargeError as exc:
                raise EventTooLargeError(str(exc)) from exc
            except ValueError as exc:
                raise EventSerializationError(f"cannot send to topic {topic!r}: {exc}") from exc
            except KafkaTimeoutError as exc:
                if self._topic_missing(topic):
                    raise UnknownTopicError(topic) from exc
                self._enter_spooling(f"send failed: {exc}")
            except KafkaError as exc:
                self._enter_spooling(f"send failed: {exc}")
            else:
                self._inflight.append((future, topic, key, value, now))
                return
        if self._spool is None:
            self.failed += 1
            raise DeliveryError(topic, "broker unreachable and store-and-forward is off")
        self._to_spool(topic, key, value)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Make everything sent so far acknowledged or durable in the spool.

        In direct mode this waits for the broker's acknowledgements (falling back to the spool
        if they do not come); in spooling mode it fsyncs the spool and makes one attempt to
        reconnect and drain it.

        Raises:
            DeliveryRejectedError: the broker refused some events since the last flush.
            DeliveryError: without store-and-forward, some events could not be delivered.
        """
        if self._kafka is not None and self._mode is _Mode.DIRECT:
            try:
                self._kafka.flush(timeout=timeout_s)
            except KafkaError as exc:
                self._enter_spooling(f"flush failed: {exc}")
            else:
                self._reap(everything=True)
        if self._mode is _Mode.SPOOLING:
            self._write_buffer()
            self._try_recover()
        self._raise_errors()

    def wait_drained(self, timeout_s: float = 60.0) -> bool:
        """Retry the broker until the spool is empty; ``True`` when it is, ``False`` on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.flush(timeout_s=max(1.0, deadline - time.monotonic()))
            if self._mode is _Mode.DIRECT and not self._inflight and self.spool_pending == 0:
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
            if self._kafka is not None:
                kafka, self._kafka = self._kafka, None
                try:
                    kafka.close(timeout=timeout_s)
                except KafkaError:
                    _abandon(kafka)
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

    def _check_health(self) -> None:
        """Reap acknowledgements; fall back to the spool on a failure, stall or full window."""
        self._since_reap = 0
        self._next_reap = time.monotonic() + _REAP_INTERVAL_S
        self._reap(everything=False)
        if self._mode is not _Mode.DIRECT or self._kafka is None:
            return
        if len(self._inflight) >= self._max_in_flight:
            try:
                self._kafka.flush(timeout=self._stall_timeout_s)
            except KafkaError as exc:
                self._enter_spooling(f"broker too slow: {exc}")
                return
            self._reap(everything=False)
        if self._inflight and time.monotonic() - self._inflight[0][4] > self._stall_timeout_s:
            self._enter_spooling(f"no acknowledgement for {self._stall_timeout_s:.0f}s")

    def _reap(self, *, everything: bool) -> None:
        """Count acknowledged events from the oldest on; stop at the first one still pending."""
        inflight = self._inflight
        while inflight:
            future = inflight[0][0]
            if not future.is_done:
                if everything:
                    self._enter_spooling("acknowledgement missing after flush")
                return
            if future.succeeded():
                self.sent += 1
            elif _is_rejection(future.exception):
                self._reject(inflight[0][1], future.exception)
            else:
                self._enter_spooling(f"delivery failed: {future.exception}")
                return
            inflight.popleft()

    def _reject(self, topic: str, exc: BaseException | None) -> None:
        self.failed += 1
        logger.error("broker rejected an event for topic %s: %s", topic, exc)
        self._errors.append(DeliveryRejectedError(topic, str(exc)))

    def _enter_spooling(self, reason: str) -> None:
        """Drop the Kafka client and spool every unacknowledged event, oldest first."""
        logger.warning("broker unavailable (%s); spooling events", reason)
        kafka, self._kafka = self._kafka, None
        self._mode = _Mode.SPOOLING
        self._next_probe = time.monotonic() + self._retry_interval_s
        if kafka is not None:
            _abandon(kafka)
        pending = list(self._inflight)
        self._inflight.clear()
        for future, topic, key, value, _ in pending:
            if future.is_done and future.succeeded():
                self.sent += 1
            elif future.is_done and _is_rejection(future.exception):
                self._reject(topic, future.exception)
            else:
                self._to_spool(topic, key, value)
        self._write_buffer()

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
        if self._kafka is None:
            self._kafka = self._connect()
            if self._kafka is None:
                return
        if self._drain():
            self._mode = _Mode.DIRECT
            logger.info("connected to %s; sending directly", self.settings.bootstrap_servers)

    def _connect(self) -> KafkaProducer | None:
        if not _any_reachable(self.settings.bootstrap_servers, self._connect_timeout_s):
            return None
        try:
            return KafkaProducer(**self._kafka_config)
        except (KafkaError, OSError) as exc:
            logger.info("broker not available yet: %s", exc)
            return None

    def _drain(self) -> bool:
        """Resend the spool in order, chunk by chunk; ``True`` when it is empty."""
        if self._spool is None:
            return True
        self._write_buffer()
        kafka = self._kafka
        assert kafka is not None
        while len(self._spool):
            records, position = self._spool.read(self._drain_batch)
            if not records:
                break
            try:
                futures = [kafka.send(r.topic, r.value, key=r.key) for r in records]
                kafka.flush(timeout=self._stall_timeout_s)
            except KafkaError as exc:
                missing = sorted(t for t in {r.topic for r in records} if self._topic_missing(t))
                reason = str(UnknownTopicError(missing[0])) if missing else str(exc)
                return self._drain_failed(reason)
            rejected = 0
            for future, record in zip(futures, records, strict=True):
                if future.is_done and future.succeeded():
                    continue
                if future.is_done and _is_rejection(future.exception):
                    rejected += 1
                    self._reject(record.topic, future.exception)
                    continue
                return self._drain_failed(str(future.exception or "no acknowledgement"))
            self._spool.commit(position, len(records))
            self.resent += len(records) - rejected
            logger.info("resent %d spooled events, %d left", len(records), len(self._spool))
        return True

    def _topic_missing(self, topic: str) -> bool:
        """After a metadata timeout: does the broker answer and simply lack ``topic``?"""
        kafka = self._kafka
        if kafka is None or not _any_reachable(
            self.settings.bootstrap_servers, self._connect_timeout_s
        ):
            return False
        try:
            kafka.partitions_for(topic)
        except KafkaTimeoutError:
            return True
        except KafkaError:
            return False
        return False

    def _drain_failed(self, reason: str) -> bool:
        logger.warning("resending the spool failed (%s); will retry", reason)
        if self._spool is not None:
            self._spool.rewind()
        if self._kafka is not None:
            _abandon(self._kafka)
            self._kafka = None
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


def _abandon(kafka: KafkaProducer) -> None:
    """Close a producer now, failing its pending batches instead of waiting for the broker.

    kafka-python's ``close(timeout=0)`` raises from its flush before it force-closes when batches
    are pending, so the sender thread is force-closed first (a private attribute, hence the
    ``getattr``); the pending futures then resolve as failed and get spooled by the caller.
    """
    sender = getattr(kafka, "_sender", None)
    if sender is not None:
        sender.force_close()
        sender.join(10.0)
    try:
        kafka.close(timeout=1.0)
    except KafkaError as exc:
        logger.debug("closing an abandoned Kafka producer: %s", exc)


def _any_reachable(bootstrap_servers: str, timeout_s: float) -> bool:
    """A cheap TCP probe so that a down broker costs one refused connect, not a bootstrap wait."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False
