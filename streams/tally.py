"""The worker's lines about committed work: one per batch, and one when it stops."""

from __future__ import annotations

import logging
import threading
from collections import Counter

from lake.sink import WriteResult
from schemas import EventKind

__all__ = ["WORKER_TALLY", "WorkerTally", "log_batch"]

logger = logging.getLogger("streams.ingest")  # the batch line's logger since the first release


class WorkerTally:
    """Batches and events committed per event kind since the process started (thread-safe:
    batches of several kinds are written from more than one thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: Counter[str] = Counter()
        self._events: Counter[str] = Counter()

    def add(self, kind: EventKind, result: WriteResult) -> None:
        """Count one committed batch of ``kind``."""
        with self._lock:
            self._batches[kind.value] += 1
            self._events[kind.value] += result.consumed

    def stopped_line(self, signal_name: str, *, clean: bool) -> str:
        """``stopped cleanly on SIGTERM: 12 batches written and committed since start
        (telemetry 36,336 events, machine_event 151), ...``; ``clean=False`` says the last
        batch may be read again instead."""
        with self._lock:
            batches = sum(self._batches.values())
            kinds = ", ".join(f"{kind} {n:,} events" for kind, n in sorted(self._events.items()))
        done = f"{batches:,} batch{'es' * (batches != 1)} written and committed since start"
        done += f" ({kinds})" if kinds else " (nothing to ingest)"
        if clean:
            return f"stopped cleanly on {signal_name}: {done}; the next start resumes after them"
        return (
            f"stopped on {signal_name} with an error: {done}; a batch not yet committed is "
            "read again on the next start"
        )


WORKER_TALLY = WorkerTally()
"""The process's tally; :func:`log_batch` adds every committed batch."""


def log_batch(kind: EventKind, result: WriteResult) -> None:
    """One INFO line per written batch, the same for both engines: events (messages) by
    outcome, and for telemetry the readings (one silver row per tag of a snapshot) too."""
    WORKER_TALLY.add(kind, result)
    rows = f" ({result.silver_rows:,} readings)" if kind is EventKind.TELEMETRY else ""
    logger.info(
        "%s batch: %s events consumed: %s to silver%s, %s quarantined, %s duplicates, "
        "%s already in lake; write %s ms",
        kind.value,
        f"{result.consumed:,}",
        f"{result.silver_events:,}",
        rows,
        *(f"{n:,}" for n in (result.quarantined, result.duplicates, result.skipped)),
        f"{result.write_ms:,.0f}",
    )
