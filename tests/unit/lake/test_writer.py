"""BatchWriter: a batch written twice lands once; a crash between its commits, replayed in any
batch shape, ends with every offset in exactly one place. Real Delta tables under ``tmp_path``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest

from lake import BatchOutput, BatchWriter, DeltaStore, app_id, quarantine_table, silver_table
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
        out[name] = store.version(name)
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
    assert BatchWriter(store).committed_offsets("telemetry", [(TOPIC, 2)]) == {(TOPIC, 2): 299}


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
    # The runs rows (what `maxlake status` reads) count the repaired offsets' outcomes too,
    # not only what the repairing write appended.
    runs = DeltaStore(tmp_path).read(RUNS)
    assert runs is not None
    sums = {c: sum(runs[c].to_pylist()) for c in ("silver_events", "quarantined", "duplicates")}
    assert sums == {
        "silver_events": good,
        "quarantined": start - good - resent,
        "duplicates": resent,
    }


def test_a_batch_holding_offsets_twice_is_written_once(tmp_path: Path) -> None:
    events = with_bad_input(300)
    capture = CapturingWriter(DeltaStore(tmp_path))
    pipeline(tmp_path, capture).process("telemetry", messages([e.payload for e in events]))
    (batch,) = capture.batches
    doubled = replace(
        batch,
        offsets=pa.concat_tables([batch.offsets, batch.offsets]),
        silver=pa.concat_tables([batch.silver, batch.silver]),
        quarantine=pa.concat_tables([batch.quarantine, batch.quarantine]),
        duplicates=pa.concat_tables([batch.duplicates, batch.duplicates]),
    )

    result = BatchWriter(DeltaStore(tmp_path)).write(doubled)

    assert result.consumed == 300
    report = check_accounting(DeltaStore(tmp_path), committed={(TOPIC, 0): 300})
    assert report.ok, report.violations


class _RacingStore(DeltaStore):
    """Before its first commit, another writer commits some of the same offsets."""

    def __init__(self, root: Path, rival: BatchOutput) -> None:
        super().__init__(root)
        self.rival: BatchOutput | None = rival

    def append(
        self,
        name: str,
        data: pa.Table,
        *,
        partition_by: Sequence[str] | None,
        txns: Mapping[str, int],
        base: Mapping[str, int] | None = None,
    ) -> int:
        if self.rival is not None:
            rival, self.rival = self.rival, None
            BatchWriter(DeltaStore(self.root)).write(rival)
        return super().append(name, data, partition_by=partition_by, txns=txns, base=base)


def test_two_writers_racing_on_the_same_offsets_write_each_once(tmp_path: Path) -> None:
    events = with_bad_input(400)
    payloads = [e.payload for e in events]
    pipeline(tmp_path).process("telemetry", messages(payloads[:100]))
    capture = CapturingWriter(DeltaStore(tmp_path))
    pipeline(tmp_path, capture).process("telemetry", messages(payloads[100:], first_offset=100))
    pipeline(tmp_path, capture).process("telemetry", messages(payloads[100:250], first_offset=100))
    mine, rival = capture.batches
    store = _RacingStore(tmp_path, rival)
    for name in COMMIT_ORDER:
        store.version(name)

    BatchWriter(store).write(mine)

    report = check_accounting(DeltaStore(tmp_path), committed={(TOPIC, 0): 400})
    assert report.ok, report.violations
