"""``maxlake produce FILE``: a line that cannot reach an ingest topic (a tenant not in the
registry, a misspelled kind) is skipped with its line number and reason; the rest is sent."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from infra.broker import free_port
from maxlake.cli import main
from streams.spool import Spool


def _line(event_id: str, **fields: str) -> bytes:
    event = {
        "event_id": event_id,
        "schema_version": 1,
        "kind": "machine_event",
        "tenant": "northwind-auto",
        "plant": "stuttgart",
        "line": "l1",
        "machine": "cnc-101",
        "event_time": "2026-11-26T10:00:00Z",
        "event_type": "STATE",
        "state": "RUNNING",
    }
    return orjson.dumps(event | fields)


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No broker (events go to this spool) and an empty lake (the packaged registry)."""
    monkeypatch.setenv("MAXLAKE_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("MAXLAKE_SPOOL_DIR", str(tmp_path / "spool"))
    return tmp_path / "spool"


def test_lines_of_unknown_tenants_and_kinds_are_skipped_and_the_rest_is_sent(
    spool: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "events.jsonl"
    lines = [
        _line("good-1"),
        b"{not json",
        _line("typo", kind="telemtry"),
        _line("acme", tenant="acme"),
        _line("short", tenant="northwind"),
        _line("good-2", kind="telemetry"),
    ]
    source.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["produce", str(source)]) == 3  # skipped lines, and the rest still in the spool
    captured = capsys.readouterr()
    err = captured.err
    assert f"{source}:2: skipped: not valid JSON" in err
    assert (
        f"{source}:3: skipped: kind 'telemtry' is not an event kind (did you mean telemetry?); "
        "kinds: "
    ) in err
    assert f"{source}:4: skipped: tenant 'acme' is not a tenant of the registry; known: " in err
    assert "circuitry-electronics, ironbridge-steel, northwind-auto, voltcell-batteries" in err
    assert f"{source}:5: skipped: tenant 'northwind' is not a tenant of the registry " in err
    assert "(did you mean northwind-auto?)" in err
    assert f"skipped line(s) 2, 3, 4, 5 of {source}" in err
    assert "skipped 4" in captured.out
    assert "lines 6:" in captured.out
    with Spool(spool) as kept:
        records, _ = kept.read(100)
    assert [orjson.loads(r.value)["event_id"] for r in records] == ["good-1", "good-2"]
    assert [r.topic for r in records] == [
        "maxlake.northwind-auto.machine_event",
        "maxlake.northwind-auto.telemetry",
    ]


def test_with_topic_lines_are_sent_as_they_are(
    spool: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(_line("acme", tenant="acme", kind="telemtry") + b"\n")
    assert main(["produce", str(source), "--topic", "maxlake.northwind-auto.telemetry"]) == 3
    assert "skipped 0" in capsys.readouterr().out
    with Spool(spool) as kept:
        records, _ = kept.read(100)
    assert [orjson.loads(r.value)["event_id"] for r in records] == ["acme"]
