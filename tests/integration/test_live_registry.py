"""A running worker follows the live registry: after `maxlake registry add-machine`, the next
batch is validated with the new version (the new machine lands in silver), ``ops/validation_runs``
records the version each batch used, and `quarantine replay` re-validates against the newest."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl
import pytest

from streams.simulator import SimEvent
from tests.integration.ingest_helpers import (
    IngestEnv,
    WorkerProcess,
    produce,
    read_table,
    run_cli,
    wait_for_lag_zero,
)
from tests.integration.test_onboarding import FRAGMENT as NEW_COMPANY
from tests.integration.test_onboarding import TENANT as NEW_TENANT

pytestmark = pytest.mark.integration

TENANT = "northwind-auto"
POLL_S = 1.0


def _reading(machine: str) -> SimEvent:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload = {
        "event_id": f"{machine}-{uuid.uuid4().hex[:12]}",
        "schema_version": 1,
        "kind": "telemetry",
        "tenant": TENANT,
        "plant": "stuttgart",
        "line": "block-l1",
        "machine": machine,
        "event_time": now,
        "sent_time": now,
        "readings": [{"tag": "spindle_speed", "value": 11980, "unit": "rpm"}],
    }
    return SimEvent(TENANT, "telemetry", machine.encode(), orjson.dumps(payload), None)


def _runs(env: IngestEnv) -> pl.DataFrame:
    columns = ["kind", "started_at", "silver_events", "quarantined", "registry_version"]
    runs = read_table(env, "ops/validation_runs", columns)
    return runs.filter(pl.col("kind") == "telemetry").sort("started_at")


def test_a_new_machine_is_accepted_once_the_registry_knows_it(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    env = IngestEnv(kafka_bootstrap, unique_name, tmp_path, (TENANT,), registry_poll_s=POLL_S)
    env.create_topics()
    with WorkerProcess(env, "live").start() as proc:
        proc.wait_ready(timeout_s=240)
        produced = produce(env, [_reading("cnc-101"), _reading("cnc-104")])
        wait_for_lag_zero(env, [proc], produced=produced, timeout_s=120)
        quarantine = read_table(env, "quarantine/telemetry", ["reasons", "details"])
        assert quarantine.height == 1
        assert _runs(env)["registry_version"].to_list() == [0]

        add = run_cli(
            env,
            "registry",
            "add-machine",
            TENANT,
            "stuttgart",
            "block-l1",
            "cnc-104",
            "--type",
            "cnc_mill",
            "--yes",
            "--reason",
            "cnc-104 commissioned",
        )
        assert add.returncode == 0, add.stderr
        assert "stored registry version 1" in add.stdout
        time.sleep(POLL_S + 0.5)  # the documented bound: the next batch after one poll interval
        produced += produce(env, [_reading("cnc-104")])
        wait_for_lag_zero(env, [proc], produced=produced, timeout_s=120)
        runs = _runs(env)
        assert runs["registry_version"].to_list() == [0, 1]
        assert runs.row(1, named=True)["silver_events"] == 1
        assert read_table(env, "quarantine/telemetry", ["reasons"]).height == 1
        assert proc.terminate() == 0, proc.log_tail()

    replay = run_cli(env, "quarantine", "replay", "--kind", "telemetry", "--json", timeout_s=600)
    assert replay.returncode == 0, replay.stderr
    report = json.loads(replay.stdout)
    assert (report["registry_version"], report["replayed"], report["still_invalid"]) == (1, 1, 0)
    machines = read_table(env, "silver/telemetry", ["machine"])["machine"].to_list()
    assert sorted(machines) == ["cnc-101", "cnc-104", "cnc-104"]


def test_a_running_batch_worker_ingests_a_company_added_to_the_registry(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    env = IngestEnv(
        kafka_bootstrap,
        unique_name,
        tmp_path,
        (NEW_TENANT,),
        partitions=1,
        engine="batch",
        registry_poll_s=POLL_S,
        pin_tenants=False,
    )
    with WorkerProcess(env, "follower").start() as proc:
        proc.wait_ready(timeout_s=240)
        fragment = tmp_path / "newco.toml"
        fragment.write_text(NEW_COMPANY)
        applied = run_cli(env, "registry", "apply", str(fragment), "--yes", "--reason", "joins")
        assert applied.returncode == 0, applied.stderr
        created = run_cli(env, "topics", "create", "--tenant", NEW_TENANT)
        assert created.returncode == 0, created.stderr
        event = _reading("cnc-1")
        payload = orjson.loads(event.payload)
        payload.update(tenant=NEW_TENANT, plant="gyor", line="rotor-1")
        produced = produce(
            env, [SimEvent(NEW_TENANT, "telemetry", b"cnc-1", orjson.dumps(payload), None)]
        )
        wait_for_lag_zero(env, [proc], produced=produced, timeout_s=120)
        assert proc.terminate() == 0, proc.log_tail()
        assert "subscribing to 3 new topic(s)" in proc.log_text()
    silver = read_table(env, "silver/telemetry", ["tenant", "machine"])
    assert silver.rows() == [(NEW_TENANT, "cnc-1")]


def test_fix_and_replay_keeps_lake_verify_green(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    """OPERATIONS.md's procedure for an unknown machine: registry add, quarantine replay, then
    the auditor's check. The replayed row carries the Kafka topic id like every worker row, so
    `lake verify` finds the offset in the topic's current lineage."""
    env = IngestEnv(kafka_bootstrap, unique_name, tmp_path, (TENANT,), registry_poll_s=POLL_S)
    env.create_topics()
    with WorkerProcess(env, "replay-verify").start() as proc:
        proc.wait_ready(timeout_s=240)
        produced = produce(env, [_reading("cnc-101"), _reading("cnc-999")])
        wait_for_lag_zero(env, [proc], produced=produced, timeout_s=120)
        assert proc.terminate() == 0, proc.log_tail()
    quarantine = read_table(env, "quarantine/telemetry", ["reasons", "kafka_topic_id"])
    assert quarantine["reasons"].to_list() == [["unknown_machine"]]

    add = run_cli(
        env,
        "registry",
        "add-machine",
        TENANT,
        "stuttgart",
        "block-l1",
        "cnc-999",
        "--type",
        "cnc_mill",
        "--yes",
        "--reason",
        "cnc-999 commissioned",
    )
    assert add.returncode == 0, add.stderr
    replay = run_cli(
        env,
        "quarantine",
        "replay",
        "--kind",
        "telemetry",
        "--reason",
        "unknown_machine",
        timeout_s=600,
    )
    assert replay.returncode == 0, replay.stderr
    assert "moved 1 messages" in replay.stdout

    silver = read_table(env, "silver/telemetry", ["machine", "kafka_topic_id"])
    assert silver["kafka_topic_id"].null_count() == 0
    assert set(silver["kafka_topic_id"].to_list()) == set(quarantine["kafka_topic_id"].to_list())
    verify = run_cli(env, "lake", "verify", timeout_s=600)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "telemetry: 1 quarantined offset(s) replayed to silver" in verify.stdout
