"""A Faust app whose consumer reads committed records only (``isolation_level=read_committed``).

Faust (0.15) builds its aiokafka consumer with ``read_committed`` only under its own
``processing_guarantee="exactly_once"``, which maxlake does not use (PITFALLS.md: it is
unreliable and covers Kafka-to-Kafka only). Without it, records of aborted producer
transactions would reach the lake. This module is the one place that bends Faust for that: the
consumer thread asks for ``read_committed`` while the consumer is being built.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["ReadCommittedApp"]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = self.consumer
        was = consumer.in_transaction
        consumer.in_transaction = True  # selects isolation_level="read_committed", nothing else
        try:
            return super()._create_worker_consumer(transport)
        finally:
            consumer.in_transaction = was


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class ReadCommittedApp(faust.App):
    """``faust.App`` over Kafka whose worker consumer reads committed records only."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
