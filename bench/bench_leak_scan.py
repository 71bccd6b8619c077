"""The split-value identifier scan (``lake.sharing.leaks.frame_leaks``) on 1,000,000 rows.

Run ``python bench/bench_leak_scan.py [OLD_LEAKS_PY]``: a frame of pseudonyms, labels, tag
names and floats against 306 raw ids, median of 5 runs; with the path of another version of
``lake/sharing/leaks.py`` (``git show REV:lake/sharing/leaks.py > old.py``) it times both,
interleaved, and prints the ratio.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from types import ModuleType

import numpy as np
import polars as pl

from lake.sharing import leaks


def _load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("other_leaks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rng = np.random.default_rng(1)
n = 1_000_000
frame = pl.DataFrame(
    {
        "machine": [f"m_{x:020x}" for x in rng.integers(0, 2**63, 200)] * (n // 200),
        "label": rng.choice(["PASS", "FAIL", "REWORK"], n),
        "tag": rng.choice(["spindle_temp", "vibration_rms", "strip_thickness"], n),
        "mean": rng.normal(30, 2, n),
    }
)
raw = [f"cnc-{i}" for i in range(100, 400)] + [
    "northwind-auto",
    "stuttgart",
    "f1",
    "f2",
    "12",
    "SN-0001",
]
modules: list[tuple[str, ModuleType]] = [("this", leaks)]
if len(sys.argv) > 1:
    modules.append(("other", _load(sys.argv[1])))
medians: dict[str, list[float]] = {}
for _ in range(2):
    for name, module in modules:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            module.frame_leaks(frame, raw)
            times.append(time.perf_counter() - start)
        medians.setdefault(name, []).append(statistics.median(times))
        print(f"{name}: median {statistics.median(times) * 1000:.0f} ms")
if "other" in medians:
    print(f"this/other: {min(medians['this']) / min(medians['other']):.2f}")
