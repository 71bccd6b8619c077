"""Command-line start-up: wall time and peak memory of ``maxlake --help`` and ``maxlake config``.

Run ``python bench/bench_cli_start.py [--runs N]``. Each command runs ``N`` times (default 15)
as a fresh process, interleaved with a bare ``python -c pass`` baseline so machine load hits
all alike; the script prints the median and maximum wall time (ms), the median peak RSS (MiB,
from ``wait4``) and each command's median minus the baseline's. The budget is 0.5 s for both
commands (issue 18); the figures go to docs/BENCHMARKS.md, never into a timed test.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "maxlake --help": [sys.executable, "-P", "-m", "maxlake.cli", "--help"],
    "maxlake config": [sys.executable, "-P", "-m", "maxlake.cli", "config"],
    "maxlake lake --help": [sys.executable, "-P", "-m", "maxlake.cli", "lake", "--help"],
}


def _run_once(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run of ``argv``."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command")
    args = parser.parse_args()
    walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
    rss: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, argv in COMMANDS.items():
            wall, peak = _run_once(argv)
            walls[name].append(wall)
            rss[name].append(peak)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f} at the end"
    )
    base = statistics.median(walls["python -c pass (baseline)"])
    print(f"{'command':<28}{'median ms':>10}{'max ms':>9}{'RSS MiB':>9}{'minus base':>11}")
    for name in COMMANDS:
        median = statistics.median(walls[name])
        print(
            f"{name:<28}{median * 1000:>10.0f}{max(walls[name]) * 1000:>9.0f}"
            f"{statistics.median(rss[name]):>9.0f}{(median - base) * 1000:>10.0f}"
        )


if __name__ == "__main__":
    main()
