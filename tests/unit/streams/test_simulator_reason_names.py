"""The simulator's bad-input class names differ from the quarantine reasons ``status`` shows:
docs/PRODUCING.md maps one to the other (the same table as ``QUARANTINE_REASONS``, which the
ingest tests check against the lake) and the ``simulate`` summary names the ones that differ."""

from __future__ import annotations

import re
from pathlib import Path

from streams.simulator import BAD_CLASSES, QUARANTINE_REASONS, quarantine_names_line

PRODUCING = Path(__file__).resolve().parents[3] / "docs" / "PRODUCING.md"


def test_producing_md_maps_every_class_to_its_quarantine_reasons() -> None:
    assert set(QUARANTINE_REASONS) == set(BAD_CLASSES)
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| (.*) \|$", PRODUCING.read_text(), re.MULTILINE)
    table = {name: set(re.findall(r"`([a-z0-9_]+)`", cell)) for name, cell in rows}
    documented = {name: table[name] for name in BAD_CLASSES if name in table}
    assert documented == {name: set(reasons) for name, reasons in QUARANTINE_REASONS.items()}


def test_the_summary_names_the_reasons_that_differ() -> None:
    line = quarantine_names_line({"future_time": 26, "past_time": 25, "empty": 3})
    assert line == (
        "(quarantine reasons of these classes: future_time -> event_time_in_future; "
        "past_time -> event_time_too_old)"
    )
    assert quarantine_names_line(["empty", "malformed_json"]) is None
    assert "duplicate_resend -> counted as a duplicate" in str(
        quarantine_names_line(["duplicate_resend"])
    )
