"""A record batch damaged in the broker's own log (a byte flipped in a stopped broker's segment
file) neither stops the batch worker nor is skipped: the worker reads everything before it and
every other partition, holds the damaged partition at the batch with one ERROR and a
``corrupt_record_batch`` alert, and goes on by itself once the operator deleted the lost batch
(``maxlake topics delete-records``, at the offset the alert names), which the lake then
records as a gap."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lake.lineage import gap_records
from tests.integration.conftest import DamagedLog
from tests.integration.ingest_helpers import WorkerProcess, assert_invariant, wait_for_lag_zero

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_batch_corrupt_in_the_broker_log_holds_its_partition_only_until_deleted(
    damaged_log: DamagedLog,
) -> None:
    env, topic, partition = damaged_log.env, damaged_log.topic, damaged_log.partition
    base, last, produced = damaged_log.base, damaged_log.last, damaged_log.produced

    with WorkerProcess(env, "w") as worker:
        worker.start()
        worker.wait_for_log(f"{topic}[{partition}] offset {base}: corrupt on all 5", 240)
        assert worker.alive, worker.log_tail()
        offsets = {(p.topic, p.partition): p for p in env.offsets()}
        for (t, p), part in offsets.items():
            if (t, p) == (topic, partition):
                assert part.committed == base, part  # read up to the batch, nothing past it
            else:
                assert part.lag == 0, part  # the other partitions went on
        # On the worker's host, with its MAXLAKE_FAUST_DATADIR (where its state file is).
        status = subprocess.run(
            [sys.executable, "-m", "maxlake.cli", "status", "--json"],
            env=env.environ("w"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        alerts = json.loads(status.stdout)["alerts"]
        held = [a for a in alerts if a["alert"] == "corrupt_record_batch"]
        assert len(held) == 1, alerts
        assert f"{topic}[{partition}]: " in held[0]["detail"]
        assert f"paused at offset {base}" in held[0]["detail"]
        # The offset to delete up to, read from the fetched bytes, and the command.
        delete = ["topics", "delete-records", topic, str(partition), "--before", str(last + 1)]
        assert f"`{' '.join(['maxlake', *delete])}` (a preview" in held[0]["detail"]
        assert "--yes`" not in held[0]["detail"]

        def maxlake(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "maxlake.cli", *argv],
                env=env.environ("w"),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        # The operator's remedy for a single-replica log: the batch is lost; delete it.
        shown = maxlake(*delete)  # without --yes: only shown
        assert shown.returncode == 1, shown.stderr
        assert "would delete" in shown.stdout
        lost = f"offsets {base}..{last} ({last + 1 - base:,} offsets) are not ingested"
        assert lost in shown.stdout, shown.stdout  # only the corrupt batch, by the group's commit
        assert worker.alive
        deleted = maxlake(*delete, "--yes")
        assert deleted.returncode == 0, deleted.stderr
        assert f"its first offset is now {last + 1}" in deleted.stdout
        wait_for_lag_zero(env, [worker], produced=produced, timeout_s=180)
        assert worker.terminate() == 0, worker.log_tail()

    log = worker.log_text()
    assert "Traceback" not in log, worker.log_tail()
    assert log.count("corrupt on all 5") == 1, worker.log_tail()
    gaps = gap_records(env.store()).filter(topic=topic, partition=partition)
    rows = [(r["from_offset"], r["to_offset"], r["cause"]) for r in gaps.iter_rows(named=True)]
    assert rows == [(base, last, "deleted_at_corrupt_batch")]  # not taken for retention
    assert_invariant(env)
