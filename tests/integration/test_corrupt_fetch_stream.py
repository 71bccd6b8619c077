"""The stream engine (Faust) with a record batch damaged in the broker's log: it does not
retry or hold the partition like the batch engine (test_corrupt_fetch.py), but it must neither
skip the batch nor commit past it, and it must stop with one ERROR naming the partition, the
offset and what to do. Before 2026-12-02 it crashed with aiokafka's bare
``CorruptRecordException("Invalid CRC - TopicPartition(...)")``: no offset, no next step.
The documented remedy is then tested too: a batch-engine worker on the same group ingests
everything before the batch and holds the partition there."""

from __future__ import annotations

import dataclasses
import time

import pytest

from tests.integration.conftest import DamagedLog
from tests.integration.ingest_helpers import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_stream_engine_stops_at_a_corrupt_batch_naming_it_and_skips_nothing(
    damaged_log: DamagedLog,
) -> None:
    env = dataclasses.replace(damaged_log.env, engine="stream")
    topic, partition, base = damaged_log.topic, damaged_log.partition, damaged_log.base

    where = f"{topic}[{partition}] offset {base}: the fetched record batch is corrupt"
    with WorkerProcess(env, "s") as stream:
        for _ in range(2):  # a restarted stream worker meets the same batch
            stream.start()
            stream.wait_for_log(where, 240)
            deadline = time.monotonic() + 120
            while stream.alive and time.monotonic() < deadline:
                time.sleep(0.5)
            assert not stream.alive, stream.log_tail()
            assert stream.proc is not None
            assert stream.proc.returncode != 0
            committed = {(p.topic, p.partition): p.committed for p in env.offsets()}
            assert (committed[(topic, partition)] or 0) <= base, committed
    log = stream.log_text()
    assert "docs/OPERATIONS.md, 'A corrupt record batch'" in log, stream.log_tail()
    assert "MAXLAKE_INGEST_ENGINE=batch" in log

    # The remedy the error names: the batch engine on the same group and lake.
    with WorkerProcess(damaged_log.env, "b") as batch:
        batch.start()
        batch.wait_for_log(f"{topic}[{partition}] offset {base}: corrupt on all 5", 300)
        parts = {(p.topic, p.partition): p for p in env.offsets()}
        for (t, p), part in parts.items():
            if (t, p) == (topic, partition):
                assert part.committed == base, part  # read up to the batch, nothing past it
            else:
                assert part.lag == 0, part
        assert batch.terminate() == 0, batch.log_tail()
