"""A Faust app whose consumer reads committed records only (``isolation_level=read_committed``)
and whose Kafka clients wait for a broker that is down when they start.

Faust (0.15) builds its aiokafka consumer with ``read_committed`` only under its own
``processing_guarantee="exactly_once"``, which maxlake does not use (PITFALLS.md: it is
unreliable and covers Kafka-to-Kafka only). Without it, records of aborted producer
transactions would reach the lake. This module is the one place that bends Faust for that: the
consumer thread asks for ``read_committed`` while the consumer is being built.

Faust's producer and consumer connect when the app starts; if the broker went away since the
worker found it (``streams.broker_wait.wait_for_broker``), Faust would crash with a traceback.
Here each start is retried with one log line per attempt (``start_until_reachable``).
"""

from __future__ import annotations

import time
from typing import Any

import faust
from faust.transport import producer as faust_producer
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.broker_wait import start_until_reachable

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

    async def on_start(self) -> None:
        async def start() -> None:
            self._consumer = self._create_consumer(loop=self.thread_loop)
            self.time_started = time.monotonic()
            await self._consumer.start()

        async def discard() -> None:
            if self._consumer is not None:
                await self._consumer.stop()

        await start_until_reachable(
            start, _servers(self.transport), "Faust's consumer", discard=discard
        )


class _Producer(faust_aiokafka.Producer):
    async def on_start(self) -> None:
        await faust_producer.Producer.on_start(self)  # the driver's own start, minus connecting

        async def start() -> Any:
            producer = self._producer = self._new_producer()
            await producer.start()
            return producer

        async def discard() -> None:
            if self._producer is not None:
                await self._producer.stop()

        producer = await start_until_reachable(
            start, _servers(self.transport), "Faust's producer", discard=discard
        )
        self.beacon.add(producer)


def _servers(transport: Any) -> str:
    return ",".join(faust_aiokafka.server_list(transport.url, transport.default_port))


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class ReadCommittedApp(faust.App):
    """``faust.App`` over Kafka whose worker consumer reads committed records only."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
