"""What the batch engine does with a partition whose fetched bytes are corrupt.

A record batch that fails its CRC or whose lengths do not add up (:class:`CorruptFetch`, from
:mod:`streams.kafka_records`) is most often damaged on the way (a flaky NIC, a proxy): the same
fetch again gets intact bytes. So the partition alone is paused and fetched again from the same
offset, up to ``MAXLAKE_CORRUPT_FETCH_ATTEMPTS`` times with exponential backoff
(``MAXLAKE_CORRUPT_FETCH_FIRST_WAIT_S``, doubled, at most ``MAXLAKE_CORRUPT_FETCH_MAX_WAIT_S``),
while every other partition goes on. Nothing of the partition
past the corrupt batch is taken, so no offset past it is committed: the lake and the group's
offsets stop right before it.

When every attempt got the same corruption, the broker's own copy is damaged. The partition
stays paused (the worker does not crash-loop, and does not skip the batch: only an operator may
decide that data is lost); it logs one ERROR naming topic, partition, offset and what the
operator can do (docs/OPERATIONS.md, "A corrupt record batch"), shows as
``corrupt_record_batch`` in ``maxlake status`` (through the worker's state file) and in
``/metrics`` (``maxlake_fetch_corrupt{topic,partition}``), and fetches the partition again every
``MAXLAKE_CORRUPT_FETCH_RECHECK_S`` seconds, so it resumes by itself once the operator repaired
or removed the batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import TopicPartition
from aiokafka.errors import RecordTooLargeError

from maxlake.settings import Settings
from streams.kafka_records import CorruptFetch

__all__ = ["CorruptFetches", "next_step"]

logger = logging.getLogger(__name__)


def next_step(tp: TopicPartition, end: int | None) -> str:
    """What the operator does about ``tp``'s damaged batch, ending before ``end`` (its last
    offset + 1, confirmed by the next batch's base offset; None when the fetched bytes do not
    confirm it). The command is given without ``--yes``: run so, it only shows what it would
    delete, for the operator to check before deleting."""
    before = (
        f"--before {end}"
        if end is not None
        else "--before <its last offset + 1> (not confirmed by the fetched bytes: see the guide)"
    )
    return (
        "if an in-sync replica holds an intact copy, restart the partition's leader so that "
        "leadership moves to it and the worker resumes by itself; if no intact copy exists, "
        f"the batch is lost: `maxlake topics delete-records {tp.topic} {tp.partition} "
        f"{before}` (a preview: add --yes once checked); the worker records the deleted "
        "offsets in ops/gaps and goes on (docs/OPERATIONS.md, 'A corrupt record batch')"
    )


class _Consumer(Protocol):
    def pause(self, *partitions: TopicPartition) -> None: ...

    def resume(self, *partitions: TopicPartition) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...


class _Seeker(Protocol):
    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...


class _Sink(Protocol):
    """Where the holds are shown: the worker's state file and metrics (WriteBlock)."""

    def set_corrupt(self, partitions: list[dict[str, Any]]) -> None: ...


@dataclass
class _Hold:
    offset: int
    reason: str
    attempts: int
    since: float
    """Unix time of the first corrupt fetch."""
    retry_at: float
    """Monotonic time of the next fetch (the partition is paused until then)."""
    paused: bool = True
    batch: int | None = None
    """The corrupt batch's base offset (None when the fetched bytes do not show it)."""
    end: int | None = None
    """The offset right after the batch: its last offset + 1 (None: not confirmed by the bytes)."""
    held: bool = False
    """Whether every attempt failed (``corrupt_fetch_attempts``): the broker's copy is damaged."""


def _bounds(hold: _Hold) -> str:
    base = "not known" if hold.batch is None else str(hold.batch)
    end = "not confirmed" if hold.end is None else str(hold.end)
    return f"the batch's base offset {base}, its last offset + 1 {end}"


class CorruptFetches:
    """The partitions of one engine waiting for a corrupt batch to be fetched intact."""

    def __init__(self, sink: _Sink | None, settings: Settings) -> None:
        """Args:
        sink: where the holds are shown (the worker's state file and metrics).
        settings: the retry limits (``corrupt_fetch_*``, ``MAXLAKE_CORRUPT_FETCH_*``).
        """
        self.sink = sink
        self.settings = settings
        self.holds: dict[TopicPartition, _Hold] = {}

    def failed(
        self,
        consumer: _Consumer | None,
        tp: TopicPartition,
        fetch: CorruptFetch,
        *,
        positioned: bool = True,
    ) -> None:
        """``tp``'s fetch at ``fetch.offset`` was corrupt: pause it until its next attempt
        (not ``positioned`` from the lake yet: ignored, the seek fetches it again anyway)."""
        if consumer is None or not positioned:
            return
        hold = self.holds.get(tp)
        if hold is None or hold.offset != fetch.offset:
            hold = self.holds[tp] = _Hold(fetch.offset, fetch.reason, 0, time.time(), 0.0)
        limits = self.settings
        hold.attempts += 1
        hold.held = hold.attempts >= limits.corrupt_fetch_attempts
        hold.reason = fetch.reason
        hold.batch = fetch.batch if fetch.batch is not None else hold.batch
        hold.end = fetch.end if fetch.end is not None else hold.end
        consumer.pause(tp)
        hold.paused = True
        where = f"{tp.topic}[{tp.partition}] offset {fetch.offset}"
        if not hold.held:
            wait = min(
                limits.corrupt_fetch_first_wait_s * 2 ** (hold.attempts - 1),
                limits.corrupt_fetch_max_wait_s,
            )
            logger.warning(
                "%s: %s; attempt %d of %d: this partition is paused and fetched again from "
                "offset %d in %.1f s, the others go on; nothing past it is committed",
                where,
                fetch.reason,
                hold.attempts,
                limits.corrupt_fetch_attempts,
                fetch.offset,
                wait,
            )
        else:
            wait = limits.corrupt_fetch_recheck_s
            log = logger.error if hold.attempts == limits.corrupt_fetch_attempts else logger.debug
            log(
                "%s: corrupt on all %d fetches over %.0f s (%s): the broker's copy is damaged; "
                "the partition stays paused at offset %d (nothing at or past it is in the lake "
                "or committed), the others go on; fetched again every %.0f s; %s; next step: %s",
                where,
                hold.attempts,
                time.time() - hold.since,
                fetch.reason,
                fetch.offset,
                limits.corrupt_fetch_recheck_s,
                _bounds(hold),
                next_step(tp, hold.end),
            )
        hold.retry_at = time.monotonic() + wait
        self._show()

    @staticmethod
    def too_large(
        consumer: _Seeker, exc: RecordTooLargeError
    ) -> tuple[TopicPartition, CorruptFetch] | None:
        """aiokafka's ``RecordTooLargeError``, as the corrupt fetch it is.

        Brokers since Kafka 0.10.1 return a fetch's first record batch whole, however large
        (KIP-74), so a first batch longer than the bytes sent has a damaged length. aiokafka
        moved the partition's position one past the offset when it raised; it is sought back,
        so no offset is skipped. None for a partition no longer assigned (its next owner
        fetches it). Raises ``exc`` again when it names no partition and offset.
        """
        args = exc.args
        if len(args) < 3 or not isinstance(args[1], TopicPartition) or not isinstance(args[2], int):
            raise exc
        tp, offset = args[1], args[2]
        if tp not in consumer.assignment():
            return None
        consumer.seek(tp, offset)
        return tp, CorruptFetch(
            offset,
            f"the fetched record batch at offset {offset} is longer than the bytes the broker "
            "sent (its length field is damaged)",
        )

    def paused(self) -> set[TopicPartition]:
        """Partitions paused for a corrupt fetch (not to be resumed by anyone else)."""
        return {tp for tp, hold in self.holds.items() if hold.paused}

    def resume_due(self, consumer: _Consumer, ready: set[TopicPartition]) -> None:
        """Resume the partitions whose next attempt is due (still assigned and positioned:
        ``ready``; one waiting for the lake stays paused at its placeholder)."""
        now = time.monotonic()
        assigned = consumer.assignment()
        due = [
            tp
            for tp, hold in self.holds.items()
            if hold.paused and hold.retry_at <= now and tp in assigned and tp in ready
        ]
        for tp in due:
            self.holds[tp].paused = False
        if due:
            consumer.resume(*due)

    def fetched(self, tp: TopicPartition, first_offset: int) -> None:
        """Records of ``tp`` from ``first_offset`` on were fetched intact."""
        hold = self.holds.get(tp)
        if hold is not None and first_offset >= hold.offset:
            self._clear(tp, "fetched intact")

    def moved(self, positions: dict[TopicPartition, int]) -> None:
        """Positions moved past a held offset (records deleted, the partition sought)."""
        for tp, position in positions.items():
            hold = self.holds.get(tp)
            if hold is not None and position > hold.offset:
                self._clear(tp, f"position moved to {position}")

    def drop(self, tp: TopicPartition) -> bool:
        """``tp`` was sought or unpositioned: its next fetch decides anew (a topic created
        again must not keep the old incarnation's hold and its advice to delete records).
        Returns whether the hold had paused it (the caller resumes it where it fetches)."""
        hold = self.holds.pop(tp, None)
        if hold is None:
            return False
        logger.info(
            "%s[%d]: the hold at offset %d ends: the partition was sought",
            tp.topic,
            tp.partition,
            hold.offset,
        )
        self._show()
        return hold.paused

    def forget(self, partitions: list[TopicPartition] | set[TopicPartition]) -> None:
        """Revoked partitions: their next owner meets the corruption, if it is still there."""
        for tp in partitions:
            if self.holds.pop(tp, None) is not None:
                logger.info(
                    "%s[%d] revoked while waiting for a corrupt fetch; its next owner fetches it",
                    tp.topic,
                    tp.partition,
                )
                self._show()

    def report(self) -> list[dict[str, Any]]:
        """The holds, as the worker's state file and ``maxlake status`` show them."""
        return [
            {
                "topic": tp.topic,
                "partition": tp.partition,
                "offset": hold.offset,
                "reason": hold.reason,
                "attempts": hold.attempts,
                "since": hold.since,
                "batch_offset": hold.batch,
                "delete_before": hold.end,
                "held": hold.held,
                "next_step": next_step(tp, hold.end) if hold.held else "none: retrying by itself",
            }
            for tp, hold in sorted(self.holds.items())
        ]

    def held_at(self, tp: TopicPartition) -> tuple[int, int | None] | None:
        """``tp``'s held corrupt batch as (the offset it is held at, the offset after the
        batch), None when it is not held (every attempt failed) there."""
        hold = self.holds.get(tp)
        if hold is None or not hold.held:
            return None
        return hold.offset, hold.end

    def _clear(self, tp: TopicPartition, how: str) -> None:
        hold = self.holds.pop(tp)
        logger.warning(
            "%s[%d] offset %d: %s after %d corrupt fetch(es) over %.0f s; the partition goes on",
            tp.topic,
            tp.partition,
            hold.offset,
            how,
            hold.attempts,
            time.time() - hold.since,
        )
        self._show()

    def _show(self) -> None:
        if self.sink is not None:
            self.sink.set_corrupt(self.report())
