"""What the lake must hold and checks that it does.

Expectations come from the simulator's own ``bad_class`` labels (:func:`expected_outcome`), never
from the lake itself; :func:`assert_each_offset_once` reads Kafka and Delta directly, nothing of
maxlake.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson
import polars as pl
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from kafka import KafkaConsumer, TopicPartition

from lake.accounting import AccountingReport
from streams.simulator import QUARANTINE_REASONS as SIMULATOR_REASONS
from streams.simulator import SimEvent
from tests.integration.ingest_helpers.env import KINDS, IngestEnv

__all__ = [
    "QUARANTINE_REASONS",
    "Expected",
    "assert_each_offset_once",
    "assert_expected",
    "assert_invariant",
    "event_id_of",
    "expected_outcome",
    "read_table",
    "rows_of",
    "silver_event_ids",
    "workers_in_runs",
]

QUARANTINE_REASONS: dict[str, frozenset[str]] = {
    name: frozenset(reasons) for name, reasons in SIMULATOR_REASONS.items() if reasons
}
"""Every bad-input class except ``duplicate_resend`` -> the quarantine reasons it may carry."""


@dataclass
class Expected:
    """What the lake must hold for one kind, from the simulator's labels."""

    silver_event_ids: Counter[str] = field(default_factory=Counter)
    silver_rows: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    duplicate_event_ids: Counter[str] = field(default_factory=Counter)
    consumed: int = 0


def event_id_of(payload: bytes) -> str:
    """The ``event_id`` of a well-formed payload."""
    return str(orjson.loads(payload)["event_id"])


def rows_of(kind: str, payload: bytes) -> int:
    """Silver rows one good message becomes (one per reading for telemetry)."""
    if kind != "telemetry":
        return 1
    event = orjson.loads(payload)
    return len(event["readings"]) if "readings" in event else 1


def expected_outcome(events: Iterable[SimEvent]) -> dict[str, Expected]:
    """Per kind: good events in silver once, bad ones quarantined by class, resends counted."""
    out = {kind: Expected() for kind in KINDS}
    for event in events:
        exp = out[event.kind]
        exp.consumed += 1
        if event.bad_class is None:
            exp.silver_event_ids[event_id_of(event.payload)] += 1
            exp.silver_rows += rows_of(event.kind, event.payload)
        elif event.bad_class == "duplicate_resend":
            exp.duplicate_event_ids[event_id_of(event.payload)] += 1
        else:
            exp.quarantined[event.bad_class] += 1
    return out


def read_table(env: IngestEnv, name: str, columns: list[str]) -> pl.DataFrame:
    """Columns of a lake table at its latest version (empty frame when it does not exist)."""
    try:
        table = DeltaTable(
            env.location.uri(name), storage_options=dict(env.location.storage_options)
        )
    except TableNotFoundError:
        return pl.DataFrame({c: [] for c in columns})
    frame = pl.from_arrow(table.to_pyarrow_dataset().to_table(columns=columns))
    assert isinstance(frame, pl.DataFrame)
    return frame


def silver_event_ids(env: IngestEnv, kind: str) -> Counter[str]:
    """How many distinct offsets each ``event_id`` occupies in ``silver/<kind>``."""
    frame = read_table(env, f"silver/{kind}", ["event_id", "kafka_partition", "kafka_offset"])
    distinct = frame.unique(["event_id", "kafka_partition", "kafka_offset"])
    return Counter(distinct["event_id"].to_list())


def assert_invariant(env: IngestEnv) -> AccountingReport:
    """The accounting invariant holds against the committed offsets, and no event is twice."""
    report = env.accounting()
    assert report.ok, "accounting invariant broken:\n" + "\n".join(
        str(v) for v in report.violations[:20]
    )
    for kind in KINDS:
        twice = {e: n for e, n in silver_event_ids(env, kind).items() if n > 1}
        assert not twice, f"{kind}: event ids in silver more than once: {list(twice)[:10]}"
    return report


def assert_expected(
    env: IngestEnv, events: Sequence[SimEvent], *, kinds: Sequence[str] = KINDS
) -> None:
    """The lake holds exactly what the simulator's labels say: good events once in silver with
    all their rows, bad ones quarantined, resends counted as duplicates, every offset in a run."""
    report = env.accounting()
    expected = expected_outcome(events)
    for kind in kinds:
        exp = expected[kind]
        assert silver_event_ids(env, kind) == exp.silver_event_ids, kind
        assert report.silver_rows[kind] == exp.silver_rows, kind
        assert report.quarantined[kind] == exp.quarantined.total(), kind
        assert report.duplicates[kind] == exp.duplicate_event_ids.total(), kind
        assert report.runs_consumed[kind] == exp.consumed, kind
        dups = read_table(env, "ops/duplicates", ["kind", "event_id"]).filter(
            pl.col("kind") == kind
        )
        assert Counter(dups["event_id"].to_list()) == exp.duplicate_event_ids, kind


def assert_each_offset_once(env: IngestEnv) -> None:
    """Every offset of the test's topics is in exactly one lake table, once.

    Reads Kafka's offsets with kafka-python and the Delta tables with deltalake, nothing of
    maxlake, so the check does not depend on the code under test.
    """
    consumer = KafkaConsumer(bootstrap_servers=env.bootstrap)
    try:
        parts = [
            TopicPartition(topic, p)
            for topic in env.topics()
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        starts = consumer.beginning_offsets(parts)
        ends = consumer.end_offsets(parts)
    finally:
        consumer.close()
    seen: Counter[tuple[str, int, int]] = Counter()
    names = [f"{group}/{kind}" for kind in KINDS for group in ("silver", "quarantine")]
    for name in [*names, "ops/duplicates"]:
        try:
            table = DeltaTable(
                env.location.uri(name), storage_options=dict(env.location.storage_options)
            )
        except TableNotFoundError:
            continue
        data = table.to_pyarrow_table(columns=["kafka_topic", "kafka_partition", "kafka_offset"])
        rows = data.group_by(["kafka_topic", "kafka_partition", "kafka_offset"]).aggregate([])
        for topic, partition, offset in zip(
            rows["kafka_topic"].to_pylist(),
            rows["kafka_partition"].to_pylist(),
            rows["kafka_offset"].to_pylist(),
            strict=True,
        ):
            seen[(topic, partition, offset)] += 1
    twice = [k for k, n in seen.items() if n > 1]
    assert not twice, f"offsets in more than one table: {twice[:10]}"
    expected = {
        (tp.topic, tp.partition, offset) for tp in parts for offset in range(starts[tp], ends[tp])
    }
    assert set(seen) == expected, (
        f"{len(expected - set(seen))} offsets missing from the lake, "
        f"{len(set(seen) - expected)} not produced"
    )


def workers_in_runs(env: IngestEnv) -> set[str]:
    """The workers that recorded a batch with consumed offsets in ``ops/validation_runs``."""
    runs = DeltaTable(
        env.location.uri("ops/validation_runs"), storage_options=dict(env.location.storage_options)
    ).to_pyarrow_table(columns=["worker", "consumed"])
    busy = runs.filter(pc.greater(runs["consumed"], 0))
    return set(busy["worker"].to_pylist())
