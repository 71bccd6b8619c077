"""Fixtures for integration tests: a real Apache Kafka broker, started once per session.

The broker is a throwaway: free ports, a temporary home, stopped at the end. Each test names its
own topics and consumer groups with :func:`unique_name`, so tests never see each other's data.
Tests that must stop and restart a broker use :func:`restartable_broker`, an instance of their
module's own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.broker import LocalBroker, free_port

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
