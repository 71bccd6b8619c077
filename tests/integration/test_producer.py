"""PlantProducer against a real broker: round trip, and store-and-forward across a real outage."""

from __future__ import annotations

import base64
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from infra.broker import LocalBroker
from maxlake.settings import Settings
from streams.producer import (
    DeliveryRejectedError,
    EventSerializationError,
    EventTooLargeError,
    PlantProducer,
    UnknownTopicError,
)
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration

TENANT = "acme"


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[Any]:
    """Every record of ``topic`` from the start: read until ``expected`` distinct values arrived
    (resent copies have the same bytes, so they do not count), then on to the end of the log as
    it is then, so that every copy shows; or until nothing arrived for ``timeout_s``."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[Any] = []
    values: set[bytes] = set()
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < timeout_s:
            fetched = [r for batch in consumer.poll(timeout_ms=500).values() for r in batch]
            if fetched:
                idle_since = time.monotonic()
                records.extend(fetched)
                values.update(r.value for r in fetched)
            if len(values) >= expected and _at_end(consumer):
                break
    finally:
        consumer.close()
    return records


def _at_end(consumer: KafkaConsumer) -> bool:
    """Whether the consumer has read every partition it holds up to the current end offset."""
    assigned = list(consumer.assignment())
    ends = consumer.end_offsets(assigned)
    return bool(assigned) and all(consumer.position(tp) >= ends[tp] for tp in assigned)


def _event(i: int, machines: int = 5) -> dict[str, Any]:
    return {
        "event_id": f"evt-{i:06d}",
        "schema_version": 1,
        "kind": "telemetry",
        "tenant": TENANT,
        "plant": "p1",
        "line": "l1",
        "machine": f"m-{i % machines}",
        "event_time": "2026-11-26T10:00:00.000000Z",
        "reading": {"tag": "temp", "value": float(i), "unit": "degC", "quality": "GOOD"},
    }


def _settings(bootstrap: str, prefix: str, tmp_path: Path) -> Settings:
    return Settings(bootstrap_servers=bootstrap, topic_prefix=prefix, spool_dir=tmp_path / "spool")


def _check_exactly_once_in_order(
    records: list[Any], sent: int, *, resent_copies: bool = False
) -> None:
    """Each event_id once, keyed by its machine, and per machine in send order.

    With ``resent_copies`` an event may also arrive again (its acknowledgement was lost when
    the broker went down mid-request, so it was spooled and resent): then every copy must be
    byte-identical to the first, and the first arrivals must be in send order, which is what
    the lake's dedupe by event_id keeps.
    """
    first: dict[str, bytes] = {}
    copies = 0
    per_machine: dict[str, list[int]] = defaultdict(list)
    for record in records:
        event = orjson.loads(record.value)
        assert record.key == event["machine"].encode()
        event_id = event["event_id"]
        if event_id in first:
            assert record.value == first[event_id]
            copies += 1
            continue
        first[event_id] = record.value
        per_machine[event["machine"]].append(int(event_id.removeprefix("evt-")))
    assert sorted(first) == [f"evt-{i:06d}" for i in range(sent)]
    if not resent_copies:
        assert copies == 0
    for numbers in per_machine.values():
        assert numbers == sorted(numbers)


def test_events_round_trip_keyed_by_machine_with_sent_time(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, unique_name, tmp_path)
    ensure_topics(settings, [TENANT], ["telemetry"])
    with PlantProducer(settings) as producer:
        for i in range(500):
            producer.send(_event(i))
        producer.send(orjson.dumps(_event(500)))
        producer.flush()
        assert producer.counters()["sent"] == 501
        assert producer.spooled == 0
    records = consume_all(kafka_bootstrap, settings.topic_for(TENANT, "telemetry"), 501)
    _check_exactly_once_in_order(records, 501)
    first = orjson.loads(records[0].value)
    assert first["sent_time"].endswith("Z")


def test_unroutable_and_oversized_events_are_terminal_errors(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, unique_name, tmp_path)
    with PlantProducer(settings, max_request_size=64 * 1024) as producer:
        with pytest.raises(EventSerializationError, match="tenant"):
            producer.send({"kind": "telemetry"})
        with pytest.raises(EventSerializationError, match="JSON"):
            producer.send({**_event(0), "value": object()})
        with pytest.raises(EventTooLargeError):
            producer.send({**_event(0), "padding": "x" * 100_000})
        with pytest.raises(UnknownTopicError, match="maxlake topics create"):
            producer.send(_event(0))
        assert producer.connected
        assert producer.sent == 0


def test_outage_spools_then_resends_in_order_exactly_once(
    restartable_broker: LocalBroker, unique_name: str, tmp_path: Path
) -> None:
    settings = _settings(restartable_broker.bootstrap, unique_name, tmp_path)
    ensure_topics(settings, [TENANT], ["telemetry"])
    producer = PlantProducer(settings, retry_interval_s=0.5, stall_timeout_s=3.0)
    try:
        for i in range(1000):
            producer.send(_event(i))
        producer.flush()
        restartable_broker.stop()
        for i in range(1000, 3000):
            producer.send(_event(i))
        producer.flush()
        assert not producer.connected
        assert producer.spooled > 0
        assert producer.spool_pending > 0
        restartable_broker.start(timeout_s=90)
        assert producer.wait_drained(timeout_s=120)
        for i in range(3000, 3200):
            producer.send(_event(i))
        producer.flush()
        counts = producer.counters()
    finally:
        producer.close()
    assert counts["sent"] + counts["resent"] == 3200
    assert counts["spool_pending"] == 0
    topic = settings.topic_for(TENANT, "telemetry")
    records = consume_all(restartable_broker.bootstrap, topic, 3200)
    _check_exactly_once_in_order(records, 3200)


def test_spool_survives_a_producer_restart(
    restartable_broker: LocalBroker, unique_name: str, tmp_path: Path
) -> None:
    settings = _settings(restartable_broker.bootstrap, unique_name, tmp_path)
    ensure_topics(settings, [TENANT], ["telemetry"])
    restartable_broker.stop()
    first = PlantProducer(settings, connect_timeout_s=0.5)
    for i in range(700):
        first.send(_event(i))
    first.close()
    assert first.counters()["spool_pending"] == 700
    restartable_broker.start(timeout_s=90)
    with PlantProducer(settings) as second:
        assert second.spool_pending == 0
        assert second.resent == 700
        for i in range(700, 800):
            second.send(_event(i))
    topic = settings.topic_for(TENANT, "telemetry")
    records = consume_all(restartable_broker.bootstrap, topic, 800)
    _check_exactly_once_in_order(records, 800)


def test_outage_is_detected_while_sending_without_flush(
    restartable_broker: LocalBroker, unique_name: str, tmp_path: Path
) -> None:
    settings = _settings(restartable_broker.bootstrap, unique_name, tmp_path)
    ensure_topics(settings, [TENANT], ["telemetry"])
    producer = PlantProducer(settings, retry_interval_s=0.5, stall_timeout_s=2.0)
    sent = 0
    try:
        for _ in range(200):
            producer.send(_event(sent))
            sent += 1
        restartable_broker.stop()
        deadline = time.monotonic() + 120
        while producer.connected and time.monotonic() < deadline:
            producer.send(_event(sent))
            sent += 1
            time.sleep(0.01)
        assert not producer.connected
        assert producer.spooled > 0
        restartable_broker.start(timeout_s=90)
        assert producer.wait_drained(timeout_s=120)
    finally:
        producer.close()
    topic = settings.topic_for(TENANT, "telemetry")
    records = consume_all(restartable_broker.bootstrap, topic, sent)
    _check_exactly_once_in_order(records, sent, resent_copies=True)


def test_keys_land_in_the_partition_kafkas_default_partitioner_picks(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=unique_name,
        topic_partitions=7,
        spool_dir=tmp_path / "spool",
    )
    ensure_topics(settings, [TENANT, "other"], ["telemetry"])
    ours, theirs = (settings.topic_for(t, "telemetry") for t in (TENANT, "other"))
    keys = [f"m-{i}".encode() for i in range(60)] + [f"press-{i}.s2".encode() for i in range(20)]
    reference = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        expected = {
            key: reference.send(theirs, b"x", key=key).get(timeout=30).partition for key in keys
        }
    finally:
        reference.close()
    with PlantProducer(settings) as producer:
        for key in keys:
            producer.send_raw(ours, key, key=key)
        for i in range(10):
            producer.send_raw(ours, b"unkeyed-%d" % i)
        producer.flush()
        assert producer.sent == len(keys) + 10
    records = consume_all(kafka_bootstrap, ours, len(keys) + 10)
    placed = {r.key: r.partition for r in records if r.key is not None}
    assert placed == expected
    assert len(set(expected.values())) == 7
    assert sorted(r.value for r in records if r.key is None) == [
        b"unkeyed-%d" % i for i in range(10)
    ]


def test_a_broker_refusal_is_a_delivery_rejected_error_and_later_events_still_arrive(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, unique_name, tmp_path)
    topic = settings.topic_for(TENANT, "telemetry")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        config = {"max.message.bytes": "4096"}
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs=config)])
    finally:
        admin.close()
    # base64 of random bytes: lz4 cannot shrink it below the topic's 4 KiB limit
    too_big = {**_event(1), "padding": base64.b64encode(os.urandom(12_000)).decode()}
    with PlantProducer(settings) as producer:
        producer.send(_event(0))
        producer.flush()
        producer.send(too_big)
        with pytest.raises(DeliveryRejectedError, match=topic) as caught:
            producer.flush()
        assert caught.value.count == 1
        assert producer.failed == 1
        for i in range(2, 50):
            producer.send(_event(i))
        producer.flush()
        assert producer.wait_drained(timeout_s=60)
        counts = producer.counters()
    assert counts["sent"] + counts["resent"] == 49
    records = consume_all(kafka_bootstrap, topic, 49)
    ids = [orjson.loads(r.value)["event_id"] for r in records]
    assert "evt-000001" not in ids
    assert sorted(set(ids)) == sorted(f"evt-{i:06d}" for i in range(50) if i != 1)


def test_outage_at_full_speed_keeps_every_machines_order(
    restartable_broker: LocalBroker, unique_name: str, tmp_path: Path
) -> None:
    """Many small batches in flight on every partition when the broker goes away."""
    settings = _settings(restartable_broker.bootstrap, unique_name, tmp_path)
    ensure_topics(settings, [TENANT], ["telemetry"])
    producer = PlantProducer(
        settings, batch_size=8 * 1024, retry_interval_s=0.5, stall_timeout_s=3.0
    )
    sent = 0
    try:
        for _ in range(20_000):
            producer.send(_event(sent, machines=40))
            sent += 1
        restartable_broker.stop()
        for _ in range(20_000):
            producer.send(_event(sent, machines=40))
            sent += 1
        producer.flush()
        assert not producer.connected
        restartable_broker.start(timeout_s=90)
        assert producer.wait_drained(timeout_s=120)
        for _ in range(1000):
            producer.send(_event(sent, machines=40))
            sent += 1
        producer.flush()
        counts = producer.counters()
    finally:
        producer.close()
    assert counts["sent"] + counts["resent"] >= sent
    assert counts["spool_pending"] == 0
    records = consume_all(
        restartable_broker.bootstrap, settings.topic_for(TENANT, "telemetry"), sent
    )
    _check_exactly_once_in_order(records, sent, resent_copies=True)


def test_a_small_in_flight_window_applies_backpressure_and_loses_nothing(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, unique_name, tmp_path)
    ensure_topics(settings, [TENANT], ["telemetry"])
    with PlantProducer(settings, max_in_flight=300, batch_size=4096) as producer:
        for i in range(5000):
            producer.send(_event(i))
        producer.flush()
        assert producer.sent == 5000
        assert producer.spooled == 0
    records = consume_all(kafka_bootstrap, settings.topic_for(TENANT, "telemetry"), 5000)
    _check_exactly_once_in_order(records, 5000)
