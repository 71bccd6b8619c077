"""``ops/replays``: the record of quarantined messages that were validated again.

``maxlake quarantine replay`` re-runs quarantined messages through the decoder and the current
suite. Each attempt leaves one row here per message, keyed by the message's Kafka coordinates
(the quarantine row stays where it is, as evidence). Outcome ``replayed`` means the message's
rows are now in ``silver/<kind>`` under their original coordinates; for the accounting
invariant such an offset counts as silver, not quarantine. ``duplicate`` means its event was
already in silver; ``still_invalid`` means it failed again (with the new reasons). Messages
with a ``replayed`` or ``duplicate`` row are never replayed again.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from lake.delta import DeltaStore
from schemas.silver import TIMESTAMP

__all__ = [
    "FINAL_OUTCOMES",
    "OUTCOMES",
    "REPLAYS",
    "REPLAYS_SCHEMA",
    "replay_marks",
    "replay_records",
]

REPLAYS = "ops/replays"
OUTCOMES = ("replayed", "duplicate", "still_invalid")
FINAL_OUTCOMES = ("replayed", "duplicate")
"""Outcomes after which a message is not replayed again."""


REPLAYS_SCHEMA = pa.schema(
    [
        pa.field("replay_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("event_id", pa.string()),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("reasons", pa.list_(pa.string()), nullable=False),
        pa.field("silver_rows", pa.int64(), nullable=False),
        pa.field("suite_version", pa.string()),
        pa.field("replayed_at", TIMESTAMP, nullable=False),
        pa.field("date", pa.date32(), nullable=False),
    ]
)

_EMPTY: dict[str, pl.DataType | type[pl.DataType]] = {
    "kafka_topic": pl.String,
    "kafka_partition": pl.Int32,
    "kafka_offset": pl.Int64,
    "outcome": pl.String,
    "replayed_at": pl.Datetime("us", "UTC"),
}


def replay_records(
    store: DeltaStore, kind: str, *, outcomes: tuple[str, ...] = FINAL_OUTCOMES
) -> pl.DataFrame:
    """Coordinates, outcome and time of the replays of ``kind`` with one of ``outcomes``."""
    flt = (ds.field("kind") == kind) & ds.field("outcome").isin(list(outcomes))
    frame = store.read_frame(REPLAYS, columns=list(_EMPTY), filter=flt)
    return pl.DataFrame(schema=_EMPTY) if frame is None else frame


_MARK_COLUMNS = [
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "replay_id",
    "outcome",
    "reasons",
    "silver_rows",
    "suite_version",
    "replayed_at",
]


def replay_marks(
    store: DeltaStore, kind: str, coordinates: list[tuple[str, int, int]]
) -> dict[tuple[str, int, int], dict[str, object]]:
    """What replay did to each quarantined message at ``coordinates`` (topic, partition, offset).

    Returns:
        Per coordinate that was ever replayed: ``outcome`` (``replayed``: its rows are in
        silver; ``duplicate``: its event already was; ``still_invalid``: it failed again, with
        ``reasons``), ``replayed_at`` (ISO 8601 UTC), ``replay_id`` (the run of ``maxlake
        quarantine replay``; its silver rows were appended in the same run), ``silver_rows``,
        ``suite_version`` and ``attempts`` (replay runs that selected it). A final outcome
        (``replayed`` or ``duplicate``) wins over later attempts; otherwise the newest attempt.
        A coordinate never replayed is absent.
    """
    if not coordinates:
        return {}
    topics = sorted({c[0] for c in coordinates})
    flt = (ds.field("kind") == kind) & ds.field("kafka_topic").isin(topics)
    frame = store.read_frame(REPLAYS, columns=_MARK_COLUMNS, filter=flt)
    if frame is None or frame.is_empty():
        return {}
    wanted = pl.DataFrame(
        coordinates,
        schema={"kafka_topic": pl.String, "kafka_partition": pl.Int32, "kafka_offset": pl.Int64},
        orient="row",
    ).unique()
    keys = ["kafka_topic", "kafka_partition", "kafka_offset"]
    frame = frame.join(wanted, on=keys, how="semi")
    ranked = frame.with_columns(
        pl.col("outcome").is_in(list(FINAL_OUTCOMES)).alias("final"),
        pl.len().over(keys).alias("attempts"),
    ).sort(["final", "replayed_at"], descending=True)
    marks: dict[tuple[str, int, int], dict[str, object]] = {}
    for r in ranked.unique(subset=keys, keep="first").iter_rows(named=True):
        marks[(r["kafka_topic"], r["kafka_partition"], r["kafka_offset"])] = {
            "outcome": r["outcome"],
            "replayed_at": r["replayed_at"].isoformat(),
            "replay_id": r["replay_id"],
            "silver_rows": int(r["silver_rows"]),
            "reasons": list(r["reasons"]),
            "suite_version": r["suite_version"],
            "attempts": int(r["attempts"]),
        }
    return marks
