"""A short soak: ``bench/soak.py`` with real workers, kill -9 of workers and of the broker and a
live producer; its independent accounting finds nothing lost and nothing twice.

The workers start before the broker (they wait for it), the paced stream starts once a worker
has written, two worker kills and one broker kill fall on that live stream (the broker kill
while workers write; a worker restarted meanwhile starts during the outage). Nothing may crash:
a worker that exits by itself is counted by the harness. About 1.5-2.5 minutes on a loaded
2-core machine, most of it JVM and worker start-up.
"""

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
            sys.executable, "-m", "bench.soak", "--events", "4000", "--workers", "2",
            "--partitions", "4", "--kills", "2", "--broker-kills", "1", "--duration", "20",
            "--session-timeout", "6", "--drain-timeout", "300", "--work", str(work),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads((work / "soak.json").read_text())
    assert report["kafka_records"] >= 4000
    assert report["worker_kills"] == 2
    assert report["broker_kills"] == 1
    assert report["lost"] == 0
    assert report["duplicated_offsets"] == 0
    assert report["duplicated_event_ids"] == 0
    assert report["phantom"] == 0
    assert report["worker_crashes"] == 0, done.stdout[-4000:]
    assert report["final_lag"] == 0, done.stdout[-4000:]
