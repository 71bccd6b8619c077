"""Cost of the content hash that tells a resend from an ``event_id`` conflict.

Run ``python bench/bench_content_hash.py [--batches N] [--batch-size N]``. Simulated telemetry
of one tenant (fresh event ids per batch) goes through :meth:`IngestPipeline.prepare` (decode,
GX validation, dedupe; no lake write) in two pipelines that take turns on the same batches (so
load from other jobs hits them alike): one as shipped, one with the per-message content hash
replaced by zeros (the dedupe of before: ids only). Prints the hash alone in µs/event, both
pipelines in µs/event and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import numpy as np
import orjson

from lake import BatchWriter, DeltaStore
from maxlake.settings import Settings
from quality import ValidationGateway
from schemas import load_registry
from streams.content_hash import content_hashes, kept_digests
from streams.ingest import IngestPipeline, RawMessage
from streams.simulator import Simulator

TENANT = "ironbridge-steel"
TOPIC = f"maxlake.{TENANT}.telemetry"


def _payloads(n: int) -> list[bytes]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    sim = Simulator(load_registry(), seed=7, start=start, tenants=[TENANT], bad_rate=0.0)
    out: list[bytes] = []
    for event in sim.events(7200):
        if event.kind == "telemetry":
            out.append(event.payload)
            if len(out) == n:
                return out
    raise SystemExit(f"only {len(out)} simulated telemetry events")


def _batch(payloads: Sequence[bytes], number: int, first: int) -> list[RawMessage]:
    out = []
    for i, payload in enumerate(payloads):
        event = orjson.loads(payload)
        event["event_id"] = f"b{number}-{i}"
        out.append(RawMessage(TOPIC, 0, first + i, None, b"k", orjson.dumps(event)))
    return out


def _no_hash(values: Sequence[bytes | None], keep: np.ndarray) -> np.ndarray:
    return np.zeros(len(values), np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    payloads = _payloads(args.batch_size)
    batches = [_batch(payloads, b, b * args.batch_size) for b in range(args.batches + 1)]
    values = [m.value for m in batches[0] if m.value is not None]
    hash_us = []
    for _ in range(5):
        t0 = time.perf_counter()
        content_hashes(values)
        hash_us.append((time.perf_counter() - t0) / len(values) * 1e6)

    gateway = ValidationGateway(load_registry())
    with tempfile.TemporaryDirectory() as tmp:
        runs: dict[str, list[float]] = {"with hash": [], "ids only": []}
        pipelines = {
            name: IngestPipeline(
                Settings(lake_root=str(Path(tmp) / name.replace(" ", "-"))),
                gateway,
                BatchWriter(DeltaStore(Path(tmp) / name.replace(" ", "-"))),
            )
            for name in runs
        }
        for number, batch in enumerate(batches):
            # Which pipeline goes first alternates: the second one of a turn runs warmer.
            turn = list(pipelines.items())
            for name, pipeline in turn if number % 2 else turn[::-1]:
                hashing = kept_digests if name == "with hash" else _no_hash
                with patch("streams.ingest.kept_digests", hashing):
                    t0 = time.perf_counter()
                    pipeline.prepare("telemetry", batch)
                    elapsed = time.perf_counter() - t0
                if number:  # the first batch warms GX and the caches
                    runs[name].append(elapsed / len(batch) * 1e6)
    load = os.getloadavg()[0]
    print(f"load {load:.1f}, {args.batches} batches of {args.batch_size:,} telemetry events")
    print(f"content hash alone: {statistics.median(hash_us):.2f} µs/event (median of 5)")
    medians = {name: statistics.median(times) for name, times in runs.items()}
    for name, median in medians.items():
        print(f"prepare, {name:>9}: {median:.2f} µs/event (median of {args.batches})")
    print(f"ratio with hash / ids only: {medians['with hash'] / medians['ids only']:.3f}")


if __name__ == "__main__":
    main()
