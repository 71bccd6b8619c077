"""Topic lineages on real Delta tables: a pre-lineage lake is adopted by the first topic id met,
a new topic id (the topic recreated) starts its offsets again without being masked."""

from __future__ import annotations

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
