"""Producer throughput: PlantProducer against raw kafka-python, same bytes, same broker, same run.

Usage::

    maxlake broker start   # or any broker; pass --bootstrap
    .venv/bin/python bench/bench_producer.py --bootstrap 127.0.0.1:9092 --events 200000 [--small]

Three measurements on one fresh topic per run, each until every event is acknowledged:

* ``baseline``: kafka-python's ``KafkaProducer.send(topic, value, key=...)`` of pre-serialized
  bytes, configured like PlantProducer (acks=all, idempotent, same compression, 512 KiB batches,
  linger 20 ms): what a plain per-record client does;
* ``send_raw``: ``PlantProducer.send_raw`` of the same bytes (routing, per-partition batching in
  the caller's thread, aiokafka batch delivery on its loop thread, acknowledgement reaping);
* ``send``: ``PlantProducer.send`` of the event mappings (adds sent_time and JSON serialization).

The events are simulator telemetry (snapshots of all tags of a machine, about 0.5 KB) or, with
``--small``, single readings (about 0.3 KB). The load average is printed before and after, since
the figures depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer

from maxlake.settings import Settings
from schemas.registry import load_registry
from streams.producer import PlantProducer
from streams.simulator import Simulator
from streams.topics import ensure_topics


def _events(count: int, small: bool) -> list[dict[str, Any]]:
    registry = load_registry()
    simulator = Simulator(
        registry,
        seed=7,
        start=datetime(2026, 11, 26, tzinfo=UTC),
        scale=10,
        tenants=[registry.tenants[0].id],
    )
    telemetry = (orjson.loads(e.payload) for e in simulator.events(10**9) if e.kind == "telemetry")
    events = list(itertools.islice(telemetry, count))
    for event in events:
        del event["sent_time"]  # PlantProducer.send stamps it, as for a plant's own events
    if small:
        for event in events:
            readings = event.pop("readings", None)
            if readings:
                event["reading"] = readings[0]
    return events


def _kafka_python_config(plant: dict[str, Any]) -> dict[str, Any]:
    """PlantProducer's aiokafka settings as kafka-python ``KafkaProducer`` arguments."""
    config = {k: v for k, v in plant.items() if k not in {"client_id", "max_batch_size"}}
    config["batch_size"] = plant["max_batch_size"]
    config["linger_ms"] = 20
    config["bootstrap_servers"] = plant["bootstrap_servers"].split(",")
    return config


def _timed(run: Callable[[], None], count: int) -> float:
    began = time.perf_counter()
    run()
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("MAXLAKE_BOOTSTRAP_SERVERS"))
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--small", action="store_true", help="single readings, not snapshots")
    args = parser.parse_args()
    if not args.bootstrap:
        parser.error("--bootstrap or MAXLAKE_BOOTSTRAP_SERVERS is required")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(bootstrap_servers=args.bootstrap, topic_prefix=prefix)
    events = _events(args.events, args.small)
    tenant = events[0]["tenant"]
    ensure_topics(settings, [tenant], ["telemetry"])
    topic = settings.topic_for(tenant, "telemetry")
    values = [orjson.dumps(e) for e in events]
    keys = [str(e["machine"]).encode() for e in events]
    count = len(events)
    print(f"{count} events, {sum(map(len, values)) / count:.0f} bytes on average, topic {topic}")
    print(f"load average before: {_load()}")

    with tempfile.TemporaryDirectory() as tmp:
        plant = PlantProducer(settings, spool_dir=Path(tmp) / "spool")
        raw = KafkaProducer(**_kafka_python_config(plant.kafka_config))

        def baseline() -> None:
            for value, key in zip(values, keys, strict=True):
                raw.send(topic, value, key=key)
            raw.flush()

        def send_raw() -> None:
            for value, key in zip(values, keys, strict=True):
                plant.send_raw(topic, value, key=key)
            plant.flush()

        def send() -> None:
            for event in events:
                plant.send(event)
            plant.flush()

        results = {
            name: _timed(run, count)
            for name, run in (("baseline", baseline), ("send_raw", send_raw), ("send", send))
        }
        raw.close()
        plant.close()
        assert plant.sent == 2 * count, plant.counters()
    for name, rate in results.items():
        ratio = rate / results["baseline"]
        print(f"{name:9s} {rate:10,.0f} events/s   {ratio:5.2f} x baseline")
    print(f"load average after: {_load()}")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
