"""BatchWriter: a batch written twice lands once; a crash between its commits, replayed in any
batch shape, ends with every offset in exactly one place. Real Delta tables under ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake import BatchWriter, DeltaStore, app_id, quarantine_table, silver_table
from lake.accounting import check_accounting
from lake.tables import DUPLICATES, RUNS
from tests.unit.lake.batches import (
    TOPIC,
    CapturingWriter,
    Crash,
    CrashingStore,
    messages,
    pipeline,
    with_bad_input,
)

COMMIT_ORDER = (quarantine_table("telemetry"), DUPLICATES, silver_table("telemetry"), RUNS)


def _versions(store: DeltaStore) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for name in COMMIT_ORDER:
        table = store.open(name)
        out[name] = None if table is None else int(table.version())
    return out


def test_the_same_batch_written_twice_is_written_once(tmp_path: Path) -> None:
    events = with_bad_input(600)
    capture = CapturingWriter(DeltaStore(tmp_path))
    pipeline(tmp_path, capture).process("telemetry", messages([e.payload for e in events]))
    (batch,) = capture.batches
    writer = BatchWriter(DeltaStore(tmp_path))

    first = writer.write(batch)
    versions = _versions(writer.store)
    second = writer.write(batch)

    assert first.consumed == 600
    assert first.silver_events + first.quarantined + first.duplicates == 600
    assert first.quarantined > 0
    assert first.duplicates > 0
    assert second.consumed == second.silver_rows == second.quarantined == second.duplicates == 0
    assert second.skipped == 600
    assert _versions(writer.store) == versions, "a skipped batch must not commit anything"
    report = check_accounting(DeltaStore(tmp_path), committed={(TOPIC, 0): 600})
    assert report.ok, report.violations


def test_stored_versions_cover_the_batch_in_every_table(tmp_path: Path) -> None:
    events = with_bad_input(300)
    pipeline(tmp_path).process("telemetry", messages([e.payload for e in events], partition=2))
    store = DeltaStore(tmp_path)
    for name in COMMIT_ORDER:
        assert store.txn_versions(name, [app_id(TOPIC, 2)]) == {app_id(TOPIC, 2): 299}, name
    assert BatchWriter(store).committed_offsets("telemetry", [(TOPIC, 2)]) == {
        app_id(TOPIC, 2): 299
    }


@pytest.mark.parametrize("crash_before", ["ops/duplicates", "silver/", "ops/validation_runs"])
@pytest.mark.parametrize("replay_shape", [(150,), (40, 300), (100, 50, 200)])
def test_a_crash_between_commits_replayed_in_another_shape_lands_each_offset_once(
    tmp_path: Path, crash_before: str, replay_shape: tuple[int, ...]
) -> None:
    events = with_bad_input(400)
    payloads = [e.payload for e in events]
    crashing = BatchWriter(CrashingStore(tmp_path, crash_before))
    with pytest.raises(Crash):
        pipeline(tmp_path, crashing).process("telemetry", messages(payloads[:150]))

    restarted = pipeline(tmp_path)
    start = 0
    for size in replay_shape:
        restarted.process("telemetry", messages(payloads[start : start + size], first_offset=start))
        start += size

    report = check_accounting(DeltaStore(tmp_path), committed={(TOPIC, 0): start})
    assert report.ok, [str(v) for v in report.violations]
    assert report.runs_consumed["telemetry"] == start
    good = sum(1 for e in events[:start] if e.bad_class is None)
    resent = sum(1 for e in events[:start] if e.bad_class == "duplicate_resend")
    assert report.silver_events["telemetry"] == good
    assert report.duplicates["telemetry"] == resent
    assert report.quarantined["telemetry"] == start - good - resent
