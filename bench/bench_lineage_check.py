"""Cost of the batch engine's topic-id check (one Metadata v10 request per batch,
``streams/kafka_topic_ids.py``) against fetching the batch it guards, in the same run.

A throwaway broker; ``--topics`` topics of ``--partitions`` partitions each, ``--events``
telemetry-sized records in all. One aiokafka consumer (the batch engine's fetch settings)
drains them in ``--batch``-record ``getmany`` loops, once plain (the baseline) and once with
the check after each batch and a receipt stamp per fetched chunk, as the engine does; then
``--checks`` checks alone, timed one by one. Reports wall and CPU time per check, per batch,
and the check's share of a batch. Fetching is a small part of a batch's cost (decode,
validation and Delta writes are most of it, docs/BENCHMARKS.md), so the share is an upper bound.

    .venv/bin/python -m bench.bench_lineage_check --events 600000 --batch 50000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer

from infra.broker import LocalBroker, free_port
from maxlake.settings import Settings
from streams.kafka_topic_ids import current_topic_ids
from streams.topics import ensure_topics

_VALUE = b"x" * 300


def _preload(bootstrap: str, topics: list[str], events: int) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=256 << 10
    )
    for i in range(events):
        producer.send(topics[i % len(topics)], key=b"m%d" % (i % 97), value=_VALUE)
    producer.flush()
    producer.close()


async def _drain(
    bootstrap: str, topics: list[str], events: int, batch: int, *, check: bool
) -> tuple[float, float, int]:
    """Wall s, CPU s, checks made, to read ``events`` records in ``batch``-record batches."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=batch,
        fetch_max_bytes=16 << 20,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(await consumer._client._wait_on_metadata(t))
        ]
        consumer.assign(parts)
        wall, cpu = time.perf_counter(), time.process_time()
        seen = checks = 0
        stamps: list[int] = []
        while seen < events:
            count = 0
            while count < batch and seen + count < events:
                fetched = await consumer.getmany(timeout_ms=1000, max_records=batch - count)
                for tp, records in fetched.items():
                    if check:
                        stamps.append(consumer.last_poll_timestamp(tp))
                    count += len(records)
            seen += count
            if check:
                await current_topic_ids(consumer._client, topics)
                checks += 1
                stamps.clear()
        return time.perf_counter() - wall, time.process_time() - cpu, checks
    finally:
        await consumer.stop()


async def _checks(bootstrap: str, topics: list[str], n: int) -> tuple[list[float], float]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await current_topic_ids(consumer._client, topics)
        times: list[float] = []
        cpu = time.process_time()
        for _ in range(n):
            started = time.perf_counter()
            await current_topic_ids(consumer._client, topics)
            times.append(time.perf_counter() - started)
        return times, time.process_time() - cpu
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--topics", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--checks", type=int, default=500)
    args = parser.parse_args()
    print("load:", os.getloadavg())
    with tempfile.TemporaryDirectory() as home:
        broker = LocalBroker(Path(home), port=free_port(), controller_port=free_port())
        broker.start(timeout_s=240)
        try:
            settings = Settings(
                bootstrap_servers=broker.bootstrap,
                topic_prefix="bench",
                topic_partitions=args.partitions,
            )
            tenants = [f"tenant-{i}" for i in range(args.topics)]
            ensure_topics(settings, tenants, ["telemetry"])
            topics = [settings.topic_for(t, "telemetry") for t in tenants]
            _preload(broker.bootstrap, topics, args.events)
            times, check_cpu = asyncio.run(_checks(broker.bootstrap, topics, args.checks))
            runs: dict[str, list[tuple[float, float, int]]] = {}
            for label, check in (("plain", False), ("checked", True), ("plain", False)):
                wall, cpu, checks = asyncio.run(
                    _drain(broker.bootstrap, topics, args.events, args.batch, check=check)
                )
                runs.setdefault(label, []).append((wall, cpu, checks))
                print(
                    f"{label:8} {args.events} records in {wall:.2f} s wall, {cpu:.2f} s CPU, "
                    f"{checks} checks"
                )
        finally:
            broker.stop()
    per_check = statistics.median(times) * 1000
    p99 = sorted(times)[int(len(times) * 0.99) - 1] * 1000
    print(
        f"check alone ({args.topics} topics x {args.partitions} partitions): "
        f"median {per_check:.2f} ms, p99 {p99:.2f} ms wall; {check_cpu / args.checks * 1000:.2f} "
        "ms CPU"
    )
    plain_cpu = statistics.mean(c for _, c, _ in runs["plain"])
    checked_cpu = runs["checked"][0][1]
    batches = args.events / args.batch
    print(
        f"fetch CPU per batch: plain {plain_cpu / batches * 1000:.1f} ms, checked "
        f"{checked_cpu / batches * 1000:.1f} ms; check CPU / plain fetch CPU per batch: "
        f"{check_cpu / args.checks / (plain_cpu / batches):.4f}"
    )
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
