"""Ingest throughput and latency benchmark (run on demand, not part of the test suite).

Throughput: preload N telemetry events (default 1,000,000) into a 4-partition topic of a throwaway
local broker, then time (a) one `maxlake worker` draining them into Delta with validation, and
(b) in the same run, a baseline: a plain kafka-python loop that decodes the same events with
orjson and appends them to a Delta table per 20,000 events, without validation. Reports events/s
of both, their ratio, and the worker's time split (decode, validation, Delta writes, the rest =
Kafka + Faust) from ``ops/validation_runs``.

Latency (``--latency``): a steady stream at ``--rate`` events/s for ``--seconds`` while a worker
ingests; p50/p99 of (batch commit time - producer send time) per event.

    .venv/bin/python bench/bench_ingest.py --events 1000000
    .venv/bin/python bench/bench_ingest.py --latency --rate 5000 --seconds 60
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
from deltalake import write_deltalake
from kafka import KafkaConsumer, KafkaProducer

from infra.broker import LocalBroker, free_port
from lake import RUNS, DeltaStore, silver_table
from maxlake.settings import Settings
from schemas import load_registry
from streams.offsets import group_offsets
from streams.simulator import Simulator
from streams.topics import ensure_topics

TENANT = "northwind-auto"


def _templates(count: int, bad_rate: float = 0.0) -> list[tuple[bytes, bytes, bytes]]:
    """(key, payload, event_id) of real simulator telemetry events; with ``bad_rate``, that
    share are the simulator's bad messages (event_id b"" when the payload has none)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=3600)
    sim = Simulator(load_registry(), seed=11, bad_rate=bad_rate, tenants=[TENANT], start=start)
    out: list[tuple[bytes, bytes, bytes]] = []
    for event in sim.events(duration_s=3600):
        if event.kind == "telemetry":
            try:
                eid = str(orjson.loads(event.payload)["event_id"]).encode()
            except (orjson.JSONDecodeError, KeyError, TypeError):
                eid = b""
            out.append((event.key, event.payload, eid))
            if len(out) == count:
                break
    return out


def _preload(settings: Settings, topic: str, n: int, bad_rate: float = 0.0) -> float:
    templates = _templates(2000, bad_rate)
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=20,
        batch_size=1 << 20,
        compression_type="lz4",  # what PlantProducer sends
    )
    started = time.perf_counter()
    for i in range(n):
        key, payload, eid = templates[i % len(templates)]
        if eid:
            fresh = uuid.uuid4().hex.encode()[: len(eid)].ljust(len(eid), b"0")
            payload = payload.replace(eid, fresh, 1)
        producer.send(topic, key=key, value=payload)
        if i % 100_000 == 0 and i:
            print(f"  preloaded {i:,} events", flush=True)
    producer.flush()
    producer.close()
    return time.perf_counter() - started


WORKER_MALLOC_CONF = ""
"""``_RJEM_MALLOC_CONF`` of the workers (``--worker-malloc-conf``). Empty: none, as for a worker
started from a shell, so that the worker chooses its jemalloc options as in production. The
bench process itself imports Polars, which writes its own decay times into the environment;
workers inherited them until 2026-12-02 (docs/BENCHMARKS.md, issue 20, twelfth pass)."""


def _spawn_worker(
    env: dict[str, str],
    *,
    stderr: Any,
    src: Path | None = None,
    python: str | None = None,
    loglevel: str = "warn",
) -> subprocess.Popen[bytes]:
    """One telemetry ``maxlake worker`` in its own process group (from the source checkout
    ``src`` when given, e.g. the previous commit for a same-run before/after comparison; with
    the interpreter ``python`` when given, e.g. that checkout's own ``.venv/bin/python`` and so
    its own build of ``maxlake_native``)."""
    env = {key: value for key, value in env.items() if key != "_RJEM_MALLOC_CONF"}
    if WORKER_MALLOC_CONF:
        env["_RJEM_MALLOC_CONF"] = WORKER_MALLOC_CONF
    if src is not None:
        env = {**env, "PYTHONPATH": str(src)}
    return subprocess.Popen(
        [
            python or sys.executable,
            "-P",
            "-m",
            "maxlake.cli",
            "worker",
            "--kind",
            "telemetry",
            "--tenant",
            TENANT,
            "--loglevel",
            loglevel,
        ],
        env=env,
        cwd=src,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def _wait_lag_zero(
    settings: Settings, topic: str, group: str, timeout_s: float, on_poll: Any = None
) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        parts = group_offsets(settings, [topic], group_id=group)
        lag = sum(p.lag for p in parts)
        if on_poll is not None:
            on_poll(lag)
        if lag == 0:
            return time.perf_counter()
        time.sleep(0.5 if on_poll is None else 0.2)
    raise SystemExit(f"worker did not drain within {timeout_s:.0f} s")


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_minflt(pid: int) -> int:
    """Minor page faults of process ``pid`` (all its threads) so far: pages the kernel mapped
    (and zeroed) on first touch, e.g. memory handed back after one batch and touched by the next."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def _proc_peak_mib(pid: int, field: str = "VmHWM") -> float:
    """Peak resident memory (VmHWM; ``field="VmRSS"``: resident now) of process ``pid``, MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


class _Steady:
    """The worker's CPU between its first commit and the end of the drain (start-up excluded):
    at each lag poll, the first lag below the preloaded total marks the start."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start: tuple[int, float, int] | None = None
        self.cpu_s = 0.0
        self.minflt = 0
        self.events = 0
        self.peak_mib = 0.0
        self.first_commit_mib = 0.0
        self.end_mib = 0.0
        self._initial: int | None = None

    def __call__(self, lag: int) -> None:
        cpu = _proc_cpu_s(self.pid)
        minflt = _proc_minflt(self.pid)
        self.peak_mib = _proc_peak_mib(self.pid)
        if self._initial is None:
            self._initial = lag
        elif self.start is None and lag < self._initial:
            self.start = (lag, cpu, minflt)
            self.first_commit_mib = _proc_peak_mib(self.pid, "VmRSS")
        if self.start is not None and lag == 0:
            self.events, self.cpu_s = self.start[0], cpu - self.start[1]
            self.minflt = minflt - self.start[2]
            self.end_mib = _proc_peak_mib(self.pid, "VmRSS")


def _run_worker(
    settings: Settings,
    env: dict[str, str],
    topic: str,
    timeout_s: float,
    src: Path | None = None,
    python: str | None = None,
) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = before.ru_utime + before.ru_stime
    t0 = time.perf_counter()
    worker = _spawn_worker(
        env,
        stderr=open(Path(env["MAXLAKE_LAKE_ROOT"]).with_suffix(".worker.log"), "wb"),
        src=src,
        python=python,
    )
    steady = _Steady(worker.pid)
    try:
        t1 = _wait_lag_zero(settings, topic, env["MAXLAKE_GROUP_ID"], timeout_s, steady)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    # ru_maxrss of children is the largest of any waited-for child so far: workers run one
    # after another, the bigger figure wins; reported per engine as an upper bound.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mib = usage.ru_maxrss / 1024
    cpu_s = usage.ru_utime + usage.ru_stime - cpu_before
    store = DeltaStore(env["MAXLAKE_LAKE_ROOT"])
    runs = store.read_frame(RUNS)
    assert runs is not None
    first = runs["started_at"].min()
    last = runs["finished_at"].max()
    drain_s = (last - first).total_seconds()  # type: ignore[operator,union-attr]
    return {
        "wall_s": t1 - t0,
        "peak_mib": peak_mib,
        "worker_peak_mib": steady.peak_mib,
        "first_commit_mib": steady.first_commit_mib,
        "end_mib": steady.end_mib,
        "steady_events": float(steady.events),
        "steady_cpu_s": steady.cpu_s,
        "steady_minflt": float(steady.minflt),
        "cpu_s": cpu_s,
        "drain_s": drain_s,
        "consumed": float(runs["consumed"].sum()),
        "batches": float(runs.height),
        "decode_s": float(runs["decode_ms"].sum()) / 1000,
        "validate_s": float(runs["validate_ms"].sum()) / 1000,
        "write_s": float(runs["write_ms"].sum()) / 1000,
    }


def _baseline(settings: Settings, topic: str, n: int, lake: Path) -> float:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"baseline-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=20000,
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=16 << 20,
    )
    seen = 0
    started = time.perf_counter()
    rows: list[dict[str, object]] = []
    while seen < n:
        polled = consumer.poll(timeout_ms=1000, max_records=20000)
        for records in polled.values():
            for rec in records:
                seen += 1
                try:
                    rows.extend(_naive_rows(rec))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                    continue  # --bad-rate: the naive loop skips what it cannot read
        if len(rows) >= 20000 or (seen >= n and rows):
            write_deltalake(str(lake), pa.Table.from_pylist(rows), mode="append")
            rows = []
    consumer.close()
    return time.perf_counter() - started


def _naive_rows(rec: Any) -> list[dict[str, object]]:
    """The baseline's rows of one record: one per reading, no checks."""
    doc = orjson.loads(rec.value)
    readings = doc.get("readings") or [doc.get("reading")]
    return [
        {
            "event_id": doc["event_id"],
            "tenant": doc["tenant"],
            "plant": doc["plant"],
            "machine": doc["machine"],
            "event_time": doc["event_time"],
            "tag": reading["tag"],
            "value": float(reading["value"]),
            "offset": rec.offset,
            "partition": rec.partition,
        }
        for reading in readings
    ]


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        "?",
    )
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50_000, help="MAXLAKE_BATCH_MAX_EVENTS")
    parser.add_argument("--wait", type=float, default=1.0, help="MAXLAKE_BATCH_WAIT_S")
    parser.add_argument("--engines", default="stream,batch", help="comma-separated engines to run")
    parser.add_argument(
        "--bad-rate",
        type=float,
        default=0.0,
        help="share of the simulator's bad messages in the preloaded events (default 0: clean)",
    )
    parser.add_argument(
        "--compare-src",
        type=Path,
        default=None,
        help="also run each engine's worker from this source checkout (e.g. a worktree of the "
        "previous commit), interleaved, for a same-run before/after ratio",
    )
    parser.add_argument(
        "--compare-python",
        default=None,
        help="run the --compare-src worker with this interpreter (e.g. that checkout's own "
        ".venv/bin/python, so its own build of maxlake_native is compared too)",
    )
    parser.add_argument(
        "--compare-batch",
        type=int,
        default=None,
        help="also run each engine's worker with this MAXLAKE_BATCH_MAX_EVENTS, interleaved, for "
        "a same-run comparison of batch sizes (throughput against peak memory)",
    )
    parser.add_argument(
        "--compare-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="also run each engine's worker with these environment variables (repeatable; e.g. "
        "MAXLAKE_MEMORY_MMAP_THRESHOLD_KIB=0), interleaved, for a same-run comparison of "
        "settings; labelled '-env'",
    )
    parser.add_argument(
        "--worker-malloc-conf",
        default="",
        help="_RJEM_MALLOC_CONF of the workers (default: none, as a worker started from a "
        "shell; the bench's own, written by Polars, is not passed on)",
    )
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    global WORKER_MALLOC_CONF  # noqa: PLW0603 - one setting of every worker this run spawns
    WORKER_MALLOC_CONF = args.worker_malloc_conf
    extra_env = _named_values(args.compare_env)

    work = Path(tempfile.mkdtemp(prefix="maxlake-bench-"))
    broker = LocalBroker(
        work / "kafka", port=free_port(), controller_port=free_port(), heap_mb=1024
    )
    print(f"machine: {_machine()}")
    broker.start(timeout_s=120)
    try:
        env = {
            **os.environ,
            "MAXLAKE_BOOTSTRAP_SERVERS": broker.bootstrap,
            "MAXLAKE_TOPIC_PREFIX": "bench",
            "MAXLAKE_TOPIC_PARTITIONS": str(args.partitions),
            "MAXLAKE_LAKE_ROOT": str(work / "lake"),
            "MAXLAKE_GROUP_ID": "bench-ingest",
            "MAXLAKE_INGEST_ENGINE": "batch",
            "MAXLAKE_BATCH_MAX_EVENTS": str(args.batch),
            "MAXLAKE_BATCH_WAIT_S": str(args.wait),
            "MAXLAKE_FAUST_DATADIR": str(work / "faust"),
            "GX_ANALYTICS_ENABLED": "false",
        }
        os.environ.update(env)
        settings = Settings()
        ensure_topics(settings, [TENANT], ["telemetry"])
        topic = settings.topic_for(TENANT, "telemetry")
        if args.latency:
            engine = args.engines.split(",")[0]
            _latency(args, settings, {**env, "MAXLAKE_INGEST_ENGINE": engine}, topic)
            return
        print(f"preloading {args.events:,} telemetry events into {args.partitions} partitions")
        preload_s = _preload(settings, topic, args.events, args.bad_rate)
        print(f"  preload: {args.events / preload_s:,.0f} events/s")
        results: dict[str, dict[str, float]] = {}
        sources: list[tuple[str, Path | None, int]] = [("", None, args.batch)]
        if args.compare_src is not None:
            sources = [("-before", args.compare_src, args.batch), *sources]
        if args.compare_batch is not None:
            sources.append((f"-b{args.compare_batch}", None, args.compare_batch))
        if extra_env:
            sources.insert(0, ("-env", None, args.batch))
            print(f"-env workers: {', '.join(f'{k}={v}' for k, v in extra_env.items())}")
        for engine in args.engines.split(","):
            for suffix, src, batch in sources:
                label = f"{engine}{suffix}"
                print(f"worker ({label}) draining: decode + GX validation + Delta, exactly once")
                engine_env = {
                    **env,
                    "MAXLAKE_INGEST_ENGINE": engine,
                    "MAXLAKE_GROUP_ID": f"bench-{label}",
                    "MAXLAKE_LAKE_ROOT": str(work / f"lake-{label}"),
                    "MAXLAKE_BATCH_MAX_EVENTS": str(batch),
                    **(extra_env if suffix == "-env" else {}),
                }
                python = args.compare_python if suffix == "-before" else None
                results[label] = _run_worker(settings, engine_env, topic, 3600, src, python)
        print("baseline: kafka-python + orjson + Delta append, no validation")
        base_s = _baseline(settings, topic, args.events, work / "baseline")
        base_rate = args.events / base_s
        print()
        print(f"machine: {_machine()}")
        print(
            f"events                 {args.events:,}, batch max {args.batch:,}, wait {args.wait} s"
        )
        print(f"baseline               {base_rate:,.0f} events/s ({base_s:.1f} s)")
        for engine, w in results.items():
            rate = args.events / w["drain_s"]
            other = w["drain_s"] - w["decode_s"] - w["validate_s"] - w["write_s"]
            print(
                f"worker ({engine:<13}) {rate:,.0f} events/s, {rate / base_rate:.2f}x baseline "
                f"({int(w['batches'])} batches, drain {w['drain_s']:.1f} s, wall incl. start-up {w['wall_s']:.1f} s, peak RSS <= {w['peak_mib']:,.0f} MiB)"
            )
            print(
                f"  worker CPU   {w['cpu_s']:7.1f} s  {w['cpu_s'] / args.events * 1e6:.1f} µs/event "
                "(all threads, start-up included)"
            )
            if w["steady_events"]:
                print(
                    f"  steady CPU   {w['steady_cpu_s']:7.1f} s  "
                    f"{w['steady_cpu_s'] / w['steady_events'] * 1e6:.1f} µs/event over the "
                    f"{int(w['steady_events']):,} events after the first commit; worker peak "
                    f"RSS {w['worker_peak_mib']:,.0f} MiB (VmHWM); RSS at the first commit "
                    f"{w['first_commit_mib']:,.0f} MiB, at lag 0 {w['end_mib']:,.0f} MiB"
                )
                print(
                    f"  page faults  {w['steady_minflt']:,.0f} minor over the same events, "
                    f"{w['steady_minflt'] / w['steady_events']:.2f} per event"
                )
            for name in ("decode", "validate", "write"):
                print(f"  {name:<12} {w[name + '_s']:7.1f} s  {w[name + '_s'] / w['drain_s']:6.1%}")
            print(
                f"  {'the rest':<12} {other:7.1f} s  {other / w['drain_s']:6.1%}  (Kafka, engine; writes overlap the next batch in the batch engine)"
            )
    finally:
        broker.stop()


def _named_values(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` arguments as a mapping; a malformed one stops the run naming it."""
    named: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--compare-env {pair!r}: expected NAME=VALUE")
        named[name] = value
    return named


def _latency(args: argparse.Namespace, settings: Settings, env: dict[str, str], topic: str) -> None:
    worker = _spawn_worker(env, stderr=subprocess.DEVNULL)
    time.sleep(15)
    templates = _templates(2000)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5)
    total = int(args.rate * args.seconds)
    started = time.perf_counter()
    for i in range(total):
        target = started + i / args.rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        key, payload, _ = templates[i % len(templates)]
        doc = orjson.loads(payload)
        doc["event_id"] = uuid.uuid4().hex
        doc["sent_time"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        producer.send(topic, key=key, value=orjson.dumps(doc))
    producer.flush()
    _wait_lag_zero(settings, topic, env["MAXLAKE_GROUP_ID"], 600)
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(timeout=60)
    store = DeltaStore(env["MAXLAKE_LAKE_ROOT"])
    silver = store.read_frame(
        silver_table("telemetry"), columns=["kafka_partition", "kafka_offset", "sent_time"]
    )
    runs = store.read_frame(RUNS, columns=["finished_at", "offsets"])
    assert silver is not None and runs is not None
    spans = runs.explode("offsets").unnest("offsets")
    joined = (
        silver.unique(["kafka_partition", "kafka_offset"])
        .join(spans, left_on="kafka_partition", right_on="partition")
        .filter(
            (pl.col("kafka_offset") >= pl.col("first_offset"))
            & (pl.col("kafka_offset") <= pl.col("last_offset"))
        )
    )
    lat = (joined["finished_at"] - joined["sent_time"]).dt.total_milliseconds()
    print(f"engine: {env['MAXLAKE_INGEST_ENGINE']}")
    print(
        f"latency at {args.rate:,.0f} events/s for {args.seconds:.0f} s, batch wait {args.wait} s, {joined.height:,} events:"
    )
    print(
        f"  p50 {float(lat.quantile(0.5) or 0):,.0f} ms  p99 {float(lat.quantile(0.99) or 0):,.0f} ms  "
        f"max {float(lat.max() or 0):,.0f} ms"  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
