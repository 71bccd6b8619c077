"""``maxlake quarantine show``: the quarantined messages themselves, safely escaped."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from maxlake.cli import main
from streams.replay import escape_payload
from tests.unit.lake.batches import messages, pipeline, telemetry

HOSTILE = [
    b"\x1b[2J\x1b[31mnot json\x07",
    b'{"event_id": "\xff\xfe", "kind": "telemetry"}',
    b"",
    b"[" * 5000,
    b'{"event_id": "id\\u001b]0;title\\u0007\\nforged: line", "kind": "telemetry"}',
]


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "lake"
    good = [e.payload for e in telemetry(5)]
    result = pipeline(root).process("telemetry", messages([*good, *HOSTILE]))
    assert result.quarantined == len(HOSTILE)
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    return root


def test_show_prints_every_hostile_payload_escaped_on_one_line(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["quarantine", "show", "--kind", "telemetry", "--max-bytes", "100"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\\x1b[2J" in out
    assert "\\xff\\xfe" in out
    assert "(4,900 more bytes)" in out
    payload_lines = [line for line in out.splitlines() if line.startswith("  payload (")]
    assert len(payload_lines) == len(HOSTILE)
    assert out.count("@") == len(HOSTILE)
    assert "event_id id\\x1b]0;title\\x07\\nforged: line" in out  # the id is the sender's too
    assert not any(line.startswith("forged") for line in out.splitlines())


def test_show_json_gives_the_exact_bytes_and_every_reason(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["quarantine", "show", "--json", "--limit", "100"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(base64.b64decode(r["raw_base64"]) for r in rows) == sorted(HOSTILE)
    assert all(r["reasons"] and len(r["reasons"]) == len(r["details"]) for r in rows)
    assert [r["kafka_offset"] for r in rows] == sorted(
        (r["kafka_offset"] for r in rows), reverse=True
    )


def test_show_filters_and_limits(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quarantine", "show", "--json", "--limit", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["quarantine", "show", "--tenant", "northwind-auto"]) == 0
    assert capsys.readouterr().out.strip() == "no quarantined message matches"
    assert main(["quarantine", "show", "--tenant", "nobody"]) == 1
    assert "'nobody' is not a tenant of the registry" in capsys.readouterr().err
    # --since takes a duration back from now, as audit --since does
    assert main(["quarantine", "show", "--since", "30m", "--limit", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("messages 1-1 of ")
    assert main(["quarantine", "show", "--since", "1d", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(HOSTILE)
    # '²'.isdigit() is True and int('²') fails: one line naming the option, not "report it"
    for command in (["audit", "--since", "²h"], ["access", "profile", "x", "--expires", "²d"]):
        assert main([*command, "--out", "p.json"] if command[0] == "access" else command) == 1
        err = capsys.readouterr().err
        assert err.startswith("maxlake: error: --"), err
        assert "report it" not in err


def test_show_pages_with_offset(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quarantine", "show", "--json", "--limit", "100"]) == 0
    every = [json.loads(line)["kafka_offset"] for line in capsys.readouterr().out.splitlines()]
    assert main(["quarantine", "show", "--json", "--limit", "2", "--offset", "1"]) == 0
    page = [json.loads(line)["kafka_offset"] for line in capsys.readouterr().out.splitlines()]
    assert page == every[1:3]
    assert main(["quarantine", "show", "--limit", "2", "--offset", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"messages 2-3 of {len(HOSTILE)}, newest first; --offset 3 for older ones"
    )
    assert main(["quarantine", "show", "--offset", "10"]) == 0
    assert capsys.readouterr().out.strip() == f"no message of {len(HOSTILE)}, newest first"


def test_list_with_a_filter_matching_nothing_does_not_call_the_quarantine_empty(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["quarantine", "list", "--tenant", "voltcell-batteries"]) == 0
    assert capsys.readouterr().out == "no quarantined message matches\n"
    assert main(["quarantine", "list", "--kind", "inspection"]) == 0
    assert capsys.readouterr().out == "no quarantined message matches\n"


def test_a_mistyped_reason_names_the_known_ones(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("show", "list"):
        assert main(["quarantine", command, "--reason", "malformed_jsn"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("maxlake: error: --reason 'malformed_jsn' is not a quarantine reason")
        assert len(err.splitlines()) == 1
        known = err.split("known: ")[1].strip().split(", ")
        assert {"malformed_json", "empty", "validation_error", "unknown_machine"} <= set(known)
    # a known reason that matched nothing is not an error
    assert main(["quarantine", "show", "--reason", "oversized"]) == 0
    assert capsys.readouterr().out.strip() == "no quarantined message matches"


def test_escape_keeps_printable_text_and_marks_the_cut() -> None:
    assert escape_payload(b'{"a": "\xc3\xa9"}', 100) == '{"a": "\u00e9"}'
    assert escape_payload(b"ab\ncd", 3) == "ab\\n ... (2 more bytes)"
