"""The decoder's batch JSON parse: the native parser against the Arrow path, in one process.

Run ``flock /work/bench.lock python bench/bench_parse.py [--rounds 11] [--events 50000]``. It
builds batches of the bench's snapshot events (``bench_ingest._templates``: real simulator
telemetry, fresh event ids, ~570 bytes) and of single readings (``bench_decode.make_batch``),
clean and with the simulator's bad share, then times, interleaved in the same process (the
order alternates per round), the CPU time per event of ``parse_batch`` (Arrow's reader and its
prescreen against ``maxlake_native``) and of the whole ``TelemetrySchema.decode``. Prints best /
median per route and the ratios; both routes must give the same rows and rejections.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_decode import make_batch
from bench.bench_ingest import _templates
from schemas import EventKind, _fastparse, _native, event_schema_for
from schemas.events.telemetry import _PARSE_SCHEMA
from schemas.results import DecodeLimits


def _snapshots(n: int, bad_rate: float, seed: int) -> list[bytes]:
    templates = _templates(2000, bad_rate)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        _, payload, eid = templates[(i + seed) % len(templates)]
        if eid:
            fresh = uuid.UUID(int=rng.getrandbits(128)).hex.encode()[: len(eid)]
            payload = payload.replace(eid, fresh.ljust(len(eid), b"0"), 1)
        out.append(payload)
    return out


def _timed(fn: Callable[[], object], events: int) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    if not _native.available():
        raise SystemExit(f"no native parser: {_native.UNAVAILABLE}")
    n = args.events
    rng = random.Random(5)
    sets = {
        "snapshots, clean": [_snapshots(n, 0.0, s) for s in range(3)],
        "snapshots, simulator's bad 2%": [_snapshots(n, 0.02, s) for s in range(3)],
        "single readings, clean": [make_batch(n, 0.0, rng) for _ in range(3)],
        "single readings, 1% bad": [make_batch(n, 0.01, rng) for _ in range(3)],
    }
    telemetry = event_schema_for(EventKind.TELEMETRY)
    now = datetime.now(UTC)
    limits = DecodeLimits()
    limit = limits.max_message_bytes

    def route(name: str, what: str, batch: list[bytes]) -> Callable[[], object]:
        def run() -> object:
            with mock.patch.object(_native, "PARSER", name):
                if what == "parse_batch":
                    return _fastparse.parse_batch(batch, limit, _PARSE_SCHEMA)
                return telemetry.decode(batch, now=now, limits=limits)

        return run

    print(f"{os.uname().nodename}, load {os.getloadavg()}, {n} events per batch")
    for label, batches in sets.items():
        a = telemetry.decode(batches[0], now=now, limits=limits)
        with mock.patch.object(_native, "PARSER", "arrow"):
            b = telemetry.decode(batches[0], now=now, limits=limits)
        assert a.rows.equals(b.rows)
        assert a.rejections == b.rejections
        for what in ("parse_batch", "decode"):
            times: dict[str, list[float]] = {"arrow": [], "native": []}
            gc.collect()
            for r in range(args.rounds):
                order = ("arrow", "native") if r % 2 == 0 else ("native", "arrow")
                for name in order:
                    batch = batches[r % len(batches)]
                    times[name].append(_timed(route(name, what, batch), len(batch)))
            best = {k: min(v) for k, v in times.items()}
            med = {k: statistics.median(v) for k, v in times.items()}
            print(
                f"{label:32} {what:11} arrow {best['arrow']:5.2f} / {med['arrow']:5.2f}  "
                f"native {best['native']:5.2f} / {med['native']:5.2f} µs/event  "
                f"arrow/native {best['arrow'] / best['native']:4.2f} / "
                f"{med['arrow'] / med['native']:4.2f}"
            )
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
