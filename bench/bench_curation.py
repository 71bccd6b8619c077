"""Curation throughput: the predictive_maintenance and part_quality jobs over a real Delta
table, against pandas and DuckDB.

Run ``python bench/bench_curation.py [--rows N] [--keep DIR] [--job NAME]``. The script writes
``N`` (default 20,000,000) synthetic silver telemetry rows for the registry's machines as a
Delta table partitioned by tenant/plant/date (generated vectorised with numpy, written in
chunks), plus a small machine_event table and an inspection table (one part per line every
:data:`PART_EVERY_S` seconds, its process window the first 80 % of that, every machine of the
line, 50 parts a lot). Then it runs, each in its own child process so that peak memory is the
child's own:

* **polars**: ``lake.curation.jobs.predictive_maintenance`` over ``pl.scan_delta`` (lazy; the
  heavy aggregation is collected with the streaming engine, one pass per plant);
* **pandas**: the same features, labels and split written with pandas (``pyarrow`` dataset
  read of the same columns, groupby, ``merge_asof``);
* **duckdb** (``--engines polars,duckdb``; ``pip install -e '.[bench]'``): the same features,
  labels (DOWN states only, as the job's default) and split as one DuckDB query over the Delta
  table's current Parquet files (``read_parquet`` with hive partitions, ``ASOF LEFT JOIN``).

With ``--job part_quality`` the engines are **polars** (``lake.curation.jobs.part_quality``
over ``pl.scan_delta``) and **duckdb** (the same features, labels and default ``line_time``
split as one DuckDB query: the part's machines unnested, the range join done as the job does
it, an equi-join on machine and 5-minute bucket then ``process_start <= event_time <=
process_end``, and ``avg``, ``max``, ``stddev_samp``; joined on the machine alone, DuckDB
compares each reading with every part of its machine and takes ~10x longer).

It prints source rows/s, wall time, peak RSS (``ru_maxrss`` of the child) and the ratio.
``--dump DIR`` also writes the polars splits as Parquet under ``DIR`` (to compare runs bit for
bit, for example before and after a change to the job).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOURS = 72
PART_EVERY_S = 120
"""Seconds between two parts of one line (process window: the first 80 % of it)."""
PARTS_PER_LOT = 50
SOURCE_COLUMNS = ["tenant", "plant", "line", "machine", "event_time", "tag", "value", "quality"]


def _series() -> list[dict[str, Any]]:
    from schemas import load_registry

    reg = load_registry()
    out = []
    for m in reg.machines().to_pylist():
        for t in reg.machine_types[m["machine_type"]].tags:
            out.append(
                {**m, "tag": t.tag, "unit": t.unit, "nominal": t.nominal, "span": t.max - t.min}
            )
    return out


def generate(root: Path, rows: int, chunk: int = 2_000_000) -> None:
    """Write ``rows`` telemetry rows and a few failure events as Delta tables under ``root``."""
    from deltalake import write_deltalake

    series = _series()
    rng = np.random.default_rng(42)
    span_us = HOURS * 3_600_000_000
    names = {
        k: np.array([s[k] for s in series])
        for k in ("tenant", "plant", "line", "machine", "tag", "unit")
    }
    nominal = np.array([s["nominal"] for s in series])
    spread = np.array([s["span"] for s in series]) * 0.01
    written = 0
    while written < rows:
        n = min(chunk, rows - written)
        which = rng.integers(0, len(series), n)
        t = START_US + rng.integers(0, span_us, n)
        wear = (t - START_US) % (6 * 3_600_000_000) / (6 * 3_600_000_000)
        value = nominal[which] + spread[which] * (rng.standard_normal(n) + 5 * wear**2)
        table = pa.table(
            {
                **{k: pa.array(names[k][which]) for k in ("tenant", "plant", "line", "machine")},
                "event_time": pa.array(t, pa.timestamp("us", "UTC")),
                "date": pa.array((t // 86_400_000_000).astype("int32"), pa.int32()).cast(
                    pa.date32()
                ),
                "tag": pa.array(names["tag"][which]),
                "value": pa.array(value),
                "unit": pa.array(names["unit"][which]),
                "quality": pa.array(np.where(rng.random(n) < 0.99, "GOOD", "UNCERTAIN")),
            }
        )
        write_deltalake(
            str(root / "telemetry"), table, mode="append", partition_by=["tenant", "plant", "date"]
        )
        written += n
    machines = sorted({(s["tenant"], s["plant"], s["line"], s["machine"]) for s in series})
    events: list[tuple[Any, ...]] = []
    for i, (tenant, plant, line, machine) in enumerate(machines):
        for k in range(HOURS // 6):
            down_us = START_US + (k * 6 + 5) * 3_600_000_000 + i * 60_000_000
            events.append((tenant, plant, line, machine, down_us, "STATE", "DOWN", None))
            alarm_us = down_us - 1_800_000_000
            events.append((tenant, plant, line, machine, alarm_us, "ALARM", None, 900))
    cols = list(zip(*events, strict=True))
    write_deltalake(
        str(root / "machine_event"),
        pa.table(
            {
                "tenant": cols[0],
                "plant": cols[1],
                "line": cols[2],
                "machine": cols[3],
                "event_time": pa.array(cols[4], pa.timestamp("us", "UTC")),
                "event_type": cols[5],
                "state": pa.array(cols[6], pa.string()),
                "alarm_severity": pa.array(cols[7], pa.int16()),
            }
        ),
        mode="overwrite",
    )


def generate_inspections(root: Path) -> None:
    """Write the inspection table: one part per line every :data:`PART_EVERY_S` seconds."""
    from deltalake import write_deltalake

    lines: dict[tuple[str, str, str], list[str]] = {}
    for s in _series():
        machines = lines.setdefault((s["tenant"], s["plant"], s["line"]), [])
        if s["machine"] not in machines:
            machines.append(s["machine"])
    rng = np.random.default_rng(7)
    step_us = PART_EVERY_S * 1_000_000
    count = HOURS * 3600 // PART_EVERY_S
    columns: dict[str, list[Any]] = {
        k: []
        for k in (
            "event_id",
            "tenant",
            "plant",
            "line",
            "part_serial",
            "lot",
            "machines",
            "process_start",
            "process_end",
            "result",
            "defect_codes",
        )
    }
    for (tenant, plant, line), machines in sorted(lines.items()):
        draw = rng.random(count)
        for k in range(count):
            start = START_US + k * step_us
            result = "FAIL" if draw[k] < 0.05 else "REWORK" if draw[k] < 0.1 else "PASS"
            row = {
                "event_id": f"{line}-{k:06d}",
                "tenant": tenant,
                "plant": plant,
                "line": line,
                "part_serial": f"{line}-s{k:06d}",
                "lot": f"{line}-lot{k // PARTS_PER_LOT:04d}",
                "machines": sorted(machines),
                "process_start": start,
                "process_end": start + step_us * 4 // 5,
                "result": result,
                "defect_codes": [] if result == "PASS" else ["DIM-OOT"],
            }
            for key, value in row.items():
                columns[key].append(value)
    table = pa.table(
        {
            **{k: pa.array(v, pa.string()) for k, v in columns.items() if k not in _NOT_TEXT},
            "machines": pa.array(columns["machines"], pa.list_(pa.string())),
            "process_start": pa.array(columns["process_start"], pa.timestamp("us", "UTC")),
            "process_end": pa.array(columns["process_end"], pa.timestamp("us", "UTC")),
            "defect_codes": pa.array(columns["defect_codes"], pa.list_(pa.string())),
        }
    )
    write_deltalake(str(root / "inspection"), table, mode="overwrite")


_NOT_TEXT = ("machines", "process_start", "process_end", "defect_codes")


def _inputs(root: Path, *kinds: str) -> Any:
    import polars as pl

    from lake.curation.job import JobInputs
    from schemas import EventKind, load_registry

    reg = load_registry()
    return JobInputs(
        sources={EventKind(k): pl.scan_delta(str(root / k)) for k in kinds},
        machines=pl.DataFrame(reg.machines()),
        tags=pl.DataFrame(reg.tag_ranges()),
    )


def run_part_quality(root: Path, dump: Path | None = None) -> dict[str, Any]:
    from lake.curation.jobs import part_quality

    out = part_quality(_inputs(root, "telemetry", "inspection"))
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        for name, frame in out.splits.items():
            frame.write_parquet(dump / f"part_quality-{name}.parquet")
    return {name: frame.height for name, frame in out.splits.items()} | {
        "fail": int(sum((f["result"] != "PASS").sum() for f in out.splits.values())),
        "with_features": int(
            sum(f["spindle_temp__mean"].is_not_null().sum() for f in out.splits.values())
        ),
    }


def run_part_quality_duckdb(root: Path) -> dict[str, Any]:
    """part_quality's features, labels and default line_time split as one DuckDB query."""
    import duckdb
    from deltalake import DeltaTable

    tags = sorted({s["tag"] for s in _series()})
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    tel = con.read_parquet(DeltaTable(str(root / "telemetry")).file_uris(), hive_partitioning=True)  # noqa: F841
    insp = con.read_parquet(DeltaTable(str(root / "inspection")).file_uris())  # noqa: F841
    stat = ", ".join(
        f"first({s}) FILTER (WHERE tag = '{t}') AS \"{t}__{s}\""
        for t in tags
        for s in ("mean", "max", "std")
    )
    keys = "tenant, plant, line, part_serial, event_id"
    query = f"""
    WITH parts AS (
        SELECT {keys}, process_start, process_end, unnest(machines) AS machine FROM insp
    ), buckets AS (
        SELECT *, unnest(generate_series(time_bucket(INTERVAL 5 MINUTE, process_start),
                                         time_bucket(INTERVAL 5 MINUTE, process_end),
                                         INTERVAL 5 MINUTE)) AS bucket
        FROM parts
    ), r AS (
        SELECT tenant, plant, machine, event_time, tag, value,
               time_bucket(INTERVAL 5 MINUTE, event_time) AS bucket
        FROM tel WHERE quality = 'GOOD'
    ), j AS (
        SELECT p.tenant, p.plant, p.line, p.part_serial, p.event_id, r.tag, r.value
        FROM buckets p JOIN r
          ON r.tenant = p.tenant AND r.plant = p.plant AND r.machine = p.machine
         AND r.bucket = p.bucket
        WHERE r.event_time BETWEEN p.process_start AND p.process_end
    ), s AS (
        SELECT {keys}, tag, avg(value) AS mean, max(value) AS max, stddev_samp(value) AS std
        FROM j GROUP BY ALL
    ), wide AS (
        SELECT {keys}, {stat} FROM s GROUP BY ALL
    ), rows AS (
        SELECT i.tenant, i.plant, i.line, i.part_serial, i.event_id, i.lot, i.process_start,
               i.process_end, w.* EXCLUDE ({keys}), i.result, i.defect_codes[1] AS defect_code
        FROM insp i LEFT JOIN wide w USING ({keys})
    ), lots AS (
        SELECT tenant, plant, lot, min(line) AS line, min(epoch_us(process_start)) AS start_us
        FROM rows GROUP BY ALL
    ), cuts AS (
        SELECT tenant, plant, line, min(start_us) AS lo, max(start_us) AS hi
        FROM lots GROUP BY ALL
    ), assigned AS (
        SELECT l.tenant, l.plant, l.lot,
               CASE WHEN start_us < lo + floor((hi - lo) * 0.7) THEN 'train'
                    WHEN start_us < lo + floor((hi - lo) * 0.85) THEN 'validation'
                    ELSE 'test' END AS split
        FROM lots l JOIN cuts c USING (tenant, plant, line)
    )
    SELECT a.split, r.* FROM rows r JOIN assigned a USING (tenant, plant, lot)
    """
    out = con.sql(f"SELECT * FROM ({query}) ORDER BY split, {keys}").to_arrow_table()
    split = out.column("split").to_pylist()
    results = out.column("result").to_pylist()
    with_features = out.column("spindle_temp__mean").null_count
    return {name: split.count(name) for name in ("train", "validation", "test")} | {
        "fail": sum(r != "PASS" for r in results),
        "with_features": out.num_rows - with_features,
    }


def run_polars(root: Path, dump: Path | None = None) -> dict[str, Any]:
    from lake.curation.jobs import predictive_maintenance

    out = predictive_maintenance(_inputs(root, "telemetry", "machine_event"))
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        for name, frame in out.splits.items():
            frame.write_parquet(dump / f"{name}.parquet")
    return {name: frame.height for name, frame in out.splits.items()} | {
        "positives": int(sum(int(f["failure_within_h"].sum()) for f in out.splits.values()))
    }


def run_pandas(root: Path) -> dict[str, Any]:
    import pandas as pd
    import pyarrow.dataset as ds

    keys = ["tenant", "plant", "line", "machine"]
    tel = ds.dataset(str(root / "telemetry"), format="parquet", partitioning="hive")
    df = tel.to_table(columns=SOURCE_COLUMNS).to_pandas()
    df = df[df["quality"] == "GOOD"].drop(columns="quality")
    df["window_start"] = df["event_time"].dt.floor("1h")
    df["x"] = (df["event_time"] - df["window_start"]).dt.total_seconds() / 3600.0
    df = df.sort_values([*keys, "tag", "window_start", "event_time", "value"])
    df["xy"] = df["x"] * df["value"]
    df["xx"] = df["x"] * df["x"]
    g = df.groupby([*keys, "tag", "window_start"], sort=True)
    stats = g.agg(
        mean=("value", "mean"),
        std=("value", "std"),
        min=("value", "min"),
        max=("value", "max"),
        last=("value", "last"),
        count=("value", "size"),
        sx=("x", "sum"),
        sy=("value", "sum"),
        sxy=("xy", "sum"),
        sxx=("xx", "sum"),
    )
    n = stats["count"]
    den = n * stats["sxx"] - stats["sx"] ** 2
    stats["slope"] = (n * stats["sxy"] - stats["sx"] * stats["sy"]) / den.where(den > 0)
    stats = stats.drop(columns=["sx", "sy", "sxy", "sxx"])
    wide = stats.unstack("tag")
    wide.columns = [f"{tag}__{stat}" for stat, tag in wide.columns]
    wide = wide.reset_index()
    grid = wide.groupby(keys)["window_start"].agg(["min", "max"]).reset_index()
    grid["window_start"] = [
        pd.date_range(a, b, freq="1h") for a, b in zip(grid["min"], grid["max"], strict=True)
    ]
    grid = grid.drop(columns=["min", "max"]).explode("window_start")
    grid["window_start"] = grid["window_start"].astype(wide["window_start"].dtype)
    rows = grid.merge(wide, on=[*keys, "window_start"], how="left")
    rows["window_end"] = rows["window_start"] + pd.Timedelta(hours=1)
    ev = ds.dataset(str(root / "machine_event")).to_table().to_pandas()
    ev = ev[(ev["state"] == "DOWN") | (ev["alarm_severity"] >= 700)]
    ev = ev[[*keys, "event_time"]].rename(columns={"event_time": "failure_time"})
    rows = pd.merge_asof(
        rows.sort_values("window_end"),
        ev.sort_values("failure_time"),
        left_on="window_end",
        right_on="failure_time",
        by=keys,
        direction="forward",
        allow_exact_matches=False,
    )
    horizon = pd.Timedelta(hours=4)
    rows["failure_within_h"] = (rows["failure_time"] <= rows["window_end"] + horizon).astype("int8")
    rows = rows[rows["window_end"] + horizon <= df["event_time"].max()]
    lo, hi = rows["window_end"].min(), rows["window_end"].max()
    t1 = (lo + (hi - lo) * 0.7).floor("1h")
    t2 = (lo + (hi - lo) * 0.85).floor("1h")
    end = rows["window_end"]
    splits = {
        "train": rows[end <= t1 - horizon],
        "validation": rows[(end >= t1) & (end <= t2 - horizon)],
        "test": rows[end >= t2],
    }
    return {k: len(v) for k, v in splits.items()} | {
        "positives": int(sum(int(v["failure_within_h"].sum()) for v in splits.values()))
    }


def run_duckdb(root: Path) -> dict[str, Any]:
    """The same features, labels and split as one DuckDB query over the Delta table's files."""
    import duckdb
    from deltalake import DeltaTable

    tags = sorted({s["tag"] for s in _series()})
    files = DeltaTable(str(root / "telemetry")).file_uris()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    tel = con.read_parquet(files, hive_partitioning=True)  # noqa: F841 - queried by name
    events = con.read_parquet(DeltaTable(str(root / "machine_event")).file_uris())  # noqa: F841
    stat = ", ".join(
        f"first({s}) FILTER (WHERE tag = '{t}') AS \"{t}__{s}\""
        for t in tags
        for s in ("mean", "std", "min", "max", "last", "slope", "count")
    )
    keys = "tenant, plant, line, machine"
    query = f"""
    WITH r AS (
        SELECT {keys}, tag, value, event_time,
               time_bucket(INTERVAL 1 HOUR, event_time) AS window_start
        FROM tel WHERE quality = 'GOOD'
    ), s AS (
        SELECT {keys}, tag, window_start,
               avg(value) AS mean, stddev_samp(value) AS std, min(value) AS min,
               max(value) AS max, arg_max(value, event_time) AS last, count(*) AS count,
               regr_slope(value, (epoch_us(event_time) - epoch_us(window_start)) / 3600e6)
                   AS slope,
               max(event_time) AS last_time
        FROM r GROUP BY ALL
    ), wide AS (
        SELECT {keys}, window_start, {stat} FROM s GROUP BY ALL
    ), span AS (
        SELECT {keys}, min(window_start) AS first, max(window_start) AS last
        FROM s GROUP BY ALL
    ), grid AS (
        SELECT {keys}, unnest(generate_series(first, last, INTERVAL 1 HOUR)) AS window_start
        FROM span
    ), failures AS (
        SELECT {keys}, event_time AS failure_time FROM events
        WHERE state = 'DOWN'
    ), rows AS (
        SELECT g.*, g.window_start + INTERVAL 1 HOUR AS window_end, w.* EXCLUDE ({keys}, window_start)
        FROM grid g LEFT JOIN wide w USING ({keys}, window_start)
    ), labelled AS (
        SELECT r.*, (f.failure_time IS NOT NULL
                     AND f.failure_time <= r.window_end + INTERVAL 4 HOUR)::TINYINT
                    AS failure_within_h
        FROM rows r ASOF LEFT JOIN failures f
          ON r.tenant = f.tenant AND r.plant = f.plant AND r.line = f.line
         AND r.machine = f.machine AND f.failure_time > r.window_end
    ), kept AS (
        SELECT * FROM labelled
        WHERE window_end + INTERVAL 4 HOUR <= (SELECT max(last_time) FROM s)
    ), cuts AS (
        SELECT (lo + CAST(floor((hi - lo) * 0.7) AS BIGINT)) // 3600000000 * 3600000000 AS t1,
               (lo + CAST(floor((hi - lo) * 0.85) AS BIGINT)) // 3600000000 * 3600000000 AS t2
        FROM (SELECT epoch_us(min(window_end)) AS lo, epoch_us(max(window_end)) AS hi FROM kept)
    )
    SELECT CASE WHEN epoch_us(window_end) + 4 * 3600000000 <= t1 THEN 'train'
                WHEN epoch_us(window_start) >= t1
                     AND epoch_us(window_end) + 4 * 3600000000 <= t2 THEN 'validation'
                WHEN epoch_us(window_start) >= t2 THEN 'test' END AS split, k.*
    FROM kept k, cuts
    """
    out = con.sql(
        f"SELECT * FROM ({query}) WHERE split IS NOT NULL ORDER BY split, {keys}, window_start"
    ).to_arrow_table()
    split = out.column("split").to_pylist()
    positives = sum(v for v in out.column("failure_within_h").to_pylist() if v)
    return {name: split.count(name) for name in ("train", "validation", "test")} | {
        "positives": int(positives)
    }


def child(job: str, engine: str, root: Path, dump: Path | None) -> None:
    """Run one engine and print JSON: seconds, peak RSS, split sizes.

    Polars' allocator is configured as the ``maxlake`` command configures it
    (:mod:`maxlake.allocator`; an arena count in ``_RJEM_MALLOC_CONF`` wins), in both
    engines' processes. The engine's modules are imported before the clock starts (importing ``lake.curation.jobs``
    takes about 2 s, DuckDB and deltalake about 0.5 s): the figures compare the work.
    """
    from maxlake.allocator import configure_polars_allocator

    configure_polars_allocator()
    import deltalake  # noqa: F401
    import polars  # noqa: F401

    if engine == "polars":
        import lake.curation.jobs  # noqa: F401
    else:
        importlib.import_module(engine)
    began = time.perf_counter()
    if engine == "polars":
        result = (run_polars if job == "predictive_maintenance" else run_part_quality)(root, dump)
    else:
        result = RUNNERS[job, engine](root)
    seconds = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {"engine": engine, "seconds": seconds, "peak_mib": peak_kib / 1024, "result": result}
        )
    )


def measure(job: str, engine: str, root: Path, dump: Path | None) -> dict[str, Any]:
    extra = ["--dump", str(dump)] if dump is not None else []
    proc = subprocess.run(
        [sys.executable, __file__, "--child", engine, "--job", job, "--keep", str(root), *extra],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--keep", type=Path, help="use (or create) the lake in this directory")
    parser.add_argument("--child", choices=("polars", "pandas", "duckdb"), help=argparse.SUPPRESS)
    parser.add_argument("--engines", default="polars,pandas", help="any of polars,pandas,duckdb")
    parser.add_argument("--dump", type=Path, help="write the polars splits as Parquet here")
    parser.add_argument(
        "--job",
        choices=("predictive_maintenance", "part_quality"),
        default="predictive_maintenance",
    )
    args = parser.parse_args()
    if args.child:
        child(args.job, args.child, args.keep, args.dump)
        return
    with tempfile.TemporaryDirectory(prefix="bench-curation-") as tmp:
        root = args.keep or Path(tmp)
        if not (root / "telemetry").exists():
            began = time.perf_counter()
            generate(root, args.rows)
            print(f"generated {args.rows:,} rows in {time.perf_counter() - began:.1f} s")
        if not (root / "inspection").exists():
            generate_inspections(root)
        import polars as pl

        rows = pl.scan_delta(str(root / "telemetry")).select(pl.len()).collect().item()
        print(
            f"python {platform.python_version()}, polars {pl.__version__}, "
            f"cpus {os.cpu_count()}, source rows {rows:,}, job {args.job}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        results: dict[str, list[dict[str, Any]]] = {}
        for engine in args.engines.split(","):
            r = measure(args.job, engine, root, args.dump)
            results.setdefault(engine, []).append(r)
            print(
                f"{engine:7s} {r['seconds']:7.1f} s  {rows / r['seconds']:>12,.0f} rows/s  "
                f"peak RSS {r['peak_mib']:,.0f} MiB  splits {r['result']}"
            )
        if {"polars", "pandas"} <= set(results):
            _ratio("pandas", results)
        if {"polars", "duckdb"} <= set(results):
            _ratio("duckdb", results)


def _ratio(other: str, results: dict[str, list[dict[str, Any]]]) -> None:
    """Print the ratio of medians (other engine / polars) of time and peak memory."""
    import statistics

    def median(engine: str, key: str) -> float:
        return float(statistics.median(float(r[key]) for r in results[engine]))

    ratio = median(other, "seconds") / median("polars", "seconds")
    mem = median(other, "peak_mib") / median("polars", "peak_mib")
    print(
        f"ratio {other}/polars (medians of {len(results['polars'])} and {len(results[other])} "
        f"runs): time {ratio:.2f} (>= 1: polars as fast or faster), peak memory {mem:.2f}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


RUNNERS: dict[tuple[str, str], Any] = {
    ("predictive_maintenance", "pandas"): run_pandas,
    ("predictive_maintenance", "duckdb"): run_duckdb,
    ("part_quality", "duckdb"): run_part_quality_duckdb,
}

if __name__ == "__main__":
    main()
