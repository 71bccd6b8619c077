"""Where each message of a batch sits: its topic partition and offset as NumPy arrays, built
once per batch for the exactly-once checks of :class:`streams.ingest.IngestPipeline` (which
offsets the lake already holds, which decisions it already committed).

The per-message work runs in C (one pass over the topics, one ``np.array`` of the partitions
and one of the offsets, one lookup table); everything per partition or per topic is then a
loop over the batch's few partitions, not over its messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from streams.batch_rows import Columns

__all__ = ["PartitionIndex"]

TopicPartition = tuple[str, int]

_DENSE_LIMIT = 1 << 20
"""Largest (topics x highest partition) mapped through a lookup table; beyond it (never with
real partition counts) the distinct partitions come from a sort."""


class PartitionIndex(NamedTuple):
    """A batch's topic partitions and offsets, message by message."""

    pairs: tuple[TopicPartition, ...]
    """The distinct (topic, partition) of the batch, sorted."""
    which: np.ndarray
    """Per message, the index of its (topic, partition) in :attr:`pairs`."""
    offset: np.ndarray
    """Per message, its offset (int64)."""
    topic_ids: dict[str, str | None]
    """Per topic, the topic id of its last message in the batch."""

    @classmethod
    def of(cls, cols: Columns) -> PartitionIndex:
        """The index of the batch ``cols``."""
        n = len(cols.offset)
        offset = np.array(cols.offset, np.int64) if n else np.zeros(0, np.int64)
        if not n:
            return cls((), np.zeros(0, np.intp), offset, {})
        # One topic is the usual batch: ``count`` compares by identity first (~5x a set).
        one = cols.topic.count(cols.topic[0]) == n
        topics = [cols.topic[0]] if one else sorted(dict.fromkeys(cols.topic))
        partition = np.array(cols.partition, np.int64)
        if one:
            code = np.zeros(n, np.int64)
        else:
            codes = {t: i for i, t in enumerate(topics)}
            code = np.fromiter(map(codes.__getitem__, cols.topic), np.int64, n)
        low, high = int(partition.min()), int(partition.max())
        span = high - low + 1
        key = code * span + (partition - low)
        if len(topics) * span <= _DENSE_LIMIT:
            present = np.zeros(len(topics) * span, bool)
            present[key] = True
            distinct = np.flatnonzero(present)
            lookup = np.zeros(len(present), np.intp)
            lookup[distinct] = np.arange(len(distinct))
            which = lookup[key]
        else:
            distinct, which = np.unique(key, return_inverse=True)
            which = which.reshape(-1)
        pairs = tuple((topics[int(k) // span], int(k) % span + low) for k in distinct.tolist())
        # The last message of each topic names its topic id (as ``dict(zip(topic, topic_id))``).
        last = np.full(len(topics), -1, np.int64)
        np.maximum.at(last, code, np.arange(n, dtype=np.int64))
        topic_ids = {topics[i]: cols.topic_id[j] for i, j in enumerate(last.tolist())}
        return cls(pairs, which.astype(np.intp, copy=False), offset, topic_ids)

    def per_partition(self, values: Mapping[TopicPartition, int], default: int) -> np.ndarray:
        """Per message, the value ``values`` holds for its (topic, partition), int64;
        ``default`` for a partition it does not hold."""
        table = np.array([values.get(p, default) for p in self.pairs], np.int64)
        out: np.ndarray = table[self.which] if len(self.pairs) else np.zeros(0, np.int64)
        return out

    def first_offsets(self, keep: np.ndarray) -> dict[TopicPartition, int]:
        """Per (topic, partition) with a message where ``keep`` (bool per message) is set, the
        lowest such offset; sorted by (topic, partition)."""
        if not len(self.pairs):
            return {}
        big = np.iinfo(np.int64).max
        lowest = np.full(len(self.pairs), big, np.int64)
        np.minimum.at(lowest, self.which[keep], self.offset[keep])
        counts = np.bincount(self.which[keep], minlength=len(self.pairs))
        return {
            pair: int(low)
            for pair, low, count in zip(self.pairs, lowest.tolist(), counts.tolist(), strict=True)
            if count
        }
