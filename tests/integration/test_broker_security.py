"""Secure mode of the local broker: SCRAM users and per-tenant ACLs keep tenants apart.

The session's secure broker (its own home and free ports), two tenants' topics, one plant
user of tenant ``acme`` and one ingest worker user, granted exactly as ``maxlake broker acls``
grants them.
"""

from __future__ import annotations

import asyncio
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from infra.broker import LocalBroker
from infra.security import (
    AccessAdmin,
    AclEntry,
    generate_password,
    plant_acls,
    sasl_client_config,
    worker_acls,
)
from maxlake.settings import Settings
from streams.producer import PlantProducer
from streams.topics import ensure_topics
from tests.integration.faust_apps import run_until

pytestmark = pytest.mark.integration

PLANT = "plant-acme-1"
WORKER = "ingest-worker"
GROUP = "sec-ingest"
OWN_TOPIC = "maxlake.acme.telemetry"
OTHER_TOPIC = "maxlake.beta.telemetry"


@dataclass(frozen=True)
class Secured:
    """The module's secure broker and the passwords of its users."""

    broker: LocalBroker
    plant_password: str
    worker_password: str

    def client(self, user: str, password: str) -> dict[str, Any]:
        return {"bootstrap_servers": self.broker.bootstrap, **sasl_client_config(user, password)}

    @property
    def admin(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.broker.bootstrap, **self.broker.admin_client_config()}


@pytest.fixture(scope="module")
def secured(secure_broker: LocalBroker) -> Secured:
    broker = secure_broker
    admin_settings = Settings(
        bootstrap_servers=broker.bootstrap,
        sasl_username="admin",
        sasl_password=broker.admin_password_path.read_text().strip(),
        topic_partitions=1,
    )
    ensure_topics(admin_settings, ["acme", "beta"], ["telemetry"])
    plant_password, worker_password = generate_password(), generate_password()
    with AccessAdmin.connect(broker.bootstrap, broker.admin_client_config()) as admin:
        admin.set_password(PLANT, plant_password)
        admin.set_password(WORKER, worker_password)
        admin.grant(plant_acls(PLANT, topic_prefix="maxlake", tenant="acme"))
        admin.grant(worker_acls(WORKER, topic_prefix="maxlake", group_prefix=GROUP))
    return Secured(broker, plant_password, worker_password)


def _plant_settings(secured: Secured, password: str) -> Settings:
    return Settings(
        bootstrap_servers=secured.broker.bootstrap, sasl_username=PLANT, sasl_password=password
    )


def _read_all(config: dict[str, Any], topic: str) -> list[bytes]:
    consumer = KafkaConsumer(**config, group_id=None, consumer_timeout_ms=3000)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        return [message.value for message in consumer]
    finally:
        consumer.close()


def test_plant_writes_its_own_tenants_topic(secured: Secured, tmp_path: Path) -> None:
    settings = _plant_settings(secured, secured.plant_password)
    with PlantProducer(settings, store_and_forward=False, spool_dir=tmp_path) as producer:
        producer.send_raw(OWN_TOPIC, b"own-tenant-reading", key=b"m-1")
        producer.flush()
    assert b"own-tenant-reading" in _read_all(secured.admin, OWN_TOPIC)


def test_plant_cannot_write_another_tenants_topic(secured: Secured) -> None:
    producer = KafkaProducer(
        **secured.client(PLANT, secured.plant_password), acks="all", max_block_ms=10_000
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(OTHER_TOPIC, b"cross-tenant").get(timeout=20)
    finally:
        producer.close()
    assert b"cross-tenant" not in _read_all(secured.admin, OTHER_TOPIC)


def _send_as_admin(secured: Secured, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(**secured.admin, acks="all")
    for value in values:
        producer.send(topic, key=b"m", value=value)
    producer.flush()
    producer.close()


def test_plant_cannot_read_its_own_tenants_topic(secured: Secured) -> None:
    _send_as_admin(secured, OWN_TOPIC, [b"own-secret"])
    with pytest.raises(TopicAuthorizationFailedError):
        _read_all(secured.client(PLANT, secured.plant_password), OWN_TOPIC)


def test_plant_cannot_see_another_tenants_topic(secured: Secured) -> None:
    """Without DESCRIBE the topic does not even appear: fetching finds nothing, never data."""
    _send_as_admin(secured, OTHER_TOPIC, [b"beta-secret"])
    try:
        values = _read_all(secured.client(PLANT, secured.plant_password), OTHER_TOPIC)
    except TopicAuthorizationFailedError:
        values = []
    assert values == []


def test_plant_cannot_join_a_consumer_group(secured: Secured) -> None:
    consumer = KafkaConsumer(
        OWN_TOPIC,
        **secured.client(PLANT, secured.plant_password),
        group_id=f"{GROUP}-plant",
        consumer_timeout_ms=3000,
    )
    try:
        with pytest.raises((GroupAuthorizationFailedError, TopicAuthorizationFailedError)):
            consumer.poll(timeout_ms=10_000)
    finally:
        consumer.close()


def test_wrong_password_and_no_credentials_are_rejected(secured: Secured) -> None:
    for config in (
        secured.client(PLANT, "not-the-password"),
        {"bootstrap_servers": secured.broker.bootstrap},
    ):
        with pytest.raises(KafkaError):
            KafkaAdminClient(**config, request_timeout_ms=5000, bootstrap_timeout_ms=5000)


def test_the_plants_acls_are_exactly_the_model(secured: Secured) -> None:
    with AccessAdmin.connect(secured.broker.bootstrap, secured.broker.admin_client_config()) as a:
        entries = a.acls(PLANT)
    assert entries == sorted(
        AclEntry(f"User:{PLANT}", "TOPIC", "PREFIXED", "maxlake.acme.", op, "ALLOW", "*")
        for op in ("WRITE", "DESCRIBE")
    )


def test_worker_consumes_every_tenant_with_faust(secured: Secured, tmp_path: Path) -> None:
    _send_as_admin(secured, OTHER_TOPIC, [f"faust-{i}".encode() for i in range(20)])

    app = faust.App(
        GROUP,
        broker=f"kafka://{secured.broker.bootstrap}",
        broker_credentials=faust.SASLCredentials(
            username=WORKER, password=secured.worker_password, mechanism="SCRAM-SHA-512"
        ),
        store="memory://",
        web_enabled=False,
        datadir=str(tmp_path / "faust"),
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(OWN_TOPIC, OTHER_TOPIC, key_serializer="raw", value_serializer="raw")
    seen: list[bytes] = []
    done = asyncio.Event()

    @app.agent(topic, concurrency=1)
    async def collect(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            seen.append(value)
            if sum(v.startswith(b"faust-") for v in seen) == 20:
                done.set()

    run_until(app, done)
    assert [v for v in seen if v.startswith(b"faust-")] == [
        f"faust-{i}".encode() for i in range(20)
    ]


def test_worker_cannot_write(secured: Secured) -> None:
    producer = KafkaProducer(
        **secured.client(WORKER, secured.worker_password),
        acks="all",
        max_block_ms=10_000,
        enable_idempotence=False,
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(OWN_TOPIC, b"forged").get(timeout=20)
    finally:
        producer.close()


def test_rotated_password_replaces_the_old_one(secured: Secured) -> None:
    user, old, new = "plant-rotate", generate_password(), generate_password()
    with AccessAdmin.connect(secured.broker.bootstrap, secured.broker.admin_client_config()) as a:
        a.set_password(user, old)
        a.set_password(user, new)
    KafkaAdminClient(**secured.client(user, new), request_timeout_ms=5000).close()
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            **secured.client(user, old), request_timeout_ms=5000, bootstrap_timeout_ms=5000
        )


def test_secrets_are_private_and_never_logged(secured: Secured) -> None:
    home = secured.broker.home
    for name in ("admin.password", "controller.password", "server.properties"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    log = secured.broker.log_path.read_text(errors="replace")
    for name in ("admin.password", "controller.password"):
        assert (home / name).read_text().strip() not in log
    assert "Kafka Server started" in log
