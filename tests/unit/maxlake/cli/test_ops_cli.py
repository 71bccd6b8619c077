"""The operations commands end to end in-process (no broker): backfill, quarantine list and
replay, lake-only status and Data Docs, reading their settings from MAXLAKE_* variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maxlake.cli import main
from tests.unit.lake.batches import messages, telemetry
from tests.unit.streams.suites import NARROWED
from tests.unit.streams.test_replay import _max_value, _strict_pipeline


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_a_backfill_with_a_bad_line_exits_1_and_its_rerun_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(tmp_path / "lake"))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(telemetry(1)[0].payload + b"\n{broken\n")
    code = main(["backfill", str(bad), "--kind", "telemetry", "--json"])
    printed = capsys.readouterr()
    report = json.loads(printed.out)
    assert (code, report["quarantined"], report["silver_events"]) == (1, 1, 1)
    assert "failed validation and are in quarantine (exit 1)" in printed.err
    code, out = _run(capsys, "backfill", str(bad), "--kind", "telemetry", "--json")
    assert (code, json.loads(out)["already_in_lake"]) == (0, 2)


def test_backfill_replay_list_status_and_docs_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake"
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    payloads = [e.payload for e in telemetry(30)]
    limit = sorted(_max_value(p) for p in payloads)[20]
    strict = _strict_pipeline(root, tmp_path, limit)
    quarantined = strict.process("telemetry", messages(payloads)).quarantined

    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\n".join(e.payload for e in telemetry(40)[30:]) + b"\n")
    code, out = _run(capsys, "backfill", str(history), "--kind", "telemetry", "--json")
    assert code == 0
    assert json.loads(out)["silver_events"] == 10
    code, out = _run(capsys, "backfill", str(history), "--kind", "telemetry", "--json")
    assert (code, json.loads(out)["already_in_lake"]) == (0, 10)

    code, out = _run(capsys, "quarantine", "list", "--json")
    assert code == 0
    assert [(r["reason"], r["messages"], r["replayed"]) for r in json.loads(out)] == [
        (NARROWED, quarantined, 0)
    ]

    args = ("quarantine", "replay", "--kind", "telemetry", "--json")
    # the too-strict copy _strict_pipeline wrote: replaying with it changes nothing
    code, out = _run(capsys, *args, "--suites-dir", str(tmp_path / "strict-suites"))
    assert (code, json.loads(out)["still_invalid"]) == (0, quarantined)
    code, out = _run(capsys, *args, "--dry-run")
    assert (code, json.loads(out)["replayed"]) == (0, quarantined)
    code, out = _run(capsys, *args)
    assert json.loads(out)["replayed"] == quarantined
    code, out = _run(capsys, *args)
    assert (json.loads(out)["replayed"], json.loads(out)["skipped_already_replayed"]) == (
        0,
        quarantined,
    )

    code, out = _run(capsys, "lake", "verify", "--no-kafka", "--json")
    assert (code, json.loads(out)["ok"]) == (0, True)

    code, out = _run(capsys, "status", "--no-kafka", "--json")
    status = json.loads(out)
    assert status["quality"]["kinds"]["telemetry"]["consumed"] == 40
    assert status["alerts"] == [
        {"alert": "quarantine_rate_high", "detail": status["alerts"][0]["detail"]}
    ]
    code, out = _run(capsys, "status", "--no-kafka")
    assert code == 0
    assert "quarantined tag_value_not_above_physical_max" in out

    code, out = _run(
        capsys, "quality", "docs", "--out", str(tmp_path / "docs"), "--kind", "telemetry"
    )
    assert code == 0
    assert Path(out.strip()).is_file()
