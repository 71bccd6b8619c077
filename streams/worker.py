"""The Faust ingest worker: one agent per event kind over every tenant's topic of that kind.

Each agent (``concurrency=1``) takes micro-batches with ``stream.noack().noack_take(n, within)``
and hands them to :class:`streams.ingest.IngestPipeline`; only after the Delta commits succeed
does it acknowledge the batch's events, so Faust never commits an offset past unwritten data
(faust #315, #606). The pipeline's writes are idempotent, so anything re-delivered after a crash
or a rebalance is skipped by the lake, not written twice.

Workers with the same ``MAXLAKE_GROUP_ID`` form one consumer group and share the partitions.
A worker that dies without leaving the group (kill -9, power cut) keeps its partitions until
the broker session times out (``MAXLAKE_BROKER_SESSION_TIMEOUT_S``, default 30 s, at least the
broker's ``group.min.session.timeout.ms``); only then does a restarted worker get them back.
On SIGTERM Faust stops the agents at their next ``await``: a batch being written finishes its
commits first; events buffered but not yet written are simply not acknowledged and are consumed
again by whichever worker owns their partition next.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import faust
from faust.worker import Worker

from lake import (
    BatchOutput,
    BatchWriter,
    CommitConflict,
    DeltaStore,
    WriteResult,
    quarantine_table,
    silver_table,
)
from lake.maintenance import compact
from lake.registry_store import FixedRegistry, registry_source
from lake.sink import Sink, load_sink
from maxlake import redact
from maxlake.settings import Settings
from quality import ValidationGateway
from schemas import EventKind, Registry, announce_json_parser
from streams.batch_engine import BatchEngine
from streams.broker_wait import wait_for_broker
from streams.faust_app import ReadCommittedApp
from streams.ingest import IngestPipeline, RawMessage, log_batch
from streams.memory import glibc_threshold_env
from streams.metrics import LagPoller, MeteredSink, WorkerMetrics, serve_metrics
from streams.status import ingest_topics
from streams.tally import WORKER_TALLY
from streams.topics import require_topic_ids
from streams.write_block import WriteAbandoned, WriteBlock, worker_state_dir

__all__ = ["build_app", "run_worker", "start_line"]

logger = logging.getLogger(__name__)


def build_app(
    settings: Settings,
    *,
    registry: Registry | None = None,
    kinds: Iterable[EventKind] = tuple(EventKind),
    tenants: Sequence[str] | None = None,
    worker_name: str | None = None,
    metrics: WorkerMetrics | None = None,
    sink: Sink | None = None,
) -> faust.App:
    """A Faust app with one ingest agent per kind over the topics of ``tenants``.

    Args:
        settings: broker, group, batch and lake settings.
        registry: a fixed asset registry; default ``settings.registry_file`` or else the live
            registry under the lake root, whose newest version is picked up without a restart
            (checked every ``settings.registry_poll_s``). Its tenants at start name the topics
            when ``tenants`` is None.
        kinds: event kinds to ingest.
        tenants: tenants whose topics to read. When None, the registry's tenants: the batch
            engine subscribes to a tenant added to the live registry within
            ``settings.registry_poll_s`` (plus up to 10 s of Kafka metadata refresh); the
            stream engine needs a restart for it.
        worker_name: recorded with every batch in ``ops/validation_runs``.
        metrics: when given, every written batch is recorded in it (see streams.metrics).
        sink: where batches go; default the sink ``settings.sink`` names, else the Delta lake.

    Raises:
        SinkError: (a ``ConfigError``) ``settings.sink`` names no loadable sink factory.
    """
    source = FixedRegistry(registry) if registry is not None else registry_source(settings)
    tenant_ids = list(tenants) if tenants else [t.id for t in source.snapshot()[1].tenants]
    name = worker_name or f"{socket.gethostname()}-{os.getpid()}"
    sink = sink or _sink(settings)
    settings.faust_datadir.mkdir(parents=True, exist_ok=True)
    block = WriteBlock(
        name,
        worker_state_dir(settings.faust_datadir),
        metrics=metrics,
        initial_s=settings.lake_retry_initial_s,
        max_s=settings.lake_retry_max_s,
        lake_root=settings.lake_root,
    )
    session_timeout_s = settings.broker_session_timeout_s
    app = ReadCommittedApp(
        settings.group_id if settings.ingest_engine == "stream" else f"{settings.group_id}-app",
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        store="memory://",
        web_enabled=False,
        # The batch engine leaves Faust's own consumer without topics, which aiokafka refuses;
        # the app's small leader topic gives it one.
        topic_disable_leader=settings.ingest_engine == "stream",
        topic_allow_declare=settings.ingest_engine == "batch",
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=min(settings.batch_max_events, 10000),
        stream_buffer_maxsize=max(settings.batch_max_events * 2, 4096),
        broker_commit_every=settings.batch_max_events,
        broker_commit_interval=1.0,
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=max(session_timeout_s / 10, 0.5),
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        producer_acks=-1,
        broker_credentials=_credentials(settings),
        datadir=str(settings.faust_datadir),
    )
    state: dict[str, Any] = {}

    building = threading.Lock()

    def pipeline() -> IngestPipeline:
        with building:
            return _pipeline()

    def _pipeline() -> IngestPipeline:
        if "pipeline" not in state:
            announce_json_parser()
            gateway = ValidationGateway(source)
            writer = MeteredSink(sink, metrics) if metrics else sink
            state["pipeline"] = IngestPipeline(settings, gateway, writer, worker=name)
        result: IngestPipeline = state["pipeline"]
        return result

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        if settings.ingest_engine == "stream" and block.blocked:
            block.abandon()
        if "pipeline" in state:
            for tp in revoked:
                state["pipeline"].forget(tp.topic, tp.partition)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        block.rearm()
        if "pipeline" in state:
            for tp in assigned:
                state["pipeline"].forget(tp.topic, tp.partition)
        if settings.ingest_engine == "stream" and assigned:
            loop = asyncio.get_running_loop()
            ids = await loop.run_in_executor(
                None, require_topic_ids, settings, sorted({tp.topic for tp in assigned})
            )
            state.setdefault("topic_ids", {}).update(ids)
            logger.info("stream engine: %d partition(s) assigned", len(assigned))

    if settings.compact_interval_s > 0 and settings.sink is None:
        kinds_list = list(kinds)

        @app.timer(interval=settings.compact_interval_s)  # type: ignore[untyped-decorator]
        async def _compact() -> None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, _compact_closed, settings, kinds_list)

        kinds = kinds_list
    if settings.ingest_engine == "batch":
        kinds_tuple = tuple(kinds)

        def ingest_topics() -> dict[str, EventKind]:
            ids = tenants or [t.id for t in source.snapshot()[1].tenants]
            return {settings.topic_for(t, kind.value): kind for kind in kinds_tuple for t in ids}

        engine = BatchEngine(settings, ingest_topics, pipeline, block)

        @app.task  # type: ignore[untyped-decorator]
        async def _batch_engine() -> None:
            await engine.run()

        return app
    for kind in kinds:
        topics = [settings.topic_for(tenant, kind.value) for tenant in tenant_ids]
        channel = app.topic(*topics, key_serializer="raw", value_serializer="raw", allow_empty=True)
        app.agent(channel, name=f"ingest-{kind.value}", concurrency=1)(
            _ingest_agent(kind, settings, pipeline, app, block, state.setdefault("topic_ids", {}))
        )
    return app


def _sink(settings: Settings) -> Sink:
    """The sink ``settings.sink`` names (``package.module:factory``), else the Delta lake.

    Raises:
        SinkError: (a ``ConfigError``) the named factory cannot be loaded or makes no sink.
    """
    if settings.sink is None:
        return BatchWriter(DeltaStore.from_settings(settings))
    sink = load_sink(settings.sink, settings)
    logger.info("sink: %s (%s)", settings.sink, type(sink).__name__)
    return sink


def _credentials(settings: Settings) -> Any:
    """Faust's credentials of ``settings.kafka_security()``; None for PLAINTEXT."""
    security = settings.kafka_security()
    protocol = security.get("security_protocol", "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(security["ssl_context"])
    return faust.SASLCredentials(
        username=security["sasl_plain_username"],
        password=security["sasl_plain_password"],
        mechanism=security["sasl_mechanism"],
        ssl_context=security.get("ssl_context"),
    )


def _compact_closed(settings: Settings, kinds: list[EventKind]) -> None:
    """Compact closed partitions of the silver and quarantine tables; conflicts are logged."""
    store = DeltaStore.from_settings(settings)
    for kind in kinds:
        for name in (silver_table(kind), quarantine_table(kind)):
            if not store.exists(name):
                continue
            try:
                metrics = compact(store, name)
            except CommitConflict as exc:
                logger.warning("scheduled compaction of %s skipped: %s", name, exc)
                continue
            logger.info(
                "compacted %s: %s files -> %s",
                name,
                metrics.get("numFilesRemoved"),
                metrics.get("numFilesAdded"),
            )


def _ingest_agent(
    kind: EventKind,
    settings: Settings,
    pipeline: Any,
    app: faust.App,
    block: WriteBlock,
    ids: dict[str, str],
) -> Any:
    # No Consumer.pause_partitions here: Faust drops records it already fetched for a paused
    # partition while aiokafka's position has moved past them, and later acks commit over the
    # gap (found by tests/integration/test_lake_unwritable.py: 173 offsets lost). The agent
    # simply stops taking from its stream; Faust stops fetching once the stream's buffer
    # (stream_buffer_maxsize) is full, and nothing unacknowledged is committed. While blocked,
    # Faust must not wait for the blocked batch's events on shutdown or rebalance (they are
    # never acknowledged; stream_wait_empty would wait forever): they are abandoned instead.
    def pause() -> int:
        app.conf.stream_wait_empty = False
        return len(app.consumer.assignment())

    def resume() -> None:
        app.conf.stream_wait_empty = True

    async def ingest(stream: Any) -> None:
        loop = asyncio.get_running_loop()
        ingest_pipeline: IngestPipeline = await loop.run_in_executor(None, pipeline)
        async for events in stream.noack().noack_take(
            settings.batch_max_events, within=settings.batch_wait_s
        ):
            unknown = {e.message.topic for e in events} - ids.keys()
            if unknown:
                ids.update(
                    await loop.run_in_executor(None, require_topic_ids, settings, sorted(unknown))
                )
            messages = [
                RawMessage(
                    e.message.topic,
                    e.message.partition,
                    e.message.offset,
                    e.message.timestamp and int(e.message.timestamp * 1000),
                    e.message.key,
                    e.message.value,
                    ids.get(e.message.topic),
                )
                for e in events
            ]
            outputs = ingest_pipeline.prepare(kind, messages)

            async def write(outputs: list[BatchOutput] = outputs) -> WriteResult:
                return ingest_pipeline.write(outputs)

            # A refused write waits here (cancellable: SIGTERM stops the agent at once, the
            # batch unacknowledged); the stream engine keeps its partitions meanwhile.
            try:
                result = await block.retry(write, pause=pause, resume=resume)
            except WriteAbandoned as exc:
                logger.warning("%s; its offsets are consumed again by their next owner", exc)
                continue
            log_batch(kind, result)
            for event in events:
                await stream.ack(event)

    ingest.__name__ = f"ingest_{kind.value}"
    return ingest


def start_line(settings: Settings) -> str:
    """What a worker logs first: the consumer group it joins and the allocator settings in
    effect in this process (``_RJEM_MALLOC_CONF`` is set inside the process, so it is not in
    ``/proc/<pid>/environ``)."""
    default = settings.group_id == Settings.model_fields["group_id"].default
    shared = " (the default group id, shared by every lake on the broker that keeps it)"
    return (
        f"joining consumer group {settings.group_id}{shared if default else ''} with the "
        f"{settings.ingest_engine} engine on {settings.bootstrap_servers}; memory: "
        f"ARROW_DEFAULT_MEMORY_POOL={os.environ.get('ARROW_DEFAULT_MEMORY_POOL', '(unset)')}, "
        f"_RJEM_MALLOC_CONF={os.environ.get('_RJEM_MALLOC_CONF') or '(unset)'}, "
        f"MAXLAKE_MEMORY_KEEP_FREE_MIB={settings.memory_keep_free_mib}, "
        f"MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB={settings.memory_mmap_threshold_kib}{_threshold_note(settings)}"
    )


def _threshold_note(settings: Settings) -> str:
    """What the batch-only memory settings do in this process, when not the obvious."""
    if settings.ingest_engine != "batch":
        return " (both MAXLAKE_MEMORY_* settings: batch engine only)"
    glibc = glibc_threshold_env()
    if glibc is None:
        return ""
    if settings.memory_mmap_threshold_kib > 0:
        return f" (replaces {glibc}, set for glibc)"
    return f" (glibc's {glibc} applies, in bytes)"


def run_worker(
    settings: Settings,
    *,
    kinds: Iterable[EventKind] = tuple(EventKind),
    tenants: Sequence[str] | None = None,
    loglevel: str = "info",
) -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT.

    Raises:
        SinkError: (a ``ConfigError``) ``settings.sink`` names no loadable sink factory.
        BrokerUnreachable: the broker did not answer within ``settings.broker_wait_s`` (> 0).
    """
    kinds = tuple(kinds)
    # A plugged-in sink that does not load fails now, not after the wait for the broker.
    sink = _sink(settings) if settings.sink is not None else None
    announce_json_parser()
    logger.info(start_line(settings))
    # Before any Kafka client: a broker that is down is waited for, one log line per attempt
    # (or, past MAXLAKE_BROKER_WAIT_S, one error line), not a Faust traceback.
    wait_for_broker(settings)
    metrics = WorkerMetrics() if settings.metrics_port else None
    if metrics is not None:
        serve_metrics(metrics, settings.metrics_port, addr=settings.metrics_host)
        LagPoller(settings, metrics, ingest_topics(settings, tenants=tenants, kinds=kinds)).start()
    app = build_app(settings, kinds=kinds, tenants=tenants, metrics=metrics, sink=sink)

    stop_timeout_s = settings.worker_stop_timeout_s
    signals: list[str] = []

    class QuietWorker(Worker):
        def _schedule_shutdown(self, sig: signal.Signals) -> None:
            if not self._signal_stop_time:
                signals.append(sig.name)
                exit_if_stop_hangs(stop_timeout_s, sig.name)
                threading.excepthook = _one_line_while_stopping
            super()._schedule_shutdown(sig)

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            if level > logging.DEBUG:
                for handler in logger.handlers:
                    handler.addFilter(only_our_info)
                    handler.addFilter(RepeatLimit())
            redact.install(logger)

    try:
        # Faust's default turns every write to stderr into a WARNING log line: a traceback
        # printed at shutdown became one line per token.
        QuietWorker(
            app, loglevel=loglevel, quiet=True, redirect_stdouts=False
        ).execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    else:
        code = 0
    if signals:
        logger.info(WORKER_TALLY.stopped_line(signals[0], clean=code == 0))
    # Faust has stopped: batches written and committed, or abandoned uncommitted. Tearing the
    # interpreter down (GX, pandas, Arrow, deltalake's runtime) takes 5-20 s on a busy machine,
    # which SIGTERM must not wait for; nothing is left to flush but the logs.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def exit_if_stop_hangs(timeout_s: float, signal_name: str) -> threading.Thread:
    """Start a daemon thread that ends the process ``timeout_s`` seconds from now (exit code 0)
    with one WARNING line, unless the process exits first.

    A worker told to stop finishes its batch, commits and leaves the group; with the broker
    unreachable the Kafka clients retry each of those steps for their request timeouts (over
    60 s measured). Exiting without them is safe: offsets are committed with the batch in the
    lake, so an uncommitted batch is read again, and written once, on the next start.
    """

    def watch() -> None:
        time.sleep(timeout_s)
        logger.warning(
            "the worker did not stop within %.0f s of %s (broker unreachable?); exiting now: "
            "a batch not yet committed is read again on the next start "
            "(MAXLAKE_WORKER_STOP_TIMEOUT_S)",
            timeout_s,
            signal_name,
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    thread = threading.Thread(target=watch, name="stop-watchdog", daemon=True)
    thread.start()
    return thread


def _one_line_while_stopping(args: threading.ExceptHookArgs) -> None:
    """A Kafka client thread that fails while the worker stops (typically with the broker gone)
    is one ERROR line, its traceback at DEBUG, not a traceback on stderr."""
    logger.error(
        "while stopping, thread %s ended with %s: %s",
        args.thread.name if args.thread is not None else "?",
        args.exc_type.__name__,
        args.exc_value,
    )
    if args.exc_value is not None:
        logger.debug("traceback", exc_info=args.exc_value)


_OURS = ("streams", "lake", "quality", "schemas", "maxlake", "infra")
_FAUST_SUBCLASSES = "streams.faust_app"
"""Our Faust app, producer and consumer classes: their `Starting...` lines are Faust's."""
_TRANSIENT = ("aiokafka.consumer.group_coordinator", "GroupCoordinatorNotAvailableError")
"""aiokafka logs this at ERROR while the broker elects the group's coordinator, then retries."""


class RepeatLimit:
    """A log filter passing one line per library message template and ``every_s`` seconds.

    With the broker gone, aiokafka logs "Unable connect to node", "Unable to update metadata"
    and "Failed fetch messages" for every retry: ~8,800 ERROR lines a minute (90,000 in ten
    minutes of one demo worker). The first of each passes; later ones within ``every_s`` are
    counted and the next one passed says how many were left out. maxlake's own lines always
    pass.
    """

    def __init__(self, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def __call__(self, record: logging.LogRecord) -> bool:
        if record.name.split(".")[0] in _OURS:
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        since, left_out = self._last.get(key, (-self.every_s, 0))
        if now - since < self.every_s:
            self._last[key] = (since, left_out + 1)
            return False
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[key] = (now, 0)
        if left_out:
            record.msg = f"{record.msg} (and {left_out:,} more like it in {now - since:.0f} s)"
        return True


def only_our_info(record: logging.LogRecord) -> bool:
    """INFO and below from maxlake's own packages only; libraries (Faust, mode, aiokafka,
    kafka-python, and Faust's service lines of our Faust subclasses) from WARNING up,
    kafka-python's event-loop timing notes and aiokafka's start-up ``GroupCoordinatorNotAvailable``
    retry not at all. Faust's one ``Worker: Ready`` line stays: it says the worker handles
    signals now."""
    if record.getMessage().endswith("]: Ready"):
        return True
    if record.name == _TRANSIENT[0] and _TRANSIENT[1] in record.getMessage():
        return False
    if record.name.split(".")[0] in _OURS and record.name != _FAUST_SUBCLASSES:
        return True
    if record.name == "kafka.net.selector":
        return record.levelno >= logging.ERROR
    return record.levelno >= logging.WARNING
