"""Real batches for writer, accounting and pipeline tests: simulator bytes, a real GX gateway,
real Delta tables under ``tmp_path``. No Kafka: messages carry made-up coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pyarrow as pa

from lake import BatchOutput, BatchWriter, DeltaStore, Sink, WriteResult
from maxlake.settings import Settings
from quality import ValidationGateway
from schemas import load_registry
from streams.ingest import IngestPipeline, RawMessage
from streams.simulator import BAD_CLASSES, SimEvent, Simulator

TENANT = "ironbridge-steel"
TOPIC = f"maxlake.{TENANT}.telemetry"


@cache
def gateway() -> ValidationGateway:
    """One gateway per test process: building it imports Great Expectations (seconds)."""
    return ValidationGateway(load_registry())


@cache
def _events(seed: int, bad_rate: float) -> tuple[SimEvent, ...]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=600)
    sim = Simulator(load_registry(), seed=seed, start=start, tenants=[TENANT], bad_rate=bad_rate)
    return tuple(e for e in sim.events(600) if e.kind == "telemetry")


def telemetry(n: int, *, seed: int = 1, bad_rate: float = 0.0) -> list[SimEvent]:
    """The first ``n`` simulated telemetry messages of one tenant (bad ones labelled)."""
    events = _events(seed, bad_rate)
    assert len(events) >= n, f"only {len(events)} simulated events"
    return list(events[:n])


def with_bad_input(n: int) -> list[SimEvent]:
    """Telemetry where a quarter is bad input, resends included."""
    events = telemetry(n, seed=3, bad_rate=0.25)
    classes = {e.bad_class for e in events}
    assert "duplicate_resend" in classes
    assert len(classes - {None}) >= min(len(BAD_CLASSES), n // 40)
    return events


def messages(
    payloads: Sequence[bytes],
    *,
    partition: int = 0,
    first_offset: int = 0,
    topic: str = TOPIC,
) -> list[RawMessage]:
    """Consecutive offsets of one partition."""
    return [
        RawMessage(topic, partition, first_offset + i, None, b"k", p)
        for i, p in enumerate(payloads)
    ]


def settings(root: Path) -> Settings:
    """Settings of a lake under ``root``."""
    return Settings(lake_root=str(root))


def pipeline(root: Path, writer: Sink | None = None) -> IngestPipeline:
    """A fresh pipeline (a fresh worker process, as far as dedupe state goes)."""
    return IngestPipeline(
        settings(root), gateway(), writer or BatchWriter(DeltaStore(root)), worker="test"
    )


class CapturingWriter(BatchWriter):
    """Keeps the classified batches instead of writing them."""

    def __init__(self, store: DeltaStore) -> None:
        super().__init__(store)
        self.batches: list[BatchOutput] = []

    def write(self, batch: BatchOutput) -> WriteResult:
        self.batches.append(batch)
        return WriteResult(batch.offsets.num_rows, 0, 0, 0, 0, 0, 0.0)


def captured_batch(root: Path, n: int = 400) -> BatchOutput:
    """The one classified batch of ``n`` telemetry events with bad input
    (:func:`with_bad_input`), as the pipeline hands it to the writer; not written."""
    capture = CapturingWriter(DeltaStore(root))
    pipeline(root, capture).process("telemetry", messages([e.payload for e in with_bad_input(n)]))
    (batch,) = capture.batches
    return batch


class Crash(Exception):
    """The simulated power cut."""


class CrashingStore(DeltaStore):
    """Dies right before the commit to the first table whose name starts with ``crash_before``."""

    def __init__(self, root: Path, crash_before: str) -> None:
        super().__init__(root)
        self.crash_before = crash_before

    def append(
        self,
        name: str,
        data: pa.Table,
        *,
        partition_by: Sequence[str] | None,
        txns: Mapping[str, int],
        base: Mapping[str, int] | None = None,
    ) -> int:
        if name.startswith(self.crash_before):
            raise Crash(f"power cut before the {name} commit")
        return super().append(name, data, partition_by=partition_by, txns=txns, base=base)
