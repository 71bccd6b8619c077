"""Prometheus metrics of the ingest worker (``maxlake_*``), served on ``MAXLAKE_METRICS_PORT``.

The worker measures itself without touching the pipeline: :class:`MeteredSink` wraps the sink
(the lake writer or a plug-in) and records every classified batch it is handed (sizes,
per-table rows, quarantine reasons, duplicates, decode/validate/commit times);
:class:`LagPoller` refreshes the consumer-lag gauge from the group's committed offsets in a
background thread. Each :class:`WorkerMetrics` owns its registry, so several can coexist in
one process (tests). The metric names, types and labels are documented in docs/OPERATIONS.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from lake import BatchOutput, DeltaStore, WriteResult, quarantine_table, silver_table
from lake.lineage import GAP_CAUSES
from lake.sink import Sink, SinkHandle, TopicPartition
from lake.tables import DUPLICATES, RUNS
from lake.unwritable import CAUSES
from maxlake.settings import Settings
from schemas import JSON_PARSER
from streams.offsets import PartitionOffsets, group_offsets

__all__ = ["LagPoller", "MeteredSink", "WorkerMetrics", "serve_metrics"]

logger = logging.getLogger(__name__)

_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_SLOW_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class WorkerMetrics:
    """Every ``maxlake_*`` metric of one worker process, in a registry of its own."""

    def __init__(self, *, process_collectors: bool = True) -> None:
        self.registry = CollectorRegistry()
        if process_collectors:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        r = self.registry
        self.events = Counter(
            "maxlake_events_consumed",
            "Kafka messages processed (new to the lake)",
            ["kind"],
            registry=r,
        )
        self.redelivered = Counter(
            "maxlake_events_redelivered",
            "Messages consumed again that the lake already held (skipped, exactly-once)",
            ["kind"],
            registry=r,
        )
        self.rows = Counter(
            "maxlake_rows_written", "Rows committed per lake table", ["table"], registry=r
        )
        self.batches = Counter("maxlake_batches", "Micro-batches written", ["kind"], registry=r)
        self.batch_size = Histogram(
            "maxlake_batch_events",
            "Messages per micro-batch",
            ["kind"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "maxlake_batch_duration_seconds",
            "Wall time of one micro-batch: decode, validate, classify and commit",
            ["kind"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.decode_seconds = Histogram(
            "maxlake_decode_duration_seconds",
            "Decoder time per micro-batch",
            ["kind"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.validate_seconds = Histogram(
            "maxlake_validation_duration_seconds",
            "Great Expectations time per micro-batch",
            ["kind"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "maxlake_commit_duration_seconds",
            "Delta commits of one micro-batch (all tables)",
            ["kind"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.position_seconds = Histogram(
            "maxlake_lake_position_duration_seconds",
            "Reading where newly assigned partitions resume (ops/validation_runs) from the lake",
            buckets=_SLOW_BUCKETS,
            registry=r,
        )
        self.settle_seconds = Histogram(
            "maxlake_rebalance_settle_duration_seconds",
            "Writing and committing the batches in hand when partitions are revoked",
            buckets=_SLOW_BUCKETS,
            registry=r,
        )
        self.quarantined = Counter(
            "maxlake_quarantined",
            "Quarantined messages by reason (a message with two reasons counts in both)",
            ["kind", "reason"],
            registry=r,
        )
        self.quarantined_messages = Counter(
            "maxlake_quarantined_messages", "Quarantined messages", ["kind"], registry=r
        )
        self.duplicates = Counter(
            "maxlake_duplicates", "Resent events recorded in ops/duplicates", ["kind"], registry=r
        )
        self.warnings = Counter(
            "maxlake_expectation_warnings",
            "Rows failing a warn-level expectation (kept in silver)",
            ["kind", "expectation"],
            registry=r,
        )
        self.batch_check_failures = Counter(
            "maxlake_batch_expectation_failures",
            "Micro-batches failing a batch-level expectation",
            ["kind", "expectation"],
            registry=r,
        )
        self.last_batch = Gauge(
            "maxlake_last_batch_timestamp_seconds",
            "Unix time the last micro-batch of a kind was committed",
            ["kind"],
            registry=r,
        )
        self.lag = Gauge(
            "maxlake_consumer_lag",
            "Messages not yet committed by the consumer group",
            ["topic", "partition"],
            registry=r,
        )
        self.write_blocked = Gauge(
            "maxlake_lake_write_blocked",
            "1 while lake writes fail for this cause (disk_full, read_only, ...) and "
            "consumption is paused; 0 otherwise",
            ["cause"],
            registry=r,
        )
        self.write_blocked_since = Gauge(
            "maxlake_lake_write_blocked_since_timestamp_seconds",
            "Unix time lake writes started failing; 0 when the lake is writable",
            registry=r,
        )
        self.write_retries = Counter(
            "maxlake_lake_write_retries",
            "Failed lake write attempts retried after a backoff, by cause",
            ["cause"],
            registry=r,
        )
        self.recreated_discarded = Counter(
            "maxlake_records_discarded_topic_recreated",
            "Fetched records discarded because their topic was deleted and created again "
            "after they were fetched (either incarnation's; the new one is read from its start)",
            registry=r,
        )
        for cause in CAUSES:
            self.write_blocked.labels(cause).set(0)
        self.fetch_corrupt = Gauge(
            "maxlake_fetch_corrupt",
            "Per partition paused for a corrupt fetch: the offset of the corrupt record batch "
            "(the partition's position; nothing at or past it is committed). Gone once fetched "
            "intact; see maxlake_fetch_corrupt_attempts",
            ["topic", "partition"],
            registry=r,
        )
        self.fetch_corrupt_attempts = Gauge(
            "maxlake_fetch_corrupt_attempts",
            "Per partition paused for a corrupt fetch: fetches of the offset that were "
            "corrupt (5 or more: the broker's copy is damaged, operator action needed)",
            ["topic", "partition"],
            registry=r,
        )
        self.lag_updated = Gauge(
            "maxlake_consumer_lag_updated_timestamp_seconds",
            "Unix time the lag gauge was last refreshed",
            registry=r,
        )
        self.offset_gaps = Gauge(
            "maxlake_offset_gaps",
            "Offset gaps recorded in ops/gaps (offsets the lake will never hold), by cause: "
            "expired_before_ingest, beyond_log_end, deleted_at_corrupt_batch (gone from Kafka "
            "before ingest), "
            "discarded_topic_recreated (a topic's old incarnation, deleted with it)",
            ["cause"],
            registry=r,
        )
        for cause in GAP_CAUSES:
            self.offset_gaps.labels(cause).set(0)
        self.offsets_expired = Gauge(
            "maxlake_offsets_expired_before_ingest",
            "Offsets in the recorded gaps of causes expired_before_ingest, beyond_log_end and "
            "deleted_at_corrupt_batch: "
            "messages Kafka no longer had when a worker asked",
            registry=r,
        )
        self.offsets_discarded = Gauge(
            "maxlake_offsets_discarded_topic_recreated",
            "Offsets in the recorded gaps of cause discarded_topic_recreated: offsets of a "
            "topic's old incarnation not in the lake (discarded or never read when the topic "
            "was deleted and created again; an upper bound per gap)",
            registry=r,
        )
        self.lineage_changes = Gauge(
            "maxlake_topic_lineage_changes",
            "Topics recorded in ops/lineage as deleted and created again (new topic id)",
            registry=r,
        )
        self.json_parser = Gauge(
            "maxlake_decoder_json_parser",
            "1 for the JSON parser of the decoder's fast path: native (maxlake_native) or "
            "arrow (pyarrow's reader, the fallback when maxlake_native is not built)",
            ["parser"],
            registry=r,
        )
        self.json_parser.labels(JSON_PARSER).set(1)

    def observe(self, batch: BatchOutput, result: WriteResult) -> None:
        """Record one written micro-batch (``result`` counts only offsets new to the lake)."""
        kind = batch.kind
        run = batch.run
        self.batches.labels(kind).inc()
        self.events.labels(kind).inc(result.consumed)
        if result.skipped:
            self.redelivered.labels(kind).inc(result.skipped)
        self.batch_size.labels(kind).observe(batch.offsets.num_rows)
        elapsed = (datetime.now(UTC) - run.started_at).total_seconds()
        self.batch_seconds.labels(kind).observe(max(elapsed, 0.0))
        self.decode_seconds.labels(kind).observe(run.decode_ms / 1000)
        self.validate_seconds.labels(kind).observe(run.validate_ms / 1000)
        self.commit_seconds.labels(kind).observe(result.write_ms / 1000)
        for table, rows in (
            (silver_table(kind), result.silver_rows),
            (quarantine_table(kind), result.quarantined),
            (DUPLICATES, result.duplicates),
            (RUNS, 1 if result.consumed else 0),
        ):
            if rows:
                self.rows.labels(table).inc(rows)
        if result.quarantined:
            self.quarantined_messages.labels(kind).inc(result.quarantined)
            for reason, n in _reasons(batch, result.quarantined).items():
                self.quarantined.labels(kind, reason).inc(n)
        if result.duplicates:
            self.duplicates.labels(kind).inc(result.duplicates)
        if result.consumed:
            for name, n in run.warn_counts.items():
                if n:
                    self.warnings.labels(kind, name).inc(n)
            for name, (ok, _) in run.batch_checks.items():
                if not ok:
                    self.batch_check_failures.labels(kind, name).inc()
        self.last_batch.labels(kind).set(time.time())

    def set_write_blocked(self, cause: str | None, since: float) -> None:
        """Record a failed write attempt of ``cause`` (None: the lake is writable again)."""
        for known in CAUSES:
            self.write_blocked.labels(known).set(1 if known == cause else 0)
        self.write_blocked_since.set(since if cause else 0.0)
        if cause is not None:
            self.write_retries.labels(cause).inc()

    def set_fetch_corrupt(self, partitions: list[dict[str, Any]]) -> None:
        """Set the corrupt-fetch gauges to ``partitions`` (:mod:`streams.batch_corrupt`)."""
        for gauge in (self.fetch_corrupt, self.fetch_corrupt_attempts):
            gauge.clear()
        for p in partitions:
            labels = (p["topic"], str(p["partition"]))
            self.fetch_corrupt.labels(*labels).set(p["offset"])
            self.fetch_corrupt_attempts.labels(*labels).set(p["attempts"])

    def set_offset_events(self, events: Mapping[str, Any]) -> None:
        """Set the gap and lineage gauges from :func:`lake.ops_status.offset_events`."""
        for cause, gaps in events["gaps_by_cause"].items():
            self.offset_gaps.labels(cause).set(gaps)
        self.offsets_expired.set(events["offsets_expired_total"])
        self.offsets_discarded.set(events["offsets_discarded_total"])
        self.lineage_changes.set(events["lineage_changes_total"])

    def set_lag(self, parts: Sequence[PartitionOffsets]) -> None:
        """Set the lag gauge of every partition."""
        for p in parts:
            self.lag.labels(p.topic, str(p.partition)).set(p.lag)
        self.lag_updated.set(time.time())


def _reasons(batch: BatchOutput, fresh: int) -> Tally[str]:
    """Reasons of the quarantine rows the writer kept (the last ``fresh`` rows by offset within
    each partition are the new ones; on a plain batch that is all of them)."""
    rows = batch.quarantine
    if rows.num_rows == 0:
        return Tally()
    records = rows.select(["kafka_topic", "kafka_partition", "kafka_offset", "reasons"]).to_pylist()
    if fresh < len(records):
        records = sorted(records, key=lambda r: r["kafka_offset"])[-fresh:]
    tally: Tally[str] = Tally()
    for record in records:
        tally.update(record["reasons"])
    return tally


class MeteredSink:
    """A :class:`lake.sink.Sink` that passes everything to ``sink`` and records every batch it
    writes in :class:`WorkerMetrics`."""

    def __init__(self, sink: Sink, metrics: WorkerMetrics) -> None:
        self.sink = sink
        self.metrics = metrics

    def committed_offsets(
        self,
        kind: str,
        partitions: Sequence[TopicPartition],
        topic_ids: Mapping[str, str | None] | None = None,
        *,
        worker: str = "worker",
    ) -> dict[TopicPartition, int]:
        """As ``sink`` says."""
        return self.sink.committed_offsets(kind, partitions, topic_ids, worker=worker)

    def handle(self) -> SinkHandle:
        """``sink``'s handle."""
        return self.sink.handle()

    def write(self, batch: BatchOutput) -> WriteResult:
        """Write with ``sink``, then record; metrics never fail a batch."""
        result = self.sink.write(batch)
        try:
            self.metrics.observe(batch, result)
        except Exception:  # a metrics bug must not stop ingest
            logger.exception("recording metrics of a %s batch failed", batch.kind)
        return result


class LagPoller:
    """Refreshes the lag gauge every ``interval_s`` from the group's committed offsets, and the
    gap and lineage gauges from the lake's ``ops/gaps`` and ``ops/lineage``.

    Runs in a daemon thread with its own kafka-python clients, so a slow broker never blocks
    the Faust event loop; a failed poll is logged and retried at the next interval.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: WorkerMetrics,
        topics: Callable[[], list[str]] | list[str],
        *,
        interval_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.topics = topics
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maxlake-lag", daemon=True)
        self._store: DeltaStore | None = None

    def start(self) -> LagPoller:
        """Start polling in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current poll."""
        self._stop.set()

    def poll_once(self) -> None:
        """One refresh of the gauge."""
        topics = self.topics() if callable(self.topics) else self.topics
        self.metrics.set_lag(group_offsets(self.settings, topics))
        if self._store is None:
            self._store = DeltaStore.from_settings(self.settings)
        # Lazy: ops_status reads with Polars (~35 MiB), loaded only when metrics are served.
        from lake.ops_status import offset_events  # noqa: PLC0415

        self.metrics.set_offset_events(offset_events(self._store, datetime.now(UTC)))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # keep polling: the broker may come back
                logger.warning("consumer lag poll failed: %s", exc)
            self._stop.wait(self.interval_s)


def serve_metrics(metrics: WorkerMetrics, port: int, *, addr: str = "127.0.0.1") -> None:
    """Expose ``metrics`` on ``http://addr:port/metrics`` (a daemon thread)."""
    start_http_server(port, addr=addr, registry=metrics.registry)
    logger.info("Prometheus metrics on http://%s:%d/metrics", addr, port)
