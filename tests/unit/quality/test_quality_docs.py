"""Data Docs built on demand from recent silver and quarantined rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake import DeltaStore
from quality.docs import build_data_docs, recent_rows
from schemas import EventKind
from tests.unit.lake.batches import messages, pipeline, with_bad_input


def test_data_docs_render_recent_rows_of_silver_and_quarantine(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake"
    result = pipeline(root).process("telemetry", messages([e.payload for e in with_bad_input(80)]))
    assert result.quarantined

    rows = recent_rows(DeltaStore(root), EventKind.TELEMETRY, 1000)
    assert rows.num_rows >= result.silver_rows

    capfd.readouterr()
    index = build_data_docs(root, tmp_path / "docs", kinds=(EventKind.TELEMETRY,))
    assert "Calculating Metrics" not in capfd.readouterr().err, "GX progress bars are on"
    assert index == (tmp_path / "docs" / "index.html").resolve()
    html = index.read_text()
    assert "maxlake.telemetry" in html
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert len(pages) == 1
    page = pages[0].read_text()
    assert "Expectation Validation Result" in page
    assert "Unsuccessful Expectations" in page
    assert "tag_max" in page, "the failing range check is shown"
