"""Validation cost: the GX-backed gateway against the same checks in pure ``pyarrow.compute``.

Run ``python bench/bench_validate.py [--repeats N]``. Telemetry batches of 20,000, 5,000 and
100 rows are drawn from the registry with 2% bad rows (unknown machine, unknown tag, value out
of range, wrong unit, late delivery). Both validators see the same batches in the same run; the
script checks that they agree row for row and prints ms per batch, rows/s and the ratio, plus
how the gateway's time splits into Arrow preparation (derived columns + pandas conversion) and
the GX run itself.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.metadata import version

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from quality import ValidationGateway, Verdict
from quality.enrich import RegistryIndex, derive_columns
from schemas import EventKind, Registry, event_schema_for, load_registry

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def make_rows(size: int, bad_share: float, rng: random.Random, registry: Registry) -> pa.Table:
    """``size`` telemetry rows with the event schema's row schema, ``bad_share`` of them bad."""
    machines = registry.machines().to_pylist()
    cols: dict[str, list[object]] = {n: [] for n in event_schema_for("telemetry").row_schema.names}
    for i in range(size):
        m = rng.choice(machines)
        spec = rng.choice(registry.machine_types[m["machine_type"]].tags)
        event_time = NOW - timedelta(seconds=rng.uniform(0, 3600))
        row: dict[str, object] = {
            "event_id": f"e-{i}",
            "schema_version": 1,
            **{k: m[k] for k in ("tenant", "plant", "line", "machine")},
            "event_time": event_time,
            "sent_time": event_time + timedelta(seconds=rng.uniform(0, 5)),
            "date": event_time.date(),
            "reading_index": 0,
            "tag": spec.tag,
            "value": min(
                spec.max, max(spec.min, rng.gauss(spec.nominal, (spec.max - spec.min) / 50))
            ),
            "unit": spec.unit,
            "quality": "BAD" if rng.random() < 0.01 else "GOOD",
            "_msg": i,
        }
        if rng.random() < bad_share:
            flaw = rng.randrange(5)
            if flaw == 0:
                row["machine"] = "ghost-machine"
            elif flaw == 1:
                row["tag"] = "no_such_tag"
            elif flaw == 2:
                row["value"] = spec.max + 1.0
            elif flaw == 3:
                row["unit"] = "furlongs"
            else:
                row["sent_time"] = event_time + timedelta(hours=2)
        for k, v in row.items():
            cols[k].append(v)
    return pa.table(cols, schema=event_schema_for("telemetry").row_schema)


class ArrowBaseline:
    """The telemetry suite's checks written directly in ``pyarrow.compute``."""

    def __init__(self, registry: Registry) -> None:
        self.index = RegistryIndex(registry)

    def validate(self, rows: pa.Table) -> tuple[npt.NDArray[np.bool_], dict[str, int], float]:
        """Drop mask, warn counts and the BAD share of one batch."""
        ix = self.index
        key = pc.binary_join_element_wise(
            rows["tenant"], rows["plant"], rows["line"], rows["machine"], "/"
        )
        machine_idx = pc.index_in(key, value_set=ix.machine_keys)
        tag_key = pc.binary_join_element_wise(ix.machine_types.take(machine_idx), rows["tag"], "/")
        tag_idx = pc.index_in(tag_key, value_set=ix.tag_keys)
        value = rows["value"]
        unknown_machine = pc.is_null(machine_idx)
        unknown_tag = pc.and_(pc.invert(unknown_machine), pc.is_null(tag_idx))
        unit_bad = pc.fill_null(pc.not_equal(rows["unit"], ix.tag_unit.take(tag_idx)), False)
        # The suite's range rule (QUALITY.md): not evaluated for a reading whose quality is BAD
        # (the number is not a measurement) nor for one whose unit is not the registry unit.
        ranged = pc.and_(pc.invert(unit_bad), pc.not_equal(rows["quality"], "BAD"))
        below = pc.fill_null(pc.and_(ranged, pc.less(value, ix.tag_min.take(tag_idx))), False)
        above = pc.fill_null(pc.and_(ranged, pc.greater(value, ix.tag_max.take(tag_idx))), False)
        drop = pc.or_(pc.or_(unknown_machine, unknown_tag), pc.or_(below, above))
        drop = pc.or_(drop, unit_bad)
        latency = pc.subtract(rows["sent_time"], rows["event_time"])
        late = pc.greater(pc.cast(latency, pa.int64()), 3_600_000_000)
        warns = {
            "event_latency_within_1h": pc.sum(pc.fill_null(late, False)).as_py() or 0,
        }
        bad_share = pc.mean(pc.cast(pc.equal(rows["quality"], "BAD"), pa.float64())).as_py()
        return drop.to_numpy(zero_copy_only=False), warns, float(bad_share)


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def check_agreement(
    verdict: Verdict, baseline: tuple[npt.NDArray[np.bool_], dict[str, int], float]
) -> None:
    """Fail loudly when the gateway and the Arrow baseline disagree on any row or count."""
    drop, warns, bad_share = baseline
    if not np.array_equal(verdict.drop, drop):
        raise SystemExit(f"disagreement on {int((verdict.drop != drop).sum())} rows")
    if verdict.warn_counts != warns:
        raise SystemExit(f"warn counts differ: {verdict.warn_counts} vs {warns}")
    observed = verdict.batch_results["bad_quality_share_at_most_5pct"].observed_value
    if abs(observed - bad_share) > 1e-12:
        raise SystemExit(f"BAD share differs: {observed} vs {bad_share}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--bad-share", type=float, default=0.02)
    args = parser.parse_args()
    registry = load_registry()
    started = time.perf_counter()
    gateway = ValidationGateway(registry)
    build_s = time.perf_counter() - started
    baseline = ArrowBaseline(registry)
    suite_columns = gateway.suites[EventKind.TELEMETRY].columns()
    index = RegistryIndex(registry)

    def prepare(rows: pa.Table) -> object:
        return derive_columns(EventKind.TELEMETRY, rows, suite_columns, index).to_pandas()

    print(
        f"python {platform.python_version()}, great_expectations {version('great_expectations')}, "
        f"pandas {pd.__version__}, pyarrow {pa.__version__}, {platform.machine()}"
    )
    print(f"gateway build (GX import + context + 3 suites): {build_s * 1000:.0f} ms")
    print(f"{'rows':>6} {'gateway ms':>11} {'rows/s':>10} {'prep ms':>8} {'GX ms':>7} "
          f"{'arrow ms':>9} {'rows/s':>12} {'ratio':>6}")  # fmt: skip
    rng = random.Random(7)
    for size in (20_000, 5_000, 100):
        rows = make_rows(size, args.bad_share, rng, registry)
        verdict = gateway.validate("telemetry", rows)
        check_agreement(verdict, baseline.validate(rows))
        gw_s = timed(partial(gateway.validate, "telemetry", rows), args.repeats)
        prep_s = timed(partial(prepare, rows), args.repeats)
        arrow_s = timed(partial(baseline.validate, rows), args.repeats)
        print(
            f"{size:>6} {gw_s * 1000:>11.1f} {size / gw_s:>10,.0f} {prep_s * 1000:>8.1f} "
            f"{(gw_s - prep_s) * 1000:>7.1f} {arrow_s * 1000:>9.2f} {size / arrow_s:>12,.0f} "
            f"{gw_s / arrow_s:>6.0f}x"
        )
    print(
        f"verdicts agree row for row; last batch dropped {verdict.dropped} of {len(verdict.drop)}"
    )


if __name__ == "__main__":
    main()
