"""A worker killed with kill -9 right after it discarded records of a topic deleted and
created again under it: the old incarnation's records it held are gone from Kafka and from the
worker, and the lake's register of what it will never hold (``ops/gaps``) must still name
every one of them.

The worker runs in a process of its own (real broker, real pipeline and Delta tables); the
order of events is fixed by holding its first batch, not timed, and the process kills itself
with SIGKILL at the line that names the discard, so the kill lands at that instant and
nothing after it runs. A second worker then drains the new incarnation. The independent
ledger (kafka-python and deltalake/Polars) checks every produced offset of the old
incarnation: in the lake or in an ``ops/gaps`` row of the old topic id, never in both.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from kafka import KafkaAdminClient

from lake import BatchWriter, DeltaStore
from lake.accounting import check_accounting
from quality import ValidationGateway
from schemas import EventKind, load_registry
from streams.batch_engine import BatchEngine
from streams.ingest import IngestPipeline
from streams.offsets import group_offsets
from streams.topics import ensure_topics, topic_ids
from tests.integration.ledger import gap_coords, kafka_records, reconcile
from tests.integration.test_positioning_races import _recreate, _settings, _until
from tests.integration.test_topic_recreation import TENANT, _HeldPipeline, _produce, _telemetry

pytestmark = pytest.mark.integration


class _UnwrittenPipeline(_HeldPipeline):
    """The first batch is prepared once :attr:`go` is set, and never written (the worker is
    killed while it holds it)."""

    def write(self, outputs: Any) -> Any:
        threading.Event().wait()


class _KillAtDiscard(logging.Handler):
    """SIGKILL this process at the line naming a topic deleted and created again under it
    (logged right after the discard, before the batch is handed over)."""

    def emit(self, record: logging.LogRecord) -> None:
        if "unseen by the client" in record.getMessage():
            os.kill(os.getpid(), signal.SIGKILL)


def _discard_then_die(bootstrap: str, name: str, tmp_path: str, old_events: list[Any]) -> None:
    """In a process of its own: the worker holds its first batch (0-99) unwritten, fetches
    100-299 of the old incarnation in one response after that batch's check, the topic is
    created again with 600 records, and the worker discards 100-199 at its next check and dies
    there."""
    logging.getLogger("streams.batch_engine").addHandler(_KillAtDiscard())
    logging.getLogger("streams.batch_engine").setLevel(logging.INFO)
    settings = _settings(bootstrap, name, Path(tmp_path)).model_copy(
        update={"batch_max_events": 100}
    )
    topic = settings.topic_for(TENANT, "telemetry")
    real = IngestPipeline(
        settings,
        ValidationGateway(load_registry()),
        BatchWriter(DeltaStore(Path(settings.lake_root))),
        worker="killed",
    )
    pipeline = _UnwrittenPipeline(real)
    engine = BatchEngine(settings, {topic: EventKind.TELEMETRY}, lambda: pipeline)  # type: ignore[arg-type,return-value]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)

    async def scenario() -> None:
        task = asyncio.create_task(engine.run())
        await _until(lambda: asyncio.to_thread(pipeline.preparing.wait, 0.5), "a batch", task)
        assert engine.consumer is not None
        await asyncio.to_thread(partial(_produce, bootstrap, topic, old_events[100:], at_once=True))

        async def second_batch() -> bool:
            return engine._next.get(TopicPartition(topic, 0)) == 200

        await _until(second_batch, "the second batch filled", task)
        await engine.consumer._client.force_metadata_update()
        await asyncio.to_thread(_recreate, admin, topic)
        await asyncio.to_thread(_produce, bootstrap, topic, _telemetry(6, 600))
        pipeline.go.set()
        async with asyncio.timeout(120):
            await task

    asyncio.run(scenario())


def test_a_worker_killed_right_after_the_discard_leaves_every_old_offset_accounted_for(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    """The killed worker held the old incarnation's 0-99 (a batch being written) and 100-299
    (discarded, and buffered); Kafka deleted them with the topic. After a second worker drains
    the new incarnation: each of its 600 offsets is in the lake once under the new id, and
    each of the old incarnation's 300 offsets is in an ``ops/gaps`` row of the old id
    (``discarded_topic_recreated``): 100-299 recorded by the killed worker before it died,
    0-99 by the next worker's positioning, which found the old lineage closed with offsets
    below its gap neither in the lake nor in a gap. Before this, none of the 300 was in
    ``ops/gaps``: lost without a trace."""
    settings = _settings(kafka_bootstrap, unique_name, tmp_path).model_copy(
        update={"batch_max_events": 100}
    )
    ensure_topics(settings, [TENANT], ["telemetry"])
    topic = settings.topic_for(TENANT, "telemetry")
    old_events = _telemetry(5, 300)
    old_values = _produce(kafka_bootstrap, topic, old_events[:100])
    old_id = topic_ids(settings, [topic])[topic]
    child = multiprocessing.get_context("spawn").Process(
        target=_discard_then_die, args=(kafka_bootstrap, unique_name, str(tmp_path), old_events)
    )
    child.start()
    child.join(300)
    if child.is_alive():
        child.kill()
        child.join()
    assert child.exitcode == -signal.SIGKILL, f"the worker was not killed: {child.exitcode}"
    old_values.update(
        {o: e.payload for o, e in zip(range(100, 300), old_events[100:], strict=True)}
    )
    new_id = topic_ids(settings, [topic])[topic]
    assert new_id != old_id
    killed_gaps, _ = gap_coords(Path(settings.lake_root), topic, old_id)
    assert killed_gaps >= {(topic, 0, o) for o in range(100, 300)}, "recorded before the kill"

    real = IngestPipeline(
        settings,
        ValidationGateway(load_registry()),
        BatchWriter(DeltaStore(Path(settings.lake_root))),
        worker="next",
    )
    pipeline = _HeldPipeline(real)
    pipeline.preparing.set()
    pipeline.go.set()
    engine = BatchEngine(settings, {topic: EventKind.TELEMETRY}, lambda: pipeline)  # type: ignore[arg-type,return-value]

    async def drain() -> None:
        task = asyncio.create_task(engine.run())
        try:

            async def drained() -> bool:
                parts = await asyncio.to_thread(group_offsets, settings, [topic])
                return bool(parts) and parts[0].committed == 600

            await _until(drained, "the group's commit at the new topic's end", task)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(drain())
    lake = Path(settings.lake_root)
    in_kafka = kafka_records(kafka_bootstrap, [topic])
    new_ledger = reconcile(lake, in_kafka, topics=[topic], topic_ids={topic: new_id})
    assert new_ledger.ok, new_ledger.summary()
    assert new_ledger.silver == 600, new_ledger.summary()
    gaps, causes = gap_coords(lake, topic, old_id)
    old_records = {(topic, 0, o): v for o, v in old_values.items()}
    old_ledger = reconcile(lake, old_records, topics=[topic], topic_ids={topic: old_id}, gaps=gaps)
    assert old_ledger.ok, old_ledger.summary()
    assert len(old_ledger.in_gap) == 300, old_ledger.summary()
    assert set(causes) == {"discarded_topic_recreated"}, causes
    assert not gap_coords(lake, topic, new_id)[0], "nothing of the new lineage is a gap"
    # What verify prints: the gaps under the old id, in words, and no violation.
    report = check_accounting(
        DeltaStore(lake), kinds=(EventKind.TELEMETRY,), topic_ids={topic: new_id}
    )
    assert report.ok, [str(v) for v in report.violations]
    assert report.gap_offsets.get("discarded_topic_recreated", 0) >= 300
    assert all("deleted and created again" in line for line in report.expired), report.expired
