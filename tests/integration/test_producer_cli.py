"""`maxlake produce FILE` and `maxlake topics` against a real broker."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from maxlake.cli import main
from tests.integration.test_producer import consume_all

pytestmark = pytest.mark.integration

TENANT = "ironbridge-steel"
NO_TOPICS = "voltcell-batteries"
"""A tenant of the registry whose topics are never created here."""


@pytest.fixture
def env(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setenv("MAXLAKE_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("MAXLAKE_TOPIC_PREFIX", unique_name)
    monkeypatch.setenv("MAXLAKE_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))  # the packaged registry
    return unique_name


def _line(i: int, tenant: str = TENANT) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{i}",
            "schema_version": 1,
            "kind": "machine_event",
            "tenant": tenant,
            "plant": "p",
            "line": "l",
            "machine": "m1",
            "event_time": "2026-11-26T10:00:00Z",
            "event_type": "STATE",
            "state": "RUNNING",
        }
    )


def test_produce_sends_objects_and_reports_skipped_lines(
    env: str, kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["topics", "create", "--tenant", TENANT]) == 0
    assert "3 created" in capsys.readouterr().out
    source = tmp_path / "events.jsonl"
    lines = [_line(1), b"[1, 2]", b"", b"{oops", _line(2, NO_TOPICS), _line(3, NO_TOPICS), _line(4)]
    source.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["produce", str(source)]) == 1
    captured = capsys.readouterr()
    assert f"{source}:2: skipped" in captured.err
    assert f"{source}:4: skipped" in captured.err
    for number in (5, 6):
        assert (
            f"{source}:{number}: skipped: topic '{env}.{NO_TOPICS}.machine_event' does not exist; "
            f"create it with `maxlake topics create --tenant {NO_TOPICS}`"
        ) in captured.err
    assert "sent 2" in captured.out
    assert "skipped 4" in captured.out
    records = consume_all(kafka_bootstrap, f"{env}.{TENANT}.machine_event", 2)
    assert [orjson.loads(r.value)["event_id"] for r in records] == ["e1", "e4"]
    assert main(["topics", "create", "--tenant", TENANT]) == 0
    assert "0 created, 3 already existed" in capsys.readouterr().out
    assert main(["topics", "list"]) == 0
    assert f"{env}.{TENANT}.telemetry	4 partition(s)" in capsys.readouterr().out
