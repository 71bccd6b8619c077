"""kill -9 the worker at seeded random moments while it ingests a live stream with bad input,
restart it each time: in the end every offset is in exactly one place and no event twice."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.integration.ingest_helpers import (
    KINDS,
    IngestEnv,
    Stream,
    WorkerProcess,
    assert_expected,
    assert_invariant,
    committed_total,
    simulate,
    wait_for_lag_zero,
    wait_for_new_commits,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "voltcell-batteries"
KILLS = 5


@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_kill_minus_nine_at_random_points_loses_and_duplicates_nothing(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, engine: str
) -> None:
    rng = random.Random(20261126)
    env = IngestEnv(
        kafka_bootstrap, unique_name, tmp_path, (TENANT,), batch_max_events=1500, engine=engine
    )
    env.create_topics()
    events = simulate((TENANT,), seed=7, duration_s=2400, bad_rate=0.05)
    stream = Stream(env, events, chunks=20, pause_s=1.5)
    worker = WorkerProcess(env, "crashy")
    kills: list[str] = []
    try:
        stream.start()
        for _ in range(KILLS):
            before = committed_total(env)
            worker.start()
            if before < len(events):
                wait_for_new_commits(env, worker, beyond=before)
            else:
                # On a slow machine the stream may be fully ingested before the last kills;
                # they still hit a live worker at a random moment after start-up.
                worker.wait_ready()
            delay = rng.uniform(0.0, 1.5)
            time.sleep(delay)
            worker.kill9()
            kills.append(f"{before}->{committed_total(env)} +{delay:.2f}s")
        stream.join(timeout=120)
        assert stream.error is None, stream.error
        assert stream.sent == len(events)
        worker.start().wait_ready()
        wait_for_lag_zero(env, [worker], produced=len(events), timeout_s=120)
        assert worker.terminate() == 0, worker.log_tail()
    finally:
        if worker.alive:
            worker.kill9()

    assert worker.starts == KILLS + 1, kills
    assert_invariant(env)
    assert_expected(env, events, kinds=KINDS)
