"""Data Docs built on demand (`maxlake quality docs`) from recent silver and quarantined rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake import DeltaStore
from maxlake.cli import main
from quality.docs import recent_rows
from schemas import EventKind
from tests.unit.lake.batches import messages, pipeline, with_bad_input


def test_data_docs_render_recent_rows_of_silver_and_quarantine(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    result = pipeline(root).process("telemetry", messages([e.payload for e in with_bad_input(80)]))
    assert result.quarantined

    rows = recent_rows(DeltaStore(root), EventKind.TELEMETRY, 1000)
    assert rows.num_rows >= result.silver_rows

    capfd.readouterr()
    monkeypatch.setenv("MAXLAKE_LAKE_ROOT", str(root))
    assert main(["quality", "docs", "--out", str(tmp_path / "docs"), "--kind", "telemetry"]) == 0
    out, err = capfd.readouterr()
    assert "Calculating Metrics" not in err, "GX progress bars are on"
    assert err.startswith("building Data Docs in "), "GX's first seconds are silent"
    index = Path(out.strip())
    assert index == (tmp_path / "docs" / "index.html").resolve()
    html = index.read_text()
    assert "maxlake.telemetry" in html
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert len(pages) == 1
    page = pages[0].read_text()
    assert "Expectation Validation Result" in page
    assert "Unsuccessful Expectations" in page
    assert "tag_max" in page, "the failing range check is shown"
