"""Fixtures for integration tests: a real Apache Kafka broker, started once per session.

The broker is a throwaway: free ports, a temporary home, stopped at the end. Each test names its
own topics and consumer groups with :func:`unique_name`, so tests never see each other's data.
Tests that must stop and restart a broker use :func:`restartable_broker`, an instance of their
module's own; :func:`damaged_log` gives one a record batch damaged in that broker's log.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.broker import LocalBroker, free_port
from tests.integration.ingest_helpers import IngestEnv, produce, simulate

BROKER_START_TIMEOUT_S = 240
"""A cold JVM on a busy 2-core machine takes minutes; a broker that never answers still fails."""


def _new_broker(home: Path, *, secure: bool = False) -> LocalBroker:
    return LocalBroker(
        home, port=free_port(), controller_port=free_port(), heap_mb=384, secure=secure
    )


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """The session's real broker."""
    broker = _new_broker(tmp_path_factory.mktemp("kafka"))
    broker.start(timeout_s=BROKER_START_TIMEOUT_S)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """The session's real broker in secure mode (SASL/SCRAM and ACLs), started on first use."""
    broker = _new_broker(tmp_path_factory.mktemp("secure-kafka"), secure=True)
    broker.start(timeout_s=BROKER_START_TIMEOUT_S)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalBroker) -> str:
    """``host:port`` of the session's real broker."""
    return kafka_broker.bootstrap


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test uses, for topics and consumer groups."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"{stem}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def _module_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = _new_broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        if broker.pid() is not None:
            broker.stop()


@pytest.fixture
def restartable_broker(_module_broker: LocalBroker) -> LocalBroker:
    """A broker the test may stop and start again (same ports, data), running when the test
    starts. It is not the session's broker: the tests of one module share it (each with topics
    of its own), so a module pays for one broker start, not one per test."""
    broker = _module_broker
    if broker.pid() is not None and not broker.status().answering:
        broker.stop()  # left stopping or starting by a test that failed midway
    if broker.pid() is None:
        broker.start(timeout_s=BROKER_START_TIMEOUT_S)
    return broker


_HEAD = struct.Struct(">qi")


def _batches(segment: bytes) -> list[tuple[int, int, int, int]]:
    """(start byte, end byte, base offset, last offset) of each record batch of a log segment."""
    out, pos = [], 0
    while pos + _HEAD.size <= len(segment):
        base, length = _HEAD.unpack_from(segment, pos)
        end = pos + _HEAD.size + length
        (last_delta,) = struct.unpack_from(">i", segment, pos + 23)
        out.append((pos, end, base, base + last_delta))
        pos = end
    return out


def _damage_a_middle_batch(broker: LocalBroker, topic: str) -> tuple[int, int, int]:
    """Flip a byte inside a record batch in the middle of the fullest partition's log (the
    broker is stopped); returns (partition, the batch's base offset, its last offset)."""
    logs = sorted(
        (broker.home / "data").glob(f"{topic}-*/00000000000000000000.log"),
        key=lambda p: len(_batches(p.read_bytes())),
    )
    path = logs[-1]
    data = bytearray(path.read_bytes())
    batches = _batches(bytes(data))
    assert len(batches) >= 3, f"{path}: {len(batches)} batches, too few to damage the middle one"
    _, end, base, last = batches[len(batches) // 2]
    data[end - 3] ^= 0xFF  # in the last record's bytes: the batch's CRC no longer holds
    path.write_bytes(bytes(data))
    return int(path.parent.name.rsplit("-", 1)[1]), base, last


@dataclass(frozen=True)
class DamagedLog:
    """A topic with a record batch damaged in the broker's own log (:func:`damaged_log`)."""

    env: IngestEnv
    """The test's topics, group and lake; its workers run the batch engine."""
    topic: str
    partition: int
    """The partition of the damaged batch."""
    base: int
    """The damaged batch's base offset."""
    last: int
    """The damaged batch's last offset."""
    produced: int
    """Offsets produced to the test's topics, in all."""


@pytest.fixture
def damaged_log(restartable_broker: LocalBroker, unique_name: str, tmp_path: Path) -> DamagedLog:
    """Ten minutes of one tenant's simulated telemetry in topics of 2 partitions, produced 200
    events at a time (several record batches per partition), then a byte flipped in a middle
    batch of the fullest partition's log while the broker was stopped; the broker runs again."""
    tenant = "northwind-auto"
    env = IngestEnv(
        restartable_broker.bootstrap, unique_name, tmp_path, (tenant,), engine="batch", partitions=2
    )
    env.create_topics()
    topic = env.settings().topic_for(tenant, "telemetry")
    events = simulate((tenant,), seed=11, duration_s=600, bad_rate=0.0)
    for start in range(0, len(events), 200):
        produce(env, events[start : start + 200])
    produced = sum(p.end for p in env.offsets())

    restartable_broker.stop()
    partition, base, last = _damage_a_middle_batch(restartable_broker, topic)
    restartable_broker.start(timeout_s=BROKER_START_TIMEOUT_S)
    return DamagedLog(env, topic, partition, base, last, produced)
