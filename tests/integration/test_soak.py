"""A short soak: ``bench/soak.py`` with real workers, kill -9 of workers and of the broker and a
live producer; its independent accounting finds nothing lost and nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_short_soak_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    work = tmp_path / "soak"
    done = subprocess.run(
        [
            sys.executable, "-m", "bench.soak", "--events", "20000", "--workers", "2",
            "--partitions", "4", "--kills", "3", "--broker-kills", "1", "--duration", "45",
            "--work", str(work),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads((work / "soak.json").read_text())
    assert report["kafka_records"] >= 20000
    assert report["worker_kills"] == 3
    assert report["broker_kills"] == 1
    assert report["lost"] == 0
    assert report["duplicated_offsets"] == 0
    assert report["duplicated_event_ids"] == 0
    assert report["phantom"] == 0
