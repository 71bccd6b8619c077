"""The ingest pipeline of one micro-batch, independent of Faust so tests and benchmarks can
drive it directly: decode -> validate -> classify -> dedupe -> write.

Every consumed message ends in exactly one place: silver (its rows), quarantine (the decoder
or a drop expectation rejected it, all reasons kept; or its ``event_id`` is already taken by a
message of other content: ``event_id_conflict``) or duplicates (a copy of the same content,
see :mod:`streams.content_hash`, already reached silver within the dedupe horizon, or appeared
earlier in the same batch). A message is atomic: if any of its rows fails a drop expectation,
the whole message is quarantined.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import astuple, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake import (
    DUPLICATES,
    DUPLICATES_SCHEMA,
    QUARANTINE_SCHEMA,
    RUNS,
    BatchOutput,
    RunInfo,
    Sink,
    WriteResult,
    silver_schema,
    silver_table,
)
from maxlake.settings import Settings
from quality import ValidationFailed, ValidationGateway, Verdict
from schemas import EventKind, event_schema_for
from schemas.results import DecodeLimits
from streams.batch_rows import (
    Columns,
    RawMessage,
    duplicate_rows,
    offsets_table,
    quarantine_rows,
    silver_rows,
    tenant_of_topic,
)
from streams.content_hash import EVENT_ID_CONFLICT, UNKNOWN, conflict_detail, kept_digests
from streams.partition_index import PartitionIndex
from streams.sightings import Sightings, id_array
from streams.tally import log_batch

__all__ = [
    "EVENT_ID_CONFLICT",
    "IngestPipeline",
    "RawMessage",
    "log_batch",
    "tenant_of_topic",
    "unique_offsets",
]

logger = logging.getLogger(__name__)

_DECODE_CHUNK = 10_000
"""Messages decoded at a time: the decoder's whole-buffer passes make temporaries of several
times a chunk's bytes (~100 MB at 50,000 snapshots in one go, ~20 MB per 10,000)."""

_TOMBSTONE = (
    "the message value is null (a Kafka tombstone, not an event); ingest topics carry events "
    "only: find the client that sends deletes to this topic"
)


class IngestPipeline:
    """Turns micro-batches of raw messages of one kind into commits of a sink
    (:class:`lake.sink.Sink`; the Delta lake's :class:`lake.BatchWriter` in every worker)."""

    def __init__(
        self,
        settings: Settings,
        gateway: ValidationGateway,
        writer: Sink,
        *,
        worker: str = "worker",
        skip_in_lake: bool = True,
    ) -> None:
        self.settings = settings
        self.skip_in_lake = skip_in_lake
        self.gateway = gateway
        self.writer = writer
        self.handle = writer.handle()
        self.worker = worker
        self.limits = DecodeLimits(
            max_message_bytes=settings.max_message_bytes,
            max_event_age=timedelta(days=settings.max_event_age_days),
            max_future_skew=timedelta(seconds=settings.max_future_skew_s),
            parallel_parse=True,
        )
        self._seen: dict[str, Sightings] = {}
        self._warm: set[tuple[str, str]] = set()

    def forget(self, topic: str, partition: int) -> None:
        """Reload the dedupe state of ``topic`` before its next batch.

        Called when a partition is revoked or assigned: other workers may have written to the
        topic's partitions meanwhile, and a resend may sit on another partition than its first
        copy, so the whole topic's state is reloaded.
        """
        del partition
        self._warm = {w for w in self._warm if w[1] != topic}

    def process(self, kind: EventKind | str, messages: Sequence[RawMessage]) -> WriteResult:
        """Decode, validate, classify, dedupe and write one batch; returns what was written."""
        return self.write(self.prepare(kind, messages))

    def prepare(self, kind: EventKind | str, messages: Sequence[RawMessage]) -> list[BatchOutput]:
        """Decode, validate, classify and dedupe one batch: the outputs to write, in order.

        May run in another thread than :meth:`write` while the previous batch is written (the
        batch engine overlaps them); it reads the lake through its own table handles. The
        outputs must then be written in order, before any later batch of the same partitions.

        When Great Expectations itself fails on a batch (not a failed expectation: an error),
        the batch is split in halves and each half prepared on its own, down to the single
        message that causes it, which is quarantined with reason ``validation_error``. A poison
        message therefore never stops the worker and never takes good messages with it.
        """
        kind = EventKind(kind)
        given, cols = _unique_offsets(messages, Columns.of(messages))
        index: PartitionIndex | None = None
        if self.skip_in_lake:
            messages, cols, index = self._not_in_lake(given, cols)
        else:
            messages = given
        already = len(given) - len(messages)
        if not messages:
            return [self._nothing_new(kind, already)] if already else []
        outputs = self._prepare_split(kind, messages, cols, index)
        if already:
            outputs[0] = replace(outputs[0], already_in_lake=already)
        return outputs

    def _nothing_new(self, kind: EventKind, already: int) -> BatchOutput:
        """An output that writes nothing and counts ``already`` offsets as skipped."""
        now = datetime.now(UTC)
        return BatchOutput(
            kind=kind.value,
            offsets=offsets_table([]),
            silver=silver_schema(kind).empty_table(),
            quarantine=QUARANTINE_SCHEMA.empty_table(),
            duplicates=DUPLICATES_SCHEMA.empty_table(),
            run=RunInfo(str(uuid.uuid4()), self.worker, now, None),
            already_in_lake=already,
        )

    def _prepare_split(
        self,
        kind: EventKind,
        messages: Sequence[RawMessage],
        cols: Columns | None = None,
        index: PartitionIndex | None = None,
    ) -> list[BatchOutput]:
        cols = cols or Columns.of(messages)
        try:
            return [self._prepare_once(kind, messages, cols, index, poison=None)]
        except ValidationFailed as exc:
            if len(messages) == 1:
                logger.warning("quarantining a message GX cannot validate: %s", exc)
                return [self._prepare_once(kind, messages, cols, index, poison=str(exc))]
            half = len(messages) // 2
            return self._prepare_split(kind, messages[:half]) + self._prepare_split(
                kind, messages[half:]
            )

    def _not_in_lake(
        self, messages: Sequence[RawMessage], cols: Columns
    ) -> tuple[Sequence[RawMessage], Columns, PartitionIndex]:
        """``messages`` without those the lake fully accounted already (a re-delivery), their
        columns and their :class:`PartitionIndex` (reused by :meth:`_committed_decisions`).

        They are not decoded or validated again, so the batch's run row counts (warnings
        included) cover new offsets only.
        """
        index = PartitionIndex.of(cols)
        if not messages:
            return messages, cols, index
        done = self.handle.stored_offsets(RUNS, list(index.pairs), index.topic_ids, self.worker)
        if all(v < 0 for v in done.values()):
            return messages, cols, index
        # Every batch after a partition's first gets here: compared as arrays, not one
        # RawMessage per message (~1.5 µs each on a ColumnMessages batch).
        fresh = index.offset > index.per_partition(done, -1)
        if fresh.all():
            return messages, cols, index
        kept = [messages[i] for i in np.flatnonzero(fresh).tolist()]
        logger.info("%s offsets already in the lake, skipped", f"{len(messages) - len(kept):,}")
        cols = Columns.of(kept)
        return kept, cols, PartitionIndex.of(cols)

    def write(self, outputs: Sequence[BatchOutput]) -> WriteResult:
        """Commit prepared outputs in order; the sum of what each added to the lake."""
        total = WriteResult(0, 0, 0, 0, 0, 0, 0.0)
        for output in outputs:
            result = self.writer.write(output)
            total = WriteResult(
                *(a + b for a, b in zip(astuple(total), astuple(result), strict=True))
            )
        return total

    def _prepare_once(
        self,
        kind: EventKind,
        messages: Sequence[RawMessage],
        cols: Columns,
        index: PartitionIndex | None,
        *,
        poison: str | None,
    ) -> BatchOutput:
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        tombstones = None in cols.value
        values: list[bytes] = (
            [v or b"" for v in cols.value] if tombstones else list(cols.value)  # type: ignore[arg-type]
        )
        rows, rejected, event_ids = self._decode(kind, cols.topic, values, started_at)
        if tombstones:
            for idx, value in enumerate(cols.value):
                if value is None:
                    rejected[idx] = ("tombstone", _TOMBSTONE)
        t1 = time.perf_counter()
        rows = self.gateway.convert_units(kind, rows)
        verdict = self._validate(kind, rows) if poison is None else None
        t2 = time.perf_counter()
        reasons: dict[int, tuple[str, list[str], list[str]]] = {
            idx: ("decode", [reason], [detail]) for idx, (reason, detail) in rejected.items()
        }
        if poison is not None:
            for idx in set(rows["_msg"].to_pylist()):
                reasons[idx] = ("validate", ["validation_error"], [poison])
        if verdict is not None and verdict.dropped:
            self._collect_drops(rows, verdict, reasons)
        keep = np.ones(len(messages), dtype=bool)
        keep[list(reasons)] = False
        self._warm_up(kind, cols)
        offsets = offsets_table(cols, None if index is None else index.offset)
        digests = kept_digests(cols.value, keep)
        decided = self._committed_decisions(kind, cols, keep, index)
        duplicate_of, conflicts = self._dedupe(kind, offsets, event_ids, keep, decided, digests)
        for idx in duplicate_of:
            keep[idx] = False
        for idx, first in conflicts.items():
            keep[idx] = False
            reasons[idx] = (
                "dedupe",
                [EVENT_ID_CONFLICT],
                [conflict_detail(event_ids[idx], first)],
            )
        silver = silver_rows(kind, rows, keep, offsets, started_at, digests)
        run = RunInfo(
            run_id=str(uuid.uuid4()),
            worker=self.worker,
            started_at=started_at,
            suite_version=verdict.suite_version if verdict else self.gateway.suite_version(kind),
            registry_version=(
                verdict.registry_version if verdict else self.gateway.registry_version
            ),
            warn_counts=verdict.warn_counts if verdict else {},
            batch_checks={
                name: (check.success, _as_float(check.observed_value))
                for name, check in (verdict.batch_results.items() if verdict else ())
            },
            failed_expectations=verdict.failed_expectations if verdict else (),
            decode_ms=(t1 - t0) * 1000,
            validate_ms=(t2 - t1) * 1000,
        )
        return BatchOutput(
            kind=kind.value,
            offsets=offsets,
            silver=silver,
            quarantine=quarantine_rows(kind, messages, event_ids, reasons, run, started_at),
            duplicates=duplicate_rows(kind, messages, event_ids, duplicate_of, started_at),
            run=run,
        )

    def _decode(
        self,
        kind: EventKind,
        topics: tuple[str, ...],
        values: list[bytes],
        now: datetime,
    ) -> tuple[pa.Table, dict[int, tuple[str, str]], list[str | None]]:
        event_schema = event_schema_for(kind)
        by_topic: dict[str, list[int]] = {}
        if len(set(topics)) == 1:
            by_topic[topics[0]] = list(range(len(topics)))
        else:
            for i, topic in enumerate(topics):
                by_topic.setdefault(topic, []).append(i)
        tables: list[pa.Table] = []
        rejected: dict[int, tuple[str, str]] = {}
        event_ids: list[str | None] = [None] * len(topics)
        chunks = [
            (topic, indices[start : start + _DECODE_CHUNK])
            for topic, indices in by_topic.items()
            for start in range(0, len(indices), _DECODE_CHUNK)
        ]
        for topic, indices in chunks:
            result = event_schema.decode(
                [values[i] for i in indices],
                tenant=tenant_of_topic(topic),
                now=now,
                limits=self.limits,
            )
            index_map = pa.array(indices, pa.int32())
            rows = result.rows
            if rows.num_rows:
                global_msg = pc.take(index_map, rows["_msg"])
                rows = rows.set_column(rows.schema.get_field_index("_msg"), "_msg", global_msg)
                tables.append(rows)
            for rej in result.rejections:
                rejected[indices[rej.index]] = (rej.reason.value, rej.detail)
            for local, eid in enumerate(result.event_ids):
                event_ids[indices[local]] = eid
        if not tables:
            return event_schema.row_schema.empty_table(), rejected, event_ids
        rows = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if len(by_topic) > 1:
            rows = rows.sort_by("_msg")
        return rows, rejected, event_ids

    def _validate(self, kind: EventKind, rows: pa.Table) -> Verdict | None:
        if rows.num_rows == 0:
            return None
        return self.gateway.validate(kind, rows)

    @staticmethod
    def _collect_drops(
        rows: pa.Table, verdict: Verdict, reasons: dict[int, tuple[str, list[str], list[str]]]
    ) -> None:
        msg = rows["_msg"].to_numpy()
        dropped = np.flatnonzero(verdict.drop)
        label = rows["tag"].to_pylist() if "tag" in rows.column_names else None
        explained = verdict.drop_explained
        for row in dropped:
            idx = int(msg[row])
            _, rs, details = reasons.setdefault(idx, ("validate", [], []))
            where = f"tag {label[row]!r}: " if label is not None else ""
            if explained is not None:
                found = explained[row]
            else:
                found = tuple((n, f"{where}failed {n}") for n in verdict.drop_reasons[row])
            for reason, detail in found:
                if reason not in rs:
                    rs.append(reason)
                if detail not in details:
                    details.append(detail)

    def _warm_up(self, kind: EventKind, cols: Columns) -> None:
        seen = self._seen.setdefault(kind.value, Sightings())
        since = date.today() - timedelta(days=self.settings.dedupe_horizon_days)
        for topic in set(cols.topic):
            key = (kind.value, topic)
            if key in self._warm:
                continue
            known = self.handle.recent_event_ids(
                kind.value,
                tenant=tenant_of_topic(topic),
                topic=topic,
                since=since,
            )
            partitions = known["kafka_partition"].to_numpy()
            slots = {int(p): seen.slot(topic, int(p)) for p in np.unique(partitions)}
            digests = (
                known["content_hash"].fill_null(UNKNOWN).to_numpy()
                if "content_hash" in known.column_names
                else None
            )
            seen.set_many(
                id_array(known["event_id"].to_pylist()),
                np.array([slots[p] for p in partitions.tolist()], np.int32),
                known["kafka_offset"].to_numpy(),
                digests,
            )
            self._warm.add(key)
            logger.info("dedupe state of %s: %s event ids", topic, f"{known.num_rows:,}")

    def _committed_decisions(
        self,
        kind: EventKind,
        cols: Columns,
        keep: np.ndarray,
        index: PartitionIndex | None = None,
    ) -> dict[int, bool]:
        """Replayed messages whose duplicate-or-not decision the lake already committed.

        The writer commits duplicates before silver, in separate commits. After a crash between
        them, the replay may classify differently (its batch holds other partitions, or another
        copy of the event reached silver meanwhile), yet each table skips the offsets its stored
        version covers. So the committed decision must stand: at or below the ``ops/duplicates``
        version of its partition a message is a duplicate exactly when that table holds it; at
        or below the silver version (and above the duplicates one) it is not a duplicate.
        Returns message index -> is a duplicate, for those messages only. A pipeline that does
        not write through the worker's sink (``skip_in_lake=False``: a quarantine replay) has
        no committed decisions: every message is classified afresh. ``index``: the batch's
        :class:`PartitionIndex` (built here when None: a half of a split batch).
        """
        if not self.skip_in_lake or not keep.any():
            return {}
        index = index or PartitionIndex.of(cols)
        firsts = index.first_offsets(keep)
        topic_ids = index.topic_ids
        worker = self.worker
        dup_versions = self.handle.stored_offsets(DUPLICATES, list(firsts), topic_ids, worker)
        silver_versions = self.handle.stored_offsets(
            silver_table(kind), list(firsts), topic_ids, worker
        )
        replayed = [
            tp
            for tp, first in firsts.items()
            if first <= max(dup_versions[tp], silver_versions[tp])
        ]
        if not replayed:
            return {}
        decided: dict[int, bool] = {}
        position = {pair: i for i, pair in enumerate(index.pairs)}
        for topic, partition in replayed:
            dup_version = dup_versions[(topic, partition)]
            silver_version = silver_versions[(topic, partition)]
            first = firsts[(topic, partition)]
            in_duplicates = (
                self.handle.duplicate_offsets(
                    kind.value,
                    topic=topic,
                    partition=partition,
                    first=first,
                    last=dup_version,
                    topic_id=topic_ids[topic],
                )
                if first <= dup_version
                else set()
            )
            indices = np.flatnonzero(keep & (index.which == position[(topic, partition)]))
            offsets = index.offset[indices]
            below_dup = offsets <= dup_version
            stored = np.isin(offsets, np.fromiter(in_duplicates, np.int64, len(in_duplicates)))
            for i, is_duplicate in zip(
                indices[below_dup].tolist(), stored[below_dup].tolist(), strict=True
            ):
                decided[i] = is_duplicate
            in_silver = ~below_dup & (offsets <= silver_version)
            decided.update(dict.fromkeys(indices[in_silver].tolist(), False))
        return decided

    def _dedupe(
        self,
        kind: EventKind,
        offsets: pa.Table,
        event_ids: list[str | None],
        keep: np.ndarray,
        decided: dict[int, bool],
        digests: np.ndarray,
    ) -> tuple[dict[int, int | None], dict[int, tuple[str, int, int]]]:
        """Kept messages that repeat an earlier copy's event id: the resends (index -> offset
        of the copy in silver, None when on another partition) and the conflicts (index ->
        topic, partition and offset of the first copy, whose content differs).

        A repeat is a resend when its content hash (``digests``, per message) equals the first
        copy's, or either is unknown (0: rows written before content hashes); otherwise it is a
        conflict. Decisions already committed (``decided``) stand; the copies they keep claim
        their event ids first, so a fresh message of the same event becomes the repeat. Every
        kept copy is remembered as the first sighting of its event id (before the write: a
        retry of the same messages finds them at their own coordinates, so they stay new).
        ``offsets`` is the batch's :func:`offsets_table`.
        """
        seen = self._seen.setdefault(kind.value, Sightings())
        claimed: dict[str, int] = {}
        duplicate_of: dict[int, int | None] = {}
        conflicts: dict[int, tuple[str, int, int]] = {}
        claims: list[int] = []
        for i, is_duplicate in sorted(decided.items()):
            eid = event_ids[i]
            if is_duplicate:
                duplicate_of[i] = None
            elif eid is not None:
                claimed.setdefault(eid, i)
                claims.append(i)
        ids = id_array(event_ids)
        fresh = keep & (ids != None)  # noqa: E711 - elementwise over an object array
        fresh[list(decided)] = False
        undecided = np.flatnonzero(fresh)
        order = np.concatenate([np.array(claims, np.int64), undecided])
        if not len(order):
            return duplicate_of, conflicts
        slots = self._slots(seen, offsets)
        offset = offsets["offset"].to_numpy()
        first_slot, first_offset, first_digest = seen.first_copies(
            ids[order], slots[order], offset[order], digests[order]
        )
        tail = slice(len(claims), None)
        first_slot, first_offset = first_slot[tail], first_offset[tail]
        first_digest = first_digest[tail]
        elsewhere = (first_slot != slots[undecided]) | (first_offset != offset[undecided])
        same_partition = first_slot == slots[undecided]
        own = digests[undecided]
        differs = (first_digest != own) & (first_digest != UNKNOWN) & (own != UNKNOWN)
        for k in np.flatnonzero(elsewhere).tolist():
            idx = int(undecided[k])
            if differs[k]:
                where = seen.topic_partition(int(first_slot[k]))
                conflicts[idx] = (*where, int(first_offset[k]))
            else:
                duplicate_of[idx] = int(first_offset[k]) if same_partition[k] else None
        if claimed:
            # A committed copy, not the earliest sighting, is what a fresh message repeats.
            topics = offsets["topic"]
            partitions = offsets["partition"]
            for idx in undecided.tolist():
                holder = claimed.get(event_ids[idx])  # type: ignore[arg-type]
                if holder is None:
                    continue
                duplicate_of.pop(idx, None)
                conflicts.pop(idx, None)
                if UNKNOWN not in (digests[holder], digests[idx]) and (
                    digests[holder] != digests[idx]
                ):
                    conflicts[idx] = (
                        topics[holder].as_py(),
                        partitions[holder].as_py(),
                        int(offset[holder]),
                    )
                else:
                    same_partition = slots[holder] == slots[idx]
                    duplicate_of[idx] = int(offset[holder]) if same_partition else None
        return duplicate_of, conflicts

    @staticmethod
    def _slots(seen: Sightings, offsets: pa.Table) -> np.ndarray:
        """Per message of ``offsets``, its topic partition's slot in ``seen``."""
        topics = pc.dictionary_encode(offsets["topic"]).combine_chunks()
        names = topics.dictionary.to_pylist()
        pair = topics.indices.to_numpy().astype(np.int64) << 32
        pair |= offsets["partition"].to_numpy().astype(np.int64)
        distinct, which = np.unique(pair, return_inverse=True)
        numbers = [seen.slot(names[int(p) >> 32], int(p) & 0xFFFFFFFF) for p in distinct.tolist()]
        return np.array(numbers, np.int32)[which]


def unique_offsets(messages: Sequence[RawMessage]) -> Sequence[RawMessage]:
    """``messages`` without a repeated (topic, partition, offset): the first copy is kept.

    The engines never hand a batch an offset twice; this is the pipeline's own guard (a
    repeated offset would otherwise reach silver twice in one commit).
    """
    return _unique_offsets(messages, Columns.of(messages))[0]


def _unique_offsets(
    messages: Sequence[RawMessage], cols: Columns
) -> tuple[Sequence[RawMessage], Columns]:
    """:func:`unique_offsets` and the columns of what it keeps."""
    if not cols.has_repeated_offsets():
        return messages, cols
    seen: set[tuple[str, int, int]] = set()
    kept: list[RawMessage] = []
    for m in messages:
        key = (m.topic, m.partition, m.offset)
        if key not in seen:
            seen.add(key)
            kept.append(m)
    logger.warning(
        "batch held %d repeated offset(s), dropped before decoding", len(messages) - len(kept)
    )
    return kept, Columns.of(kept)


def _as_float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
