"""A consumer group that never committed (a new MAXLAKE_GROUP_ID before its first worker) shows
the whole log as lag: its lag_high and no_workers alerts say so instead of reading as a lake
that is far behind."""

from __future__ import annotations

from typing import Any

from streams.status import Thresholds, _alerts


def _status(committed: int | None) -> dict[str, Any]:
    return {
        "kafka": {
            "reachable": True,
            "group_id": "plant-a-ingest",
            "group_shared": False,
            "members": [],
            "partitions": [
                {"topic": "t", "partition": 0, "start": 0, "end": 116_280, "committed": committed}
            ],
            "lag_by_topic": {"t": 116_280},
            "total_lag": 116_280,
        },
        "quality": {},
        "local_workers": [],
        "tables": [],
        "offsets": {},
    }


def test_a_group_that_never_committed_says_its_lag_is_the_whole_log() -> None:
    alerts = {a["alert"]: a["detail"] for a in _alerts(_status(None), Thresholds)}
    for name in ("lag_high", "no_workers"):
        assert "group plant-a-ingest has no committed offset, so" in alerts[name]
        assert "a new MAXLAKE_GROUP_ID, or a deleted group (`maxlake groups list`)?" in alerts[name]


def test_a_group_that_committed_keeps_the_plain_alerts() -> None:
    alerts = {a["alert"]: a["detail"] for a in _alerts(_status(0), Thresholds)}
    assert alerts["no_workers"] == "lag but no live group member"
    assert "committed" not in alerts["lag_high"]
