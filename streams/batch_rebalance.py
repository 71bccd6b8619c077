"""The batch engine's rebalance listener: settle in-flight batches, then position from the lake.

On revocation the engine drops batches not yet handed to its threads, abandons a blocked write
(its offsets are not committed, so the next owner reads them again) and waits until every
batch handed over is written and committed; the pipeline forgets the partitions' resend
horizon. On assignment it settles again and positions each partition past what the lake holds
(or retries later if the lake cannot be read), then logs one line.
"""

from __future__ import annotations

import logging
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

    async def settle(self) -> None: ...

    async def position_or_retry_later(self, assigned: Sequence[TopicPartition]) -> bool: ...


class BatchRebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's rebalance callbacks for one :class:`~streams.batch_engine.BatchEngine`."""

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.engine.drop_unfinished(list(revoked))
        block = self.engine.block
        if block.blocked:
            block.abandon()
        try:
            await self.engine.settle()
        finally:
            block.rearm()
        for tp in revoked:
            self.engine.pipeline().forget(tp.topic, tp.partition)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.engine.settle()
        for tp in assigned:
            self.engine.pipeline().forget(tp.topic, tp.partition)
        await self.engine.position_or_retry_later(list(assigned))
        logger.info(
            "batch engine: %d partition(s) assigned, positioned from the lake", len(assigned)
        )
