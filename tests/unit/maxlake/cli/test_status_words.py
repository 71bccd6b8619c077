"""``maxlake status`` says what its figures mean: lag in messages, what ``small`` and the rate
columns are, when the quarantine reasons are cut to the top 5, and that ``--no-kafka`` skipped
the broker (never "unavailable" or ``reachable: false``, which read as "broker down")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maxlake.cli import main
from maxlake.cli.ops_cmd import render_status


def _status(kafka: dict[str, Any], reasons: dict[str, int]) -> dict[str, Any]:
    telemetry = {
        "batches": 21,
        "consumed": 44_003,
        "events_per_s": 12.2,
        "recent_events_per_s": 497.0,
        "quarantined": sum(reasons.values()),
        "quarantine_rate": 0.003,
        "duplicates": 14,
        "quarantined_by_reason": reasons,
        "failed_batch_checks": {},
    }
    machine_event = {**telemetry, "consumed": 24, "events_per_s": 24 / 3600}
    machine_event.update(recent_events_per_s=0.0, quarantined_by_reason={}, quarantined=0)
    return {
        "generated_at": "2026-12-02T09:30:00+00:00",
        "lake_root": "/lake",
        "kafka": kafka,
        "tables": [
            {
                "table": "silver/telemetry",
                "version": 20,
                "files": 42,
                "small_files": 38,
                "last_commit_age_s": 0.0,
            }
        ],
        "window_s": 3600.0,
        "quality": {
            "tenants": None,
            "recent_s": 300.0,
            "kinds": {"telemetry": telemetry, "machine_event": machine_event},
        },
        "alerts": [],
    }


def test_status_names_units_columns_and_a_cut_reason_list() -> None:
    kafka: dict[str, Any] = {
        "checked": True,
        "reachable": True,
        "error": None,
        "group_id": "maxlake-ingest",
        "group_state": "Stable",
        "members": [],
        "partitions": [],
        "total_lag": 1_208,
    }
    reasons = {f"reason_{i:02d}": 20 - i for i in range(14)}
    lines = render_status(_status(kafka, reasons)).splitlines()
    assert any("total lag 1,208 messages" in line for line in lines)
    assert "(small: files beyond one per partition; `maxlake lake compact` merges them)" in lines
    assert any(
        "5-min ev/s: consumed by the batches of the last 5 min / 5 min" in ln for ln in lines
    )
    assert any("quar. %: quarantined / consumed" in line for line in lines)
    header = next(line for line in lines if "quarantined" in line and "dups" in line)
    assert "5-min ev/s" in header
    assert "quar. %" in header
    row = next(line for line in lines if line.strip().startswith("telemetry"))
    assert row.split()[3:5] == ["12.2", "497.0"]
    event_row = next(line for line in lines if line.strip().startswith("machine_event"))
    assert event_row.split()[3] == "0.0067"
    listed = [line for line in lines if "telemetry quarantined reason_" in line]
    assert len(listed) == 5
    assert (
        "    (telemetry: top 5 of 14 reasons; `--json` or "
        "`maxlake quarantine list --kind telemetry` for all)"
    ) in lines
    few = render_status(_status(kafka, {"a": 1, "b": 2}))
    assert "top 5 of" not in few


def test_no_kafka_says_skipped_in_text_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    assert main(["status", "--no-kafka"]) == 0
    out = capsys.readouterr().out
    assert "kafka: not checked (--no-kafka)" in out
    assert "unavailable" not in out

    assert main(["status", "--no-kafka", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["kafka"] == {"checked": False, "reachable": None, "error": None}
    assert not [a for a in status["alerts"] if a["alert"] == "kafka_unreachable"]
