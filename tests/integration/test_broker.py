"""The local broker answers real Kafka clients, and its lifecycle commands behave."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from infra.broker import LocalBroker, free_port
from infra.errors import BrokerAlreadyRunning, BrokerNotRunning
from tests.integration.faust_apps import run_until

pytestmark = pytest.mark.integration


def _create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def test_kafka_python_round_trip(kafka_bootstrap: str, unique_name: str) -> None:
    _create_topic(kafka_bootstrap, unique_name)
    sent = {f"machine-{i % 3}".encode(): [] for i in range(3)}  # type: dict[bytes, list[bytes]]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for i in range(300):
        key = f"machine-{i % 3}".encode()
        value = f"reading-{i}".encode()
        sent[key].append(value)
        producer.send(unique_name, key=key, value=value)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(
        unique_name,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_name,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    received: dict[bytes, list[bytes]] = {key: [] for key in sent}
    for message in consumer:
        received[message.key].append(message.value)
    consumer.close()
    assert received == sent, "every message arrives once, in order per key"


def test_faust_app_consumes_a_topic(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> None:
    _create_topic(kafka_bootstrap, unique_name, partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for i in range(50):
        producer.send(unique_name, key=b"m", value=str(i).encode())
    producer.flush()
    producer.close()

    app = faust.App(
        unique_name,
        broker=f"kafka://{kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        datadir=str(tmp_path / "faust"),
        topic_disable_leader=True,
    )
    topic = app.topic(unique_name, key_serializer="raw", value_serializer="raw")
    seen: list[int] = []
    done = asyncio.Event()

    @app.agent(topic, concurrency=1)
    async def collect(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            seen.append(int(value))
            if len(seen) == 50:
                done.set()

    run_until(app, done)
    assert seen == list(range(50))


def test_lifecycle_start_twice_and_stop_twice(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "b", port=free_port(), controller_port=free_port(), heap_mb=256)
    pid = broker.start(timeout_s=90)
    try:
        assert broker.status().answering
        with pytest.raises(BrokerAlreadyRunning, match=str(pid)):
            broker.start()
    finally:
        broker.stop()
    with pytest.raises(BrokerNotRunning):
        broker.stop()
    status = broker.status()
    assert not status.running
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
