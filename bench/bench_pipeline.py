"""The batch engine's per-batch work without Kafka: CPU per event of each stage, in process.

Run ``flock /work/bench.lock python bench/bench_pipeline.py [--rounds 5] [--compare-src DIR]``.
Each round is one fresh process (``--child``) that builds an :class:`~streams.ingest.IngestPipeline`
over a throwaway lake, as a worker does, and feeds it ``--batches`` batches of ``--events``
snapshot events (``bench_ingest._templates``, fresh event ids, 4 partitions, consecutive
offsets) after one warm-up batch. Per batch it times, in CPU seconds of the whole process (all
threads): the decode (``TelemetrySchema.decode``), the unit conversion and GX validation, the
rest of the prepare (dedupe, silver/quarantine rows; of it ``lake_reads``: the exactly-once
checks' reads of stored offsets, ``_not_in_lake`` and ``_committed_decisions``) and the Delta
write. With
``--compare-src`` the rounds alternate between that source tree and this one (the same
interpreter and ``maxlake_native``), for a same-run ratio; prints best / median per stage.
``--compare-python`` runs that tree's rounds with another interpreter instead (e.g. its own
``.venv/bin/python``, to compare builds of ``maxlake_native`` too).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_STAGES = ("decode", "validate", "lake_reads", "prepare_rest", "prepare", "write", "total")


def _payloads(n: int, seed: int) -> list[bytes]:
    from bench.bench_ingest import _templates

    templates = _templates(2000)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        _, payload, eid = templates[(i + seed) % len(templates)]
        fresh = uuid.UUID(int=rng.getrandbits(128)).hex.encode()[: len(eid)]
        out.append(payload.replace(eid, fresh.ljust(len(eid), b"0"), 1))
    return out


def _child(events: int, batches: int) -> dict[str, float]:
    from bench.bench_ingest import TENANT
    from lake import BatchWriter, DeltaStore
    from maxlake.settings import Settings
    from quality import ValidationGateway
    from schemas import load_registry
    from streams.batch_rows import ColumnMessages, Columns
    from streams.ingest import IngestPipeline

    root = Path(tempfile.mkdtemp(prefix="maxlake-bench-pipeline-"))
    settings = Settings(lake_root=str(root))
    pipeline = IngestPipeline(
        settings,
        ValidationGateway(load_registry()),
        BatchWriter(DeltaStore(root)),
        worker="bench",
    )
    topic = f"bench.{TENANT}.telemetry"
    spent: dict[str, float] = dict.fromkeys(_STAGES, 0.0)
    cpu = time.process_time
    offsets = [0, 0, 0, 0]
    stage: dict[str, float] = {}

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        start = cpu()
        yield
        stage[name] = stage.get(name, 0.0) + cpu() - start

    def wrap(obj: Any, attr: str, name: str) -> None:
        inner: Callable[..., Any] = getattr(obj, attr)

        def run(*args: Any, **kwargs: Any) -> Any:
            with timed(name):
                return inner(*args, **kwargs)

        setattr(obj, attr, run)

    wrap(pipeline, "_decode", "decode")
    wrap(pipeline, "_validate", "validate")
    wrap(pipeline, "_not_in_lake", "lake_reads")
    wrap(pipeline, "_committed_decisions", "lake_reads")
    for b in range(batches + 1):
        payloads = _payloads(events, seed=b)
        # As the batch engine hands them over: one tuple per field (streams/batch_engine.py).
        parts = tuple(i % 4 for i in range(events))
        numbers = []
        for part in parts:
            numbers.append(offsets[part])
            offsets[part] += 1
        n = len(payloads)
        messages = ColumnMessages(
            Columns(
                (topic,) * n,
                parts,
                tuple(numbers),
                (None,) * n,
                (b"k",) * n,
                tuple(payloads),
                ("bench-topic-id",) * n,
            )
        )
        stage.clear()
        start = cpu()
        outputs = pipeline.prepare("telemetry", messages)
        prepared = cpu()
        pipeline.write(outputs)
        done = cpu()
        if b == 0:
            continue
        spent["decode"] += stage["decode"]
        spent["validate"] += stage["validate"]
        spent["lake_reads"] += stage.get("lake_reads", 0.0)
        spent["prepare"] += prepared - start
        spent["prepare_rest"] += prepared - start - stage["decode"] - stage["validate"]
        spent["write"] += done - prepared
        spent["total"] += done - start
    return {k: v / (events * batches) * 1e6 for k, v in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--compare-src", type=Path, default=None)
    parser.add_argument("--compare-python", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    if args.child:
        print(json.dumps(_child(args.events, args.batches)))
        return
    trees: list[tuple[str, Path]] = [("this", here)]
    python = {"this": sys.executable, "before": sys.executable}
    if args.compare_src is not None:
        trees.insert(0, ("before", args.compare_src.resolve()))
    if args.compare_python is not None:
        python["before"] = str(args.compare_python)
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    with open("/proc/loadavg") as f:
        print(f"load at start: {f.read().split()[0]}")
    for r in range(args.rounds):
        order = trees if r % 2 == 0 else trees[::-1]
        for name, src in order:
            env = {**os.environ, "PYTHONPATH": f"{src}", "GX_ANALYTICS_ENABLED": "false"}
            out = subprocess.run(
                [
                    python[name],
                    "-P",
                    str(here / "bench" / "bench_pipeline.py"),
                    "--child",
                    "--events",
                    str(args.events),
                    "--batches",
                    str(args.batches),
                ],
                env=env,
                cwd=src,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            res = json.loads(out.strip().splitlines()[-1])
            results[name].append(res)
            print(
                f"round {r + 1} {name:>6}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()),
                flush=True,
            )
    with open("/proc/loadavg") as f:
        print(f"load at end: {f.read().split()[0]}")
    print("µs of CPU per event, best / median")
    for stage in _STAGES:
        cells = []
        for name, _ in trees:
            vals = [r[stage] for r in results[name]]
            cells.append(f"{name} {min(vals):.2f} / {statistics.median(vals):.2f}")
        if len(trees) == 2:
            b = [r[stage] for r in results["before"]]
            t = [r[stage] for r in results["this"]]
            cells.append(
                f"this/before {min(t) / min(b):.2f} / {statistics.median(t) / statistics.median(b):.2f}"
            )
        print(f"  {stage:<13} " + "   ".join(cells))


if __name__ == "__main__":
    main()
