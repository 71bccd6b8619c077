"""Shared machinery of the ingest integration tests: real worker processes, real topics, the lake.

A test builds an :class:`IngestEnv` (its own topic prefix, consumer group and lake under
``tmp_path``), produces simulator events with :func:`produce`, runs ``python -m maxlake.cli
worker`` subprocesses through :class:`WorkerProcess` (each in its own process group, so kill -9
takes Faust's children too) and waits for the group's lag to reach zero with
:func:`wait_for_lag_zero`. Expectations come from the simulator's own ``bad_class`` labels
(:func:`expected_outcome`), never from the lake itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import polars as pl
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from kafka import KafkaConsumer, TopicPartition

from lake import DeltaStore, LakeLocation
from lake.accounting import AccountingReport, check_accounting
from maxlake.settings import Settings
from schemas import EventKind, load_registry
from streams.offsets import PartitionOffsets, group_offsets
from streams.producer import PlantProducer
from streams.simulator import SimEvent, Simulator
from streams.topics import ensure_topics

KINDS: tuple[str, ...] = tuple(k.value for k in EventKind)

QUARANTINE_REASONS: dict[str, frozenset[str]] = {
    "malformed_json": frozenset({"malformed_json"}),
    "not_utf8": frozenset({"not_utf8"}),
    "empty": frozenset({"empty"}),
    "missing_field": frozenset({"missing_field"}),
    "wrong_type": frozenset({"wrong_type", "invalid_timestamp"}),
    "unknown_tag": frozenset({"unknown_tag", "unknown_alarm_code", "unknown_defect_code"}),
    "out_of_range": frozenset(
        {"tag_value_not_below_physical_min", "tag_value_not_above_physical_max", "invalid_value"}
    ),
    "nan_or_infinity": frozenset({"nan_or_infinity"}),
    "future_time": frozenset({"event_time_in_future"}),
    "past_time": frozenset({"event_time_too_old"}),
    "oversized": frozenset({"oversized"}),
    "tenant_mismatch": frozenset({"tenant_mismatch"}),
    "unknown_schema_version": frozenset({"unknown_schema_version"}),
}
"""Every bad-input class except ``duplicate_resend`` -> the quarantine reasons it may carry."""

_INGESTED = re.compile(r"batch: [1-9]\d* consumed")
_READY = re.compile(r"\[\^\w*Worker\]: Ready")
_ASSIGNED = re.compile(r"engine: [1-9]\d* partition\(s\) assigned")


@dataclass(frozen=True)
class IngestEnv:
    """One test's isolated ingest world: topics, group and lake of its own on a real broker."""

    bootstrap: str
    name: str
    work: Path
    tenants: tuple[str, ...]
    batch_max_events: int = 2000
    batch_wait_s: float = 0.3
    partitions: int = 4
    session_timeout_s: float = 6.0
    engine: str = "stream"
    lake: LakeLocation | None = None
    kafka_env: tuple[tuple[str, str], ...] = ()
    """Extra ``MAXLAKE_*`` Kafka settings (security protocol, SASL user, TLS files)."""
    registry_poll_s: float = 5.0
    worker_args: tuple[str, ...] = ()
    """Extra ``maxlake worker`` arguments (for example ``--registry FILE``)."""
    pin_tenants: bool = True
    """Start workers with ``--tenant`` for each of ``tenants``; else they follow the registry."""

    @property
    def lake_root(self) -> Path:
        """Where the workers write a local lake (when ``lake`` is None)."""
        return self.work / "lake"

    @property
    def location(self) -> LakeLocation:
        """Where the workers write the lake: ``lake``, or the local folder ``lake_root``."""
        return self.lake or LakeLocation(str(self.lake_root))

    @property
    def group_id(self) -> str:
        """The consumer group every worker of this test joins."""
        return f"{self.name}-ingest"

    def settings(self) -> Settings:
        """The settings the workers see (built from the same values as :meth:`environ`)."""
        return Settings(
            bootstrap_servers=self.bootstrap,
            topic_prefix=self.name,
            topic_partitions=self.partitions,
            group_id=self.group_id,
            lake_root=self.location.root,
            lake_storage_options=dict(self.location.storage_options),
            batch_max_events=self.batch_max_events,
            batch_wait_s=self.batch_wait_s,
            spool_dir=self.work / "spool",
            **self._kafka_fields(),
        )

    def _kafka_fields(self) -> dict[str, Any]:
        return {k.removeprefix("MAXLAKE_").lower(): v for k, v in self.kafka_env}

    def environ(self, worker: str) -> dict[str, str]:
        """Process environment of one worker: ``MAXLAKE_*`` plus its own Faust data dir."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAXLAKE_")}
        env.update(
            {
                "MAXLAKE_BOOTSTRAP_SERVERS": self.bootstrap,
                "MAXLAKE_TOPIC_PREFIX": self.name,
                "MAXLAKE_GROUP_ID": self.group_id,
                "MAXLAKE_LAKE_ROOT": self.location.root,
                "MAXLAKE_LAKE_STORAGE_OPTIONS": json.dumps(dict(self.location.storage_options)),
                "MAXLAKE_BATCH_MAX_EVENTS": str(self.batch_max_events),
                "MAXLAKE_BATCH_WAIT_S": str(self.batch_wait_s),
                "MAXLAKE_FAUST_DATADIR": str(self.work / f"faust-{worker}"),
                "MAXLAKE_BROKER_SESSION_TIMEOUT_S": str(self.session_timeout_s),
                "MAXLAKE_INGEST_ENGINE": self.engine,
                "MAXLAKE_REGISTRY_POLL_S": str(self.registry_poll_s),
                "GX_ANALYTICS_ENABLED": "false",
                "PYTHONUNBUFFERED": "1",
                **dict(self.kafka_env),
            }
        )
        return env

    def topics(self) -> list[str]:
        """Every ingest topic of the test's tenants."""
        settings = self.settings()
        return [settings.topic_for(t, k) for t in self.tenants for k in KINDS]

    def create_topics(self) -> None:
        """Create the tenants' topics (``partitions`` each)."""
        ensure_topics(self.settings(), self.tenants)

    def offsets(self) -> list[PartitionOffsets]:
        """Start, end and committed offset of every partition for the test's group."""
        return group_offsets(self.settings(), self.topics())

    def committed(self) -> dict[tuple[str, int], int]:
        """The group's committed offsets, as :func:`check_accounting` takes them."""
        return {
            (p.topic, p.partition): p.committed for p in self.offsets() if p.committed is not None
        }

    def store(self) -> DeltaStore:
        """The test's lake."""
        return DeltaStore(self.location)

    def accounting(self) -> AccountingReport:
        """The invariant, checked against the group's committed offsets."""
        return check_accounting(self.store(), committed=self.committed())


class WorkerProcess:
    """``python -m maxlake.cli worker`` in its own process group; logs to a file."""

    def __init__(self, env: IngestEnv, name: str) -> None:
        self.env = env
        self.name = name
        self.log_path = env.work / f"worker-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> WorkerProcess:
        """Launch the worker (again, after a kill); returns immediately."""
        assert self.proc is None or self.proc.poll() is not None, "worker already running"
        cmd = [sys.executable, "-m", "maxlake.cli", "worker", "--loglevel", "info"]
        for tenant in self.env.tenants if self.env.pin_tenants else ():
            cmd += ["--tenant", tenant]
        cmd += self.env.worker_args
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} at {time.time():.3f} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                env=self.env.environ(self.name),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until the current start reports Faust's ``Worker: Ready`` (signals handled)."""
        self._wait_for(_READY, timeout_s, "not ready")

    def wait_assigned(self, timeout_s: float = 120.0) -> None:
        """Wait until the current start holds partitions (its engine logged an assignment).

        Faust's ``Ready`` comes before the worker joins the group (it builds its pipeline
        first, 10-25 s on a loaded machine): input sent between the two goes to the others.
        """
        self._wait_for(_ASSIGNED, timeout_s, "holds no partition")

    def _wait_for(self, pattern: re.Pattern[str], timeout_s: float, failure: str) -> None:
        marker = f"===== start {self.starts} "
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log_text()
            if pattern.search(text[text.rfind(marker) :]):
                return
            if not self.alive:
                raise AssertionError(f"worker {self.name} died:\n{self.log_tail()}")
            time.sleep(0.2)
        raise AssertionError(
            f"worker {self.name} {failure} after {timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def wait_until_ingested(self, timeout_s: float = 60.0) -> None:
        """Wait until the current start has written a batch with new offsets."""
        self._wait_for(_INGESTED, timeout_s, "wrote nothing new")

    def wait_for_log(self, text: str, timeout_s: float = 60.0) -> None:
        """Wait until the current start's log contains ``text``."""
        self._wait_for(re.compile(re.escape(text)), timeout_s, f"logged no {text!r}")

    @property
    def alive(self) -> bool:
        """Whether the worker process is running."""
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the worker's whole process group, no goodbye; waits until it is gone."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def terminate(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        if not self.alive:
            return None if self.proc is None else self.proc.returncode
        self._signal(signal.SIGTERM)
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the worker's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        """The whole log of every start."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.alive:
            self.kill9()


@contextlib.contextmanager
def workers(env: IngestEnv, *names: str) -> Iterator[list[WorkerProcess]]:
    """Started workers that are killed (process group) however the test ends."""
    procs = [WorkerProcess(env, n) for n in names]
    try:
        for proc in procs:
            proc.start()
        yield procs
    finally:
        for proc in procs:
            if proc.alive:
                proc.kill9()


def lag_summary(parts: Iterable[PartitionOffsets]) -> str:
    """One line per partition that still lags."""
    lines = [
        f"  {p.topic}[{p.partition}] end {p.end} committed {p.committed} lag {p.lag}"
        for p in parts
        if p.lag
    ]
    return "\n".join(lines) or "  (no lag)"


def wait_for_lag_zero(
    env: IngestEnv,
    procs: Sequence[WorkerProcess],
    *,
    produced: int,
    timeout_s: float = 120.0,
    require_alive: bool = True,
) -> list[PartitionOffsets]:
    """Wait until the group has committed every offset of its topics (``produced`` in all).

    Fails with the lagging partitions and the workers' log tails when ``timeout_s`` passes, or
    at once when a worker that should be running has died.
    """
    deadline = time.monotonic() + timeout_s
    parts: list[PartitionOffsets] = []
    while time.monotonic() < deadline:
        dead = [p for p in procs if not p.alive]
        if require_alive and dead:
            raise AssertionError(
                f"worker {dead[0].name} died (exit {dead[0].proc and dead[0].proc.returncode})"
                f" while draining:\n{dead[0].log_tail()}"
            )
        parts = env.offsets()
        end = sum(p.end for p in parts)
        if end >= produced and all(p.lag == 0 for p in parts):
            return parts
        time.sleep(0.5)
    logs = "\n".join(f"--- worker {p.name} ---\n{p.log_tail()}" for p in procs)
    raise AssertionError(
        f"group {env.group_id} still lags after {timeout_s:.0f} s "
        f"({sum(p.lag for p in parts)} of {produced} messages uncommitted):\n"
        f"{lag_summary(parts)}\n{logs}"
    )


def simulate(
    tenants: Sequence[str], *, seed: int, duration_s: float, bad_rate: float = 0.05
) -> list[SimEvent]:
    """The simulator's events of ``duration_s`` simulated seconds ending now (so none is stale)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=duration_s)
    sim = Simulator(load_registry(), seed=seed, start=start, tenants=tenants, bad_rate=bad_rate)
    return list(sim.events(duration_s))


def keyed_like_original(events: Sequence[SimEvent]) -> list[SimEvent]:
    """Resends keyed by the machine of the event they repeat, as a plant's producer keys them.

    The simulator sends a ``duplicate_resend`` with the key of the event it interrupts, which
    usually names another machine and lands on another partition.
    """
    keys: dict[bytes, bytes] = {}
    out: list[SimEvent] = []
    for event in events:
        if event.bad_class is None:
            keys[event.payload] = event.key
        elif event.bad_class == "duplicate_resend":
            out.append(
                SimEvent(
                    event.tenant, event.kind, keys[event.payload], event.payload, "duplicate_resend"
                )
            )
            continue
        out.append(event)
    return out


def produce(env: IngestEnv, events: Iterable[SimEvent]) -> int:
    """Send ``events`` to the test's topics, flushed; returns how many."""
    settings = env.settings()
    sent = 0
    with PlantProducer(settings, spool_dir=env.work / "spool", client_id=env.name) as producer:
        for event in events:
            producer.send_raw(event.topic(settings), event.payload, key=event.key)
            sent += 1
        producer.flush()
    return sent


class Stream(threading.Thread):
    """Produces ``events`` in chunks with pauses, so the worker always has fresh input.

    At each chunk number of ``held_at`` the stream waits for one :meth:`release`, so a test can
    be sure input still flows after each step it takes, however slow the machine is.
    """

    def __init__(
        self,
        env: IngestEnv,
        events: list[SimEvent],
        chunks: int,
        pause_s: float,
        *,
        held_at: Sequence[int] = (),
    ):
        super().__init__(daemon=True)
        self.env, self.events, self.chunks, self.pause_s = env, events, chunks, pause_s
        self.held_at = set(held_at)
        self._releases = threading.Semaphore(0)
        self.sent = 0
        self.error: BaseException | None = None

    def release(self) -> None:
        """Let the stream go on past its next hold."""
        self._releases.release()

    def run(self) -> None:
        size = -(-len(self.events) // self.chunks)
        try:
            for number, start in enumerate(range(0, len(self.events), size)):
                if number in self.held_at:
                    self._wait_for_release()
                self.sent += produce(self.env, self.events[start : start + size])
                time.sleep(self.pause_s)
        except BaseException as exc:  # re-raised by the test thread
            self.error = exc

    def _wait_for_release(self) -> None:
        if not self._releases.acquire(timeout=600):
            raise AssertionError("the stream was never released")


def committed_total(env: IngestEnv) -> int:
    """Offsets the group has committed, over every partition of the test's topics."""
    return sum((p.committed or p.start) - p.start for p in env.offsets())


def wait_for_new_commits(
    env: IngestEnv, proc: WorkerProcess, *, beyond: int, timeout_s: float = 90.0
) -> int:
    """Wait until the group committed more than ``beyond`` offsets; returns the new total."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = committed_total(env)
        if done > beyond:
            return done
        if not proc.alive:
            raise AssertionError(f"worker {proc.name} died:\n{proc.log_tail()}")
        time.sleep(0.1)
    raise AssertionError(f"no commit beyond {beyond} after {timeout_s:.0f} s:\n{proc.log_tail()}")


@dataclass
class Expected:
    """What the lake must hold for one kind, from the simulator's labels."""

    silver_event_ids: Counter[str] = field(default_factory=Counter)
    silver_rows: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    duplicate_event_ids: Counter[str] = field(default_factory=Counter)
    consumed: int = 0


def event_id_of(payload: bytes) -> str:
    """The ``event_id`` of a well-formed payload."""
    return str(orjson.loads(payload)["event_id"])


def rows_of(kind: str, payload: bytes) -> int:
    """Silver rows one good message becomes (one per reading for telemetry)."""
    if kind != "telemetry":
        return 1
    event = orjson.loads(payload)
    return len(event["readings"]) if "readings" in event else 1


def expected_outcome(events: Iterable[SimEvent]) -> dict[str, Expected]:
    """Per kind: good events in silver once, bad ones quarantined by class, resends counted."""
    out = {kind: Expected() for kind in KINDS}
    for event in events:
        exp = out[event.kind]
        exp.consumed += 1
        if event.bad_class is None:
            exp.silver_event_ids[event_id_of(event.payload)] += 1
            exp.silver_rows += rows_of(event.kind, event.payload)
        elif event.bad_class == "duplicate_resend":
            exp.duplicate_event_ids[event_id_of(event.payload)] += 1
        else:
            exp.quarantined[event.bad_class] += 1
    return out


def read_table(env: IngestEnv, name: str, columns: list[str]) -> pl.DataFrame:
    """Columns of a lake table at its latest version (empty frame when it does not exist)."""
    try:
        table = DeltaTable(
            env.location.uri(name), storage_options=dict(env.location.storage_options)
        )
    except TableNotFoundError:
        return pl.DataFrame({c: [] for c in columns})
    frame = pl.from_arrow(table.to_pyarrow_dataset().to_table(columns=columns))
    assert isinstance(frame, pl.DataFrame)
    return frame


def silver_event_ids(env: IngestEnv, kind: str) -> Counter[str]:
    """How many distinct offsets each ``event_id`` occupies in ``silver/<kind>``."""
    frame = read_table(env, f"silver/{kind}", ["event_id", "kafka_partition", "kafka_offset"])
    distinct = frame.unique(["event_id", "kafka_partition", "kafka_offset"])
    return Counter(distinct["event_id"].to_list())


def assert_invariant(env: IngestEnv) -> AccountingReport:
    """The accounting invariant holds against the committed offsets, and no event is twice."""
    report = env.accounting()
    assert report.ok, "accounting invariant broken:\n" + "\n".join(
        str(v) for v in report.violations[:20]
    )
    for kind in KINDS:
        twice = {e: n for e, n in silver_event_ids(env, kind).items() if n > 1}
        assert not twice, f"{kind}: event ids in silver more than once: {list(twice)[:10]}"
    return report


def run_cli(
    env: IngestEnv, *args: str, timeout_s: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """``python -m maxlake.cli <args>`` with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "maxlake.cli", *args],
        env=env.environ("cli"),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def assert_expected(
    env: IngestEnv, events: Sequence[SimEvent], *, kinds: Sequence[str] = KINDS
) -> None:
    """The lake holds exactly what the simulator's labels say: good events once in silver with
    all their rows, bad ones quarantined, resends counted as duplicates, every offset in a run."""
    report = env.accounting()
    expected = expected_outcome(events)
    for kind in kinds:
        exp = expected[kind]
        assert silver_event_ids(env, kind) == exp.silver_event_ids, kind
        assert report.silver_rows[kind] == exp.silver_rows, kind
        assert report.quarantined[kind] == exp.quarantined.total(), kind
        assert report.duplicates[kind] == exp.duplicate_event_ids.total(), kind
        assert report.runs_consumed[kind] == exp.consumed, kind
        dups = read_table(env, "ops/duplicates", ["kind", "event_id"]).filter(
            pl.col("kind") == kind
        )
        assert Counter(dups["event_id"].to_list()) == exp.duplicate_event_ids, kind


def assert_each_offset_once(env: IngestEnv) -> None:
    """Every offset of the test's topics is in exactly one lake table, once.

    Reads Kafka's offsets with kafka-python and the Delta tables with deltalake, nothing of
    maxlake, so the check does not depend on the code under test.
    """
    consumer = KafkaConsumer(bootstrap_servers=env.bootstrap)
    try:
        parts = [
            TopicPartition(topic, p)
            for topic in env.topics()
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        starts = consumer.beginning_offsets(parts)
        ends = consumer.end_offsets(parts)
    finally:
        consumer.close()
    seen: Counter[tuple[str, int, int]] = Counter()
    names = [f"{group}/{kind}" for kind in KINDS for group in ("silver", "quarantine")]
    for name in [*names, "ops/duplicates"]:
        try:
            table = DeltaTable(
                env.location.uri(name), storage_options=dict(env.location.storage_options)
            )
        except TableNotFoundError:
            continue
        data = table.to_pyarrow_table(columns=["kafka_topic", "kafka_partition", "kafka_offset"])
        rows = data.group_by(["kafka_topic", "kafka_partition", "kafka_offset"]).aggregate([])
        for topic, partition, offset in zip(
            rows["kafka_topic"].to_pylist(),
            rows["kafka_partition"].to_pylist(),
            rows["kafka_offset"].to_pylist(),
            strict=True,
        ):
            seen[(topic, partition, offset)] += 1
    twice = [k for k, n in seen.items() if n > 1]
    assert not twice, f"offsets in more than one table: {twice[:10]}"
    expected = {
        (tp.topic, tp.partition, offset) for tp in parts for offset in range(starts[tp], ends[tp])
    }
    assert set(seen) == expected, (
        f"{len(expected - set(seen))} offsets missing from the lake, "
        f"{len(set(seen) - expected)} not produced"
    )


def workers_in_runs(env: IngestEnv) -> set[str]:
    """The workers that recorded a batch with consumed offsets in ``ops/validation_runs``."""
    runs = DeltaTable(
        env.location.uri("ops/validation_runs"), storage_options=dict(env.location.storage_options)
    ).to_pyarrow_table(columns=["worker", "consumed"])
    busy = runs.filter(pc.greater(runs["consumed"], 0))
    return set(busy["worker"].to_pylist())
