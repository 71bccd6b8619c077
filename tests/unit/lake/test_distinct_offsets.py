"""The writer's count of distinct Kafka coordinates equals the group-by it replaced, for any
rows: one or several topics, repeated offsets, partitions and offsets beyond its int64 key."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from lake.writer import _count_distinct

_OFFSETS = st.one_of(
    st.integers(0, 50), st.integers((1 << 40) - 3, (1 << 40) + 3), st.integers(0, (1 << 63) - 1)
)
_PARTS = st.one_of(st.integers(0, 3), st.integers((1 << 23) - 2, (1 << 31) - 1))
_ROWS = st.lists(
    st.tuples(st.sampled_from(["t.a", "t.b"]), _PARTS, _OFFSETS), min_size=0, max_size=40
)


def _previous(rows: pa.Table) -> int:
    """The previous code: a group-by over the three columns."""
    if rows.num_rows == 0:
        return 0
    keys = ["topic", "partition", "offset"]
    return int(rows.select(keys).group_by(keys).aggregate([]).num_rows)


def _table(rows: list[tuple[str, int, int]]) -> pa.Table:
    return pa.table(
        {
            "topic": pa.array([r[0] for r in rows], pa.string()),
            "partition": pa.array([r[1] for r in rows], pa.int32()),
            "offset": pa.array([r[2] for r in rows], pa.int64()),
        }
    )


@settings(max_examples=300, deadline=None)
@given(_ROWS, st.booleans())
def test_counts_what_the_group_by_counted(rows: list[tuple[str, int, int]], one: bool) -> None:
    if one:  # the worker's case: one topic
        rows = [("t.a", p, o) for _, p, o in rows]
    table = _table(rows + rows[: len(rows) // 3])
    assert _count_distinct(table, "topic", "partition", "offset") == _previous(table)


def test_keys_that_would_collide_in_the_int64_key_are_told_apart() -> None:
    # partition 1 offset 0 and partition 0 offset 2**40 share the key 2**40
    table = _table([("t.a", 1, 0), ("t.a", 0, 1 << 40), ("t.a", 0, 5), ("t.a", 0, 5)])
    assert _count_distinct(table, "topic", "partition", "offset") == 3


def test_several_chunks_and_topics() -> None:
    a = _table([("t.a", 0, 1), ("t.a", 0, 2)])
    b = _table([("t.a", 0, 2), ("t.b", 0, 2), ("t.b", 0, 2)])
    table = pa.concat_tables([a, b])
    assert _count_distinct(table, "topic", "partition", "offset") == 3
