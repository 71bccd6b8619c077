"""A batch's messages as columns: the repeated-offset guard gives the per-message answer."""

from __future__ import annotations

import random

from streams.batch_rows import Columns, RawMessage
from streams.ingest import unique_offsets


def test_repeated_offsets_are_found_across_topics_and_partitions() -> None:
    rng = random.Random(5)
    for _ in range(200):
        batch = [
            RawMessage(rng.choice("ab"), rng.randrange(3), rng.randrange(30), None, None, b"")
            for _ in range(rng.randrange(0, 40))
        ]
        first: dict[tuple[str, int, int], RawMessage] = {}
        for m in batch:
            first.setdefault(m[:3], m)
        assert Columns.of(batch).has_repeated_offsets() == (len(first) != len(batch))
        assert list(unique_offsets(batch)) == list(first.values())
