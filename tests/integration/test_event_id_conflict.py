"""Through a real worker (both engines): three messages under one ``event_id``, two of the same
content and one with another reading. Silver keeps the first, the same-content resend is a
duplicate, the other reading is quarantined as ``event_id_conflict`` with its raw bytes, and
``lake verify`` holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
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

pytestmark = pytest.mark.integration

TENANT = "northwind-auto"
EVENT_TIME = (
    (datetime.now(UTC) - timedelta(hours=1))
    .isoformat(timespec="milliseconds")
    .replace("+00:00", "Z")
)


def _reading(value: float, sent_time: str) -> SimEvent:
    payload = {
        "event_id": "nu-dup",
        "schema_version": 1,
        "kind": "telemetry",
        "tenant": TENANT,
        "plant": "stuttgart",
        "line": "block-l1",
        "machine": "cnc-101",
        "event_time": EVENT_TIME,
        "sent_time": sent_time,
        "readings": [{"tag": "spindle_temp", "value": value, "unit": "degC"}],
    }
    return SimEvent(TENANT, "telemetry", b"cnc-101", orjson.dumps(payload), None)


@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_a_reused_event_id_with_other_content_is_quarantined(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, engine: str
) -> None:
    env = IngestEnv(kafka_bootstrap, unique_name, tmp_path, (TENANT,), engine=engine)
    env.create_topics()
    events = [
        _reading(41.0, "2026-12-01T08:00:01.000Z"),
        _reading(41.0, "2026-12-01T08:00:05.000Z"),  # a resend: only sent_time differs
        _reading(85.0, "2026-12-01T08:00:09.000Z"),  # the id reused for another reading
    ]
    with WorkerProcess(env, f"conflict-{engine}").start() as proc:
        proc.wait_ready(timeout_s=240)
        produced = produce(env, events)
        wait_for_lag_zero(env, [proc], produced=produced, timeout_s=120)
        assert proc.terminate() == 0, proc.log_tail()

    silver = read_table(env, "silver/telemetry", ["event_id", "value", "content_hash"])
    assert silver.select("event_id", "value").rows() == [("nu-dup", 41.0)]
    assert silver["content_hash"].null_count() == 0
    duplicates = read_table(env, "ops/duplicates", ["event_id", "kafka_offset", "original_offset"])
    assert duplicates.height == 1
    quarantine = read_table(env, "quarantine/telemetry", ["stage", "reasons", "details", "raw"])
    row = quarantine.row(0, named=True)
    assert quarantine.height == 1
    assert (row["stage"], row["reasons"]) == ("dedupe", ["event_id_conflict"])
    assert duplicates["original_offset"][0] is not None
    assert f"@{duplicates['original_offset'][0]}" in row["details"][0]
    assert row["raw"] == events[2].payload

    verify = run_cli(env, "lake", "verify", timeout_s=600)
    assert verify.returncode == 0, verify.stdout + verify.stderr
