"""Reading a curated split through Delta Sharing against ``maxlake datasets pull``, same run.

Run ``python bench/bench_sharing.py [--rows N] [--repeat R]``. The script publishes one synthetic
dataset version (``bench@v1``, one split ``train`` of ``N`` rows, default 1,000,000: pseudonym
strings, timestamps, floats, integers and a label, as a curated set has them) under a temporary
lake root, with a manifest as ``datasets build`` writes it (contract-enforced, active), adds a
principal with a grant, starts a real ``maxlake serve`` and writes a profile with
``maxlake access profile``. Then each reader runs in its own child process (so its peak RSS is
its own), ``R`` times (default 3), and the script prints rows/s (median), wall time, peak
RSS and how much of it the read added (imports are done before the clock starts):

* **pull**: ``maxlake datasets pull`` (token check, sha256 check, copy, audit row), run
  in-process in the child, then the Parquet file read into pandas: what a team with lake access
  does;
* **sharing-pandas**: ``delta_sharing.load_as_pandas(profile#curated.bench.train)`` (metadata,
  query, signed file URL fetched over HTTP from the server, every request audited);
* **sharing-arrow**: the connector's REST client lists the file, ``pyarrow.parquet`` reads the
  signed URL over HTTP (no pandas).

The ratio printed is each protocol reader's rows/s over pull's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NAME, SPLIT, SHARE = "bench", "train", "curated"


def publish(lake: Path, rows: int) -> None:
    """Write ``curated/bench/v1`` with one split of ``rows`` rows and its manifest."""
    from lake.curation.manifest import Manifest, SplitInfo, file_sha256

    rng = np.random.default_rng(7)
    machines = np.array([f"m_{i:020x}" for i in range(400)])
    start = 1_767_225_600_000_000
    table = pa.table(
        {
            "tenant": pa.array(
                np.array([f"t_{i:020x}" for i in range(8)])[rng.integers(0, 8, rows)]
            ),
            "machine": pa.array(machines[rng.integers(0, len(machines), rows)]),
            "window_start": pa.array(
                start + rng.integers(0, 90 * 86_400, rows) * 1_000_000, pa.timestamp("us", "UTC")
            ),
            **{f"f{i}": pa.array(rng.standard_normal(rows)) for i in range(8)},
            "readings": pa.array(rng.integers(1, 500, rows).astype("uint32")),
            "label": pa.array(rng.integers(0, 2, rows).astype("int8")),
        }
    )
    folder = lake / "curated" / NAME / "v1"
    folder.mkdir(parents=True)
    path = folder / f"{SPLIT}.parquet"
    pq.write_table(table, path, row_group_size=128 * 1024)
    sha = file_sha256(path)
    Manifest(
        name=NAME,
        version=1,
        created_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        status="active",
        spec={"name": NAME, "description": "sharing benchmark", "purpose": "bench"},
        spec_hash="0" * 64,
        job="bench",
        sources={},
        splits={SPLIT: SplitInfo(f"{SPLIT}.parquet", rows, sha, sha)},
        features=[],
        label_columns=["label"],
        key_columns=["tenant", "machine", "window_start"],
        files={},
        quality={},
        content_hash=sha,
        registry_hash="0" * 64,
        maxlake_version="bench",
        contracts=[{"id": "bench", "version": 1, "sha256": "0" * 64}],
        sharing={"enforced": True},
    ).write(folder)


def _cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-P", "-m", "maxlake.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _child(reader: str, arg: str, out: str) -> None:
    """One measured read in this (child) process; prints a JSON line (imports not timed)."""
    import contextlib
    import io

    import delta_sharing
    import fsspec
    from delta_sharing.protocol import DeltaSharingProfile, Table
    from delta_sharing.rest_client import DataSharingRestClient

    from maxlake.cli import main as cli

    before_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if reader == "pull":
        args = ["datasets", "pull", f"{NAME}@1", "--split", SPLIT, "--out", out]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = cli([*args, "--token", os.environ["BENCH_TOKEN"]])
        assert code == 0, printed.getvalue()
        frame: Any = pq.read_table(printed.getvalue().strip().splitlines()[-1]).to_pandas()
        rows = len(frame)
    elif reader == "sharing-pandas":
        rows = len(delta_sharing.load_as_pandas(f"{arg}#{SHARE}.{NAME}.{SPLIT}"))
    else:
        client = DataSharingRestClient(DeltaSharingProfile.read_from_file(arg))
        files = client.list_files_in_table(Table(SPLIT, SHARE, NAME)).add_files
        http = fsspec.filesystem("http")
        rows = pa.concat_tables(pq.read_table(f.url, filesystem=http) for f in files).num_rows
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "rows": rows,
        "seconds": seconds,
        "peak_mib": peak_mib,
        "read_mib": peak_mib - before_mib,
    }
    print(json.dumps(result), flush=True)
    os._exit(0)  # skip interpreter teardown: fsspec's event-loop thread can abort it


def _measure(reader: str, arg: str, env: dict[str, str], out: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", reader, arg, str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    from infra.broker import free_port
    from maxlake.processes import stop_process

    with tempfile.TemporaryDirectory(prefix="bench-sharing-") as tmp:
        root = Path(tmp)
        lake = root / "lake"
        publish(lake, args.rows)
        size_mib = (lake / "curated" / NAME / "v1" / f"{SPLIT}.parquet").stat().st_size / 2**20
        env = {**os.environ, "MAXLAKE_LAKE_ROOT": str(lake), "GX_ANALYTICS_ENABLED": "false"}
        env.pop("MAXLAKE_TOKEN", None)
        out = _cli(env, "access", "principal", "add", "bench-team", "--kind", "model_team")
        env["BENCH_TOKEN"] = out.strip().splitlines()[-1]
        _cli(env, "access", "grant", "bench-team", NAME)
        port = free_port()
        profile = root / "bench.share"
        endpoint = f"http://127.0.0.1:{port}/delta-sharing"
        _cli(env, "access", "profile", "bench-team", "--expires", "1d", "--out", str(profile),
             "--endpoint", endpoint)  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-P", "-m", "maxlake.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(port)
            print(
                f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
                f"load average before: {os.getloadavg()[0]:.2f}; split: {args.rows:,} rows, "
                f"{size_mib:.1f} MiB Parquet"
            )
            results: dict[str, list[dict[str, float]]] = {}
            for i in range(args.repeat):
                for reader in ("pull", "sharing-pandas", "sharing-arrow"):
                    dest = root / f"out-{reader}-{i}"
                    results.setdefault(reader, []).append(_measure(reader, str(profile), env, dest))
            base = statistics.median(args.rows / r["seconds"] for r in results["pull"])
            for reader, runs in results.items():
                assert all(r["rows"] == args.rows for r in runs), (reader, runs)
                rate = statistics.median(args.rows / r["seconds"] for r in runs)
                wall = statistics.median(r["seconds"] for r in runs)
                peak = max(r["peak_mib"] for r in runs)
                read = max(r["read_mib"] for r in runs)
                print(
                    f"{reader:<15} {rate:>12,.0f} rows/s  median {wall:6.2f} s  "
                    f"peak RSS {peak:7.1f} MiB (+{read:.1f} MiB by the read)  "
                    f"x{rate / base:.2f} of pull"
                )
            print(f"load average after: {os.getloadavg()[0]:.2f}")
        finally:
            stop_process(server, timeout_s=30)


def _wait(port: int) -> None:
    import http.client

    for _ in range(3000):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/openapi.json")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("maxlake serve did not answer")


if __name__ == "__main__":
    main()
