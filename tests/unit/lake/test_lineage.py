"""Topic lineages on real Delta tables: a pre-lineage lake is adopted by the first topic id met,
a new topic id (the topic recreated) starts its offsets again without being masked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lake import DeltaStore
from lake.accounting import check_accounting
from lake.lineage import lineage_records
from streams.ingest import RawMessage
from tests.unit.lake.batches import TOPIC, messages, pipeline, telemetry


def _tagged(payloads: list[bytes], topic_id: str | None, first_offset: int = 0) -> list[RawMessage]:
    return [m._replace(topic_id=topic_id) for m in messages(payloads, first_offset=first_offset)]


def test_a_legacy_lake_is_adopted_then_a_recreated_topic_is_a_new_lineage(tmp_path: Path) -> None:
    payloads = [e.payload for e in telemetry(60)]
    worker = pipeline(tmp_path)
    worker.process("telemetry", _tagged(payloads[:20], None))  # written before lineages

    again = pipeline(tmp_path).process("telemetry", _tagged(payloads[:30], "id-a"))
    assert (again.consumed, again.skipped) == (10, 20)

    fresh = pipeline(tmp_path).process("telemetry", _tagged(payloads[30:45], "id-b"))
    assert (fresh.consumed, fresh.skipped) == (15, 0)

    causes = {r["topic_id"]: r["cause"] for r in lineage_records(DeltaStore(tmp_path)).to_dicts()}
    assert causes == {"id-a": "migrated", "id-b": "recreated"}
    report = check_accounting(
        DeltaStore(tmp_path), committed={(TOPIC, 0): 15}, topic_ids={TOPIC: "id-b"}
    )
    assert report.ok, [str(v) for v in report.violations]
    old = check_accounting(
        DeltaStore(tmp_path), committed={(TOPIC, 0): 30}, topic_ids={TOPIC: "id-a"}
    )
    assert old.ok, [str(v) for v in old.violations]


_WORKER_PATH = """
import sys
from pathlib import Path
import streams.worker
from tests.unit.lake.batches import messages, pipeline, telemetry
root = Path(sys.argv[1])
payloads = [e.payload for e in telemetry(40)]
pipeline(root).process("telemetry", [m._replace(topic_id="id-a") for m in messages(payloads[:20])])
again = pipeline(root).process(
    "telemetry", [m._replace(topic_id="id-b") for m in messages(payloads[20:])]
)
print(again.consumed, "polars" in sys.modules)
"""


def test_the_ingest_path_resolves_lineages_without_loading_polars(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    run = subprocess.run(
        [sys.executable, "-c", _WORKER_PATH, str(tmp_path / "lake")],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    # A worker's memory: Polars (~35 MiB resident) is for status, verify and curation.
    assert run.stdout.split() == ["20", "False"]
    causes = {
        r["topic_id"]: r["cause"] for r in lineage_records(DeltaStore(tmp_path / "lake")).to_dicts()
    }
    assert causes == {"id-a": "first_seen", "id-b": "recreated"}
