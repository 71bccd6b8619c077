"""newuser6: ``maxlake status`` of a brand-new lake showed the live workers and lag of another
lake, because both keep the default consumer group id. Status now says which group it reads
and that the default one is shared, with a ``shared_consumer_group`` alert whenever the group
shows workers or offsets (naming that a lake without an ingest table cannot own them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maxlake.cli.ops_cmd import render_status
from maxlake.settings import Settings
from streams import status as status_module
from streams.offsets import PartitionOffsets
from streams.status import Thresholds, _alerts, _kafka

TOPIC = "plant.northwind-auto.telemetry"
OTHER_LAKES_WORKER = {
    "member_id": "m-1",
    "client_id": "aiokafka-0.14.0",
    "host": "/10.0.0.7",
    "partitions": [f"{TOPIC}[0]"],
}


def _kafka_of_group(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> dict[str, Any]:
    """What status reads from a broker where another lake's worker holds the group."""
    monkeypatch.setattr(status_module, "_existing", lambda *_: ([TOPIC], {TOPIC}))
    monkeypatch.setattr(
        status_module,
        "group_offsets",
        lambda *_: [PartitionOffsets(TOPIC, 0, start=0, end=900, committed=400)],
    )
    monkeypatch.setattr(
        status_module, "_members", lambda *_: {"state": "Stable", "members": [OTHER_LAKES_WORKER]}
    )
    return _kafka(settings, [TOPIC], 1.0)


def _status(kafka: dict[str, Any], tables: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "generated_at": "2026-12-02T09:30:00+00:00",
        "lake_root": "/new-lake",
        "kafka": kafka,
        "tables": tables,
        "window_s": 3600.0,
        "quality": {"tenants": None, "recent_s": 300.0, "kinds": {}},
        "local_workers": [],
        "offsets": {},
        "alerts": [],
    }


def test_a_new_lake_on_the_default_group_says_the_workers_and_lag_are_not_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kafka = _kafka_of_group(monkeypatch, Settings(lake_root=str(tmp_path)))
    assert kafka["group_id"] == "maxlake-ingest"
    assert kafka["group_shared"] is True
    status = _status(kafka, tables=[])
    shared = [a for a in _alerts(status, Thresholds) if a["alert"] == "shared_consumer_group"]
    assert len(shared) == 1, _alerts(status, Thresholds)
    detail = shared[0]["detail"]
    assert "maxlake-ingest is the default group id, shared by every lake" in detail
    assert "1 live worker(s)" in detail
    assert "this lake has no ingest table yet, so they are another lake's" in detail
    assert "MAXLAKE_GROUP_ID" in detail
    status["alerts"] = _alerts(status, Thresholds)
    text = render_status(status)
    assert "consumer group maxlake-ingest" in text
    assert "the default group id, shared by every lake on this broker" in text


def test_a_lake_with_a_group_of_its_own_has_no_such_alert(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings(lake_root=str(tmp_path), group_id="plant-a-ingest")
    kafka = _kafka_of_group(monkeypatch, settings)
    assert kafka["group_shared"] is False
    status = _status(kafka, tables=[])
    assert [a for a in _alerts(status, Thresholds) if a["alert"] == "shared_consumer_group"] == []
    assert "shared by every lake" not in render_status(status)
