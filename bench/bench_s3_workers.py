"""Scale-out benchmark: 1, 2 and 3 workers writing one lake on a local S3 server, against a local disk.

Preloads N telemetry events (default 200,000) into a 12-partition topic of a throwaway local
broker, then, in one run and on the same events, drains them with:

* 1 worker into a lake on the local disk (the baseline),
* 1, 2 and 3 workers (one consumer group) into a lake on a local S3 server (moto, ``infra/s3.py``;
  conditional writes on, requests served one at a time).

Each scenario gets a fresh consumer group and a fresh lake. events/s = events / (last batch end -
first batch start) from ``ops/validation_runs``; the per-worker cost of the object store is the
Delta write time per event (``write_ms``, summed over each worker's batches) against the local
disk's. moto is a Python server on the same machine: its figures bound a real object store from
below (a real S3 adds network latency but serves requests in parallel).

    .venv/bin/python -m bench.bench_s3_workers --events 200000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from bench.bench_ingest import TENANT, _machine, _preload, _spawn_worker, _wait_lag_zero
from infra.broker import LocalBroker, free_port
from infra.s3 import LocalS3
from lake import RUNS, DeltaStore, LakeLocation
from maxlake.processes import stop_process
from maxlake.settings import Settings
from streams.topics import ensure_topics

_ASSIGNED = "partition(s) assigned"
"""The batch engine's log line on each assignment (RELIABILITY.md)."""


def _scenario(
    settings: Settings,
    env: dict[str, str],
    topic: str,
    location: LakeLocation,
    workers: int,
    timeout_s: float,
) -> dict[str, float]:
    env = {
        **env,
        "MAXLAKE_LAKE_ROOT": location.root,
        "MAXLAKE_LAKE_STORAGE_OPTIONS": json.dumps(dict(location.storage_options)),
    }
    logs = Path(env["MAXLAKE_FAUST_DATADIR"]).parent
    procs = []
    log_paths = [logs / f"{env['MAXLAKE_GROUP_ID']}-{i}.log" for i in range(workers)]
    assigned_at: dict[int, datetime] = {}

    def note_assignments(lag: int) -> None:
        del lag
        for i, path in enumerate(log_paths):
            if i not in assigned_at and _ASSIGNED in path.read_text(errors="replace"):
                assigned_at[i] = datetime.now(UTC)

    for i in range(workers):
        worker_env = {**env, "MAXLAKE_FAUST_DATADIR": str(logs / f"faust-{time.time_ns()}-{i}")}
        log = open(log_paths[i], "wb")
        procs.append(_spawn_worker(worker_env, stderr=log, loglevel="info"))
    try:
        _wait_lag_zero(settings, topic, env["MAXLAKE_GROUP_ID"], timeout_s, note_assignments)
    finally:
        for proc in procs:
            stop_process(proc, timeout_s=120, group=True)
    runs = DeltaStore(location).read_frame(RUNS)
    assert runs is not None
    drain_s = (runs["finished_at"].max() - runs["started_at"].min()).total_seconds()  # type: ignore[operator,union-attr]
    per_worker = runs.group_by("worker").agg(pl.col("consumed").sum(), pl.col("write_ms").sum())
    joined = max(assigned_at.values()) if len(assigned_at) == workers else None
    after = runs.filter(pl.col("started_at") >= joined) if joined is not None else runs.clear()
    after_s = (
        (after["finished_at"].max() - joined).total_seconds()  # type: ignore[operator,union-attr]
        if after.height
        else 0.0
    )
    return {
        "drain_s": drain_s,
        "after_consumed": float(after["consumed"].sum()) if after.height else 0.0,
        "after_s": after_s,
        "consumed": float(runs["consumed"].sum()),
        "batches": float(runs.height),
        "write_s": float(runs["write_ms"].sum()) / 1000,
        "writers": float(per_worker.filter(pl.col("consumed") > 0).height),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--batch", type=int, default=20_000, help="MAXLAKE_BATCH_MAX_EVENTS")
    parser.add_argument("--workers", default="1,2,3", help="worker counts on the S3 lake")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="maxlake-bench-s3-"))
    broker = LocalBroker(work / "kafka", port=free_port(), controller_port=free_port(), heap_mb=768)
    print(f"machine: {_machine()}")
    broker.start(timeout_s=120)
    s3 = LocalS3().start()
    try:
        env = {
            **os.environ,
            "MAXLAKE_BOOTSTRAP_SERVERS": broker.bootstrap,
            "MAXLAKE_TOPIC_PREFIX": "bench",
            "MAXLAKE_TOPIC_PARTITIONS": str(args.partitions),
            "MAXLAKE_INGEST_ENGINE": "batch",
            "MAXLAKE_BATCH_MAX_EVENTS": str(args.batch),
            "MAXLAKE_BATCH_WAIT_S": "1.0",
            "MAXLAKE_BROKER_SESSION_TIMEOUT_S": "30",
            "MAXLAKE_FAUST_DATADIR": str(work / "faust"),
            "GX_ANALYTICS_ENABLED": "false",
        }
        os.environ.update(env)
        settings = Settings()
        ensure_topics(settings, [TENANT], ["telemetry"])
        topic = settings.topic_for(TENANT, "telemetry")
        print(f"preloading {args.events:,} telemetry events into {args.partitions} partitions")
        _preload(settings, topic, args.events)
        scenarios = [("local disk", 1, LakeLocation(str(work / "lake-local")))]
        for n in (int(w) for w in args.workers.split(",")):
            bucket = s3.create_bucket(f"bench-{n}-workers")
            scenarios.append(("S3 (moto)", n, LakeLocation(f"{bucket}/lake", s3.storage_options())))
        results = []
        for label, n, location in scenarios:
            print(f"{n} worker(s), lake on {label}: draining", flush=True)
            group = f"bench-{label.split()[0].lower()}-{n}"
            result = _scenario(
                settings, {**env, "MAXLAKE_GROUP_ID": group}, topic, location, n, timeout_s=3600
            )
            results.append((label, n, result))
        print()
        print(f"machine: {_machine()}")
        print(f"events {args.events:,}, {args.partitions} partitions, batch max {args.batch:,}")
        base = results[0][2]
        base_rate = args.events / base["drain_s"]
        base_write = base["write_s"] / args.events * 1e6
        for label, n, r in results:
            rate = args.events / r["drain_s"]
            write_us = r["write_s"] / args.events * 1e6
            print(
                f"{n} worker(s) {label:<11} {rate:9,.0f} events/s  {rate / base_rate:5.2f}x local  "
                f"{rate / n:8,.0f} events/s per worker  Delta write {write_us:6.1f} µs/event "
                f"({write_us / base_write:4.1f}x local)  {int(r['batches'])} batches, "
                f"{int(r['writers'])} workers wrote, drain {r['drain_s']:.1f} s"
            )
            if r["after_s"] > 0:
                steady = r["after_consumed"] / r["after_s"]
                print(
                    f"  after every worker held partitions: {steady:9,.0f} events/s "
                    f"({r['after_consumed'] / args.events:.0%} of the events, "
                    f"{r['after_s']:.1f} s)"
                )
            else:
                print("  every batch started before the last worker held partitions")
            if r["consumed"] != args.events:
                print(f"  !! consumed {r['consumed']:,.0f} of {args.events:,}", file=sys.stderr)
    finally:
        s3.stop()
        broker.stop()


if __name__ == "__main__":
    main()
