"""The batch engine's rebalance listener: finish in-flight batches, then position from the lake.

On revocation the engine drops batches not yet handed to its threads, abandons a write the lake
refuses (blocked already or from now on: its offsets are not committed, so the next owner reads
them again) and waits until every other batch handed over is written and committed: work
nearly done is kept, however slow the lake (the group waits up to
``MAXLAKE_BROKER_REBALANCE_TIMEOUT_S`` for it); the pipeline forgets
the partitions' resend horizon. On assignment it settles again, pauses the new partitions and
starts reading the lake for their resume points in the background (the client heartbeats only
after this listener returns, so it must return quickly), then logs one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from streams.ingest import IngestPipeline
from streams.write_block import WriteBlock

__all__ = ["BatchRebalanceListener"]

logger = logging.getLogger("streams.batch_engine")


class _Engine(Protocol):
    block: WriteBlock
    pipeline: Callable[[], IngestPipeline]

    def drop_unfinished(self, revoked: Sequence[TopicPartition]) -> None: ...

    def batches_in_hand(self) -> int: ...

    async def settle(self) -> bool: ...

    def start_positioning(self, assigned: Sequence[TopicPartition]) -> None: ...


class BatchRebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's rebalance callbacks for one :class:`~streams.batch_engine.BatchEngine`."""

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.engine.drop_unfinished(list(revoked))
        block = self.engine.block
        # Batches in hand are written if the lake takes them; one it refuses (blocked already,
        # or a disk that fills now) is given up at once instead of holding the whole group
        # until the rebalance timeout: its offsets are not committed, its next owner reads it.
        block.abandon()
        in_hand = self.engine.batches_in_hand()
        if in_hand:
            logger.info(
                "rebalance: %d partition(s) revoked; writing and committing the %d batch(es) "
                "in hand first, the group waits for them",
                len(revoked),
                in_hand,
            )
        started = time.monotonic()
        try:
            written = await self.engine.settle()
        finally:
            block.rearm()
        settle_s = time.monotonic() - started
        if block.metrics is not None:
            block.metrics.settle_seconds.observe(settle_s)
        if in_hand and written:
            logger.info("rebalance: batches in hand written and committed in %.1f s", settle_s)
        elif in_hand:
            logger.warning(
                "rebalance: batches in hand given up after %.1f s, the lake refused them "
                "(nothing of them committed; the partitions' owners read them again)",
                settle_s,
            )
        for tp in revoked:
            self.engine.pipeline().forget(tp.topic, tp.partition)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.engine.settle()
        for tp in assigned:
            self.engine.pipeline().forget(tp.topic, tp.partition)
        self.engine.start_positioning(list(assigned))
        logger.info(
            "batch engine: %d partition(s) assigned, positioning them from the lake",
            len(assigned),
        )
