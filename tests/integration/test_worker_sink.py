"""docs/EXTENDING.md, "Add a sink", with the real worker command.

``maxlake worker --sink tests.integration.file_sink:file_sink`` consumes simulated traffic
(bad input and resends included) from the real broker into a plugged-in in-memory sink: every
produced offset lands in exactly one of its tables, resends among the duplicates, and no Delta
table is written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from tests.integration.ingest_helpers import (
    KINDS,
    IngestEnv,
    produce,
    simulate,
    wait_for_lag_zero,
    workers,
)

pytestmark = pytest.mark.integration

TENANTS = ("voltcell-batteries",)
SINK = "tests.integration.file_sink:file_sink"


def test_the_worker_writes_every_offset_once_to_the_sink_it_is_given(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    env = IngestEnv(
        kafka_bootstrap,
        unique_name,
        tmp_path,
        TENANTS,
        engine="batch",
        worker_args=("--sink", SINK),
    )
    env.create_topics()
    events = simulate(TENANTS, seed=3, duration_s=300, bad_rate=0.1)
    produced = produce(env, events)

    with workers(env, "plugged") as (worker,):
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=150)
        code = worker.terminate()
    assert code == 0, worker.log_tail()
    assert f"sink: {SINK} (FileSink)" in worker.log_text()

    tables: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for line in (tmp_path / "sink.jsonl").read_text(encoding="utf-8").splitlines():
        for name, coords in json.loads(line).items():
            tables[name].extend((t, p, o) for t, p, o in coords)
    every = [c for coords in tables.values() for c in coords]
    assert len(every) == len(set(every)) == produced
    assert set(tables) <= {
        "ops/duplicates",
        *(f"{area}/{kind}" for area in ("silver", "quarantine") for kind in KINDS),
    }
    resends = sum(e.bad_class == "duplicate_resend" for e in events)
    assert resends > 0
    assert len(tables["ops/duplicates"]) >= resends
    assert tables["quarantine/telemetry"]
    assert not list(env.lake_root.rglob("_delta_log")), "the worker wrote a Delta table"
