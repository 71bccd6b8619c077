"""Decoder throughput: the telemetry decoder against a naive per-event baseline.

Run ``python bench/bench_decode.py [--batches N] [--batch-size N] [--snapshots]``. Each batch
holds single-reading telemetry events (~275 bytes; with ``--snapshots``, events with a
``readings`` list of 4 tags, ~490 bytes) of which 1% are bad in assorted ways (malformed JSON, a
string value, a bad tag, an unparseable timestamp, a missing field). Three decoders see the same
batches in the same run: the decoder as used by ingest (Arrow fast path for batches of
``FAST_MIN_BATCH`` or more, exact decoder for the rest), the exact orjson decoder alone and the
naive baseline. They take turns on each batch (so load from other jobs hits them alike); the
script prints events/s of each and the ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from schemas import event_schema_for, load_registry
from schemas.event_schema import EventSchema
from schemas.results import DecodeLimits

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_BAD = (
    lambda e: orjson.dumps(e)[:-7],
    lambda e: orjson.dumps(_with_reading(e, "value", "n/a")),
    lambda e: orjson.dumps(_with_reading(e, "tag", "bad tag!")),
    lambda e: orjson.dumps({**e, "event_time": "26/11/2026 10:00"}),
    lambda e: orjson.dumps({k: v for k, v in e.items() if k != "machine"}),
)
SNAPSHOT_TAGS = 4


def _with_reading(event: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``event`` with ``key`` of its (last) reading replaced by ``value``."""
    if "reading" in event:
        return {**event, "reading": {**event["reading"], key: value}}
    readings = list(event["readings"])
    readings[-1] = {**readings[-1], key: value}
    return {**event, "readings": readings}


def _reading(spec: Any, rng: random.Random) -> dict[str, Any]:
    return {
        "tag": spec.tag,
        "value": round(rng.gauss(spec.nominal, (spec.max - spec.min) / 50), 3),
        "unit": spec.unit,
        "quality": "GOOD",
    }


def make_batch(
    size: int, bad_share: float, rng: random.Random, *, snapshots: bool = False
) -> list[bytes]:
    """``size`` telemetry messages drawn from the registry, ``bad_share`` of them broken;
    ``snapshots`` sends ``readings`` of 4 tags (repeating tags of machines with fewer)."""
    reg = load_registry()
    machines = reg.machines().to_pylist()
    out = []
    for _ in range(size):
        m = rng.choice(machines)
        tags = reg.machine_types[m["machine_type"]].tags
        t = NOW - timedelta(seconds=rng.uniform(0, 3600))
        event: dict[str, Any] = {
            "event_id": f"{m['machine']}-{rng.getrandbits(48):012x}",
            "schema_version": 1,
            "kind": "telemetry",
            "tenant": m["tenant"],
            "plant": m["plant"],
            "line": m["line"],
            "machine": m["machine"],
            "event_time": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if snapshots:
            specs = [tags[k % len(tags)] for k in range(SNAPSHOT_TAGS)]
            event["readings"] = [_reading(spec, rng) for spec in specs]
        else:
            event["reading"] = _reading(rng.choice(tags), rng)
        if rng.random() < bad_share:
            out.append(rng.choice(_BAD)(event))
        else:
            out.append(orjson.dumps(event))
    return out


def naive_decode(messages: Sequence[bytes]) -> tuple[pa.Table, int]:
    """The obvious implementation: json.loads and Python checks per event, then from_pylist."""
    rows: list[dict[str, Any]] = []
    rejected = 0
    lo, hi = NOW - timedelta(days=400), NOW + timedelta(seconds=300)
    for msg in messages:
        try:
            e = json.loads(msg)
            ok = e["schema_version"] == 1 and e["kind"] == "telemetry"
            for key in ("tenant", "plant", "line", "machine"):
                ok = ok and isinstance(e[key], str) and bool(_ID.fullmatch(e[key]))
            ok = ok and isinstance(e["event_id"], str) and 0 < len(e["event_id"]) <= 128
            t = datetime.fromisoformat(e["event_time"])
            sent = e.get("sent_time")
            readings = e["readings"] if "readings" in e else [e["reading"]]
            ok = ok and lo <= t <= hi
            for r in readings:
                ok = ok and isinstance(r["tag"], str) and bool(_ID.fullmatch(r["tag"]))
                ok = ok and type(r["value"]) in (int, float)
            if not ok:
                rejected += 1
                continue
            for k, r in enumerate(readings):
                rows.append(
                    {
                        "event_id": e["event_id"], "schema_version": 1, "tenant": e["tenant"],
                        "plant": e["plant"], "line": e["line"], "machine": e["machine"],
                        "event_time": t,
                        "sent_time": datetime.fromisoformat(sent) if sent else None,
                        "date": t.astimezone(UTC).date(), "reading_index": k, "tag": r["tag"],
                        "value": float(r["value"]), "unit": r.get("unit"),
                        "quality": r.get("quality", "GOOD"),
                    }
                )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            rejected += 1
    schema = pa.schema([f for f in event_schema_for("telemetry").row_schema if f.name != "_msg"])
    return pa.Table.from_pylist(rows, schema=schema), rejected


Rates = tuple[float, float, float]


def _rates(
    decoders: dict[str, Callable[[list[bytes]], object]],
    batches: list[list[bytes]],
    repeats: dict[str, int],
) -> dict[str, Rates]:
    """Events/s per decoder: wall clock of the median and of the fastest batch, and CPU time of
    the median batch (less disturbed when other jobs share the cores). Decoders take turns on
    each batch, so load that comes and goes hits them alike."""
    wall: dict[str, list[float]] = {name: [] for name in decoders}
    cpu: dict[str, list[float]] = {name: [] for name in decoders}
    for rep in range(max(repeats.values())):
        for batch in batches:
            for name, fn in decoders.items():
                if rep >= repeats[name]:
                    continue
                start, start_cpu = time.perf_counter(), time.process_time()
                fn(batch)
                wall[name].append((time.perf_counter() - start) / len(batch))
                cpu[name].append((time.process_time() - start_cpu) / len(batch))
    return {
        name: (1 / statistics.median(w), 1 / min(w), 1 / statistics.median(cpu[name]))
        for name, w in wall.items()
    }


def main() -> None:
    """Run both decoders on the same batches and print events/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--bad-share", type=float, default=0.01)
    parser.add_argument(
        "--repeats", type=int, default=3, help="passes of the decoder and the exact decoder"
    )
    parser.add_argument(
        "--snapshots", action="store_true", help=f"events with {SNAPSHOT_TAGS} readings each"
    )
    args = parser.parse_args()
    rng = random.Random(42)
    batches = [
        make_batch(args.batch_size, args.bad_share, rng, snapshots=args.snapshots)
        for _ in range(args.batches)
    ]
    event_schema = event_schema_for("telemetry")
    limits = DecodeLimits()
    sizes = [len(m) for b in batches for m in b]

    def decode(batch: list[bytes]) -> object:
        return event_schema.decode(batch, now=NOW, limits=limits)

    def exact(batch: list[bytes]) -> object:
        """The exact (orjson) decoder alone, with the collector paused as ``decode`` does."""
        gc.disable()
        try:
            return EventSchema._decode_batch(event_schema, batch, None, NOW, limits)
        finally:
            gc.enable()

    check = event_schema.decode(batches[0], now=NOW)
    naive_rows, naive_rejected = naive_decode(batches[0])
    print(
        f"python {platform.python_version()}, pyarrow {pa.__version__}, orjson {orjson.__version__}"
    )
    print(f"{args.batches} batches x {args.batch_size} events, mean {statistics.mean(sizes):.0f} B")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other jobs on the machine skew timings)")
    print(f"first batch: {check.rows.num_rows} rows, {len(check.rejections)} rejected "
          f"(naive: {naive_rows.num_rows} rows, {naive_rejected} rejected)")  # fmt: skip
    rates = _rates(
        {"decoder": decode, "exact decoder only": exact, "naive baseline": naive_decode},
        batches,
        {"decoder": args.repeats, "exact decoder only": args.repeats, "naive baseline": 1},
    )
    print(f"{'events/s':<19} {'median batch':>14} {'best batch':>12} {'median CPU':>12}")
    for name, (median, best, median_cpu) in rates.items():
        print(f"{name:<19} {median:>14,.0f} {best:>12,.0f} {median_cpu:>12,.0f}")
    fast = rates["decoder"]
    for name, other in (("naive", "naive baseline"), ("exact only", "exact decoder only")):
        print(
            f"decoder / {name} (median batches): {fast[0] / rates[other][0]:.2f}x, "
            f"CPU {fast[2] / rates[other][2]:.2f}x"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
